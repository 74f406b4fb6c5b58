// The torrent list: sortable columns, a state filter; tables become cards on narrow screens.

import { h } from '../dom.js';
import * as f from '../format.js';

export const listUi = { sort: 'added', desc: true, filter: 'all' };

const COLUMNS = [
  { key: 'name', label: 'Name', value: (t) => t.name.toLowerCase() },
  { key: 'size', label: 'Size', value: (t) => t.size, num: true },
  { key: 'progress', label: 'Progress', value: (t) => t.progress },
  { key: 'state', label: 'State', value: (t) => f.stateLabel(t.state) },
  { key: 'rate_down', label: 'Down', value: (t) => t.rate_down, num: true },
  { key: 'rate_up', label: 'Up', value: (t) => t.rate_up, num: true },
  { key: 'ratio', label: 'Ratio', value: (t) => t.ratio, num: true },
  { key: 'peers', label: 'Peers', value: (t) => t.peers_connected, num: true },
  { key: 'eta', label: 'ETA', value: (t) => (t.eta_secs === null ? Infinity : t.eta_secs), num: true },
];

const BY_KEY = Object.fromEntries(COLUMNS.map((c) => [c.key, c]));
BY_KEY.added = { value: (t) => t.added_unix };

function sorted(torrents) {
  const col = BY_KEY[listUi.sort] || BY_KEY.added;
  const dir = listUi.desc ? -1 : 1;
  return [...torrents].sort((a, b) => {
    const x = col.value(a);
    const y = col.value(b);
    if (x < y) return -dir;
    if (x > y) return dir;
    return a.info_hash < b.info_hash ? -1 : 1;
  });
}

export function progressBar(fraction, state, label) {
  const pct = Math.max(0, Math.min(1, fraction || 0)) * 100;
  return h(
    'div',
    {
      class: `progress ${state || ''}${pct >= 100 ? ' complete' : ''}`,
      role: 'progressbar',
      'aria-valuemin': 0,
      'aria-valuemax': 100,
      'aria-valuenow': pct.toFixed(1),
      'aria-label': label || 'Progress',
    },
    h('div', { class: 'track' }, h('div', { class: 'bar', style: `width:${pct.toFixed(2)}%` })),
    h('span', { class: 'pct' }, f.percent(fraction)),
  );
}

export function stateBadge(state) {
  return h('span', { class: `badge state-${state}`, 'data-state': state }, f.stateLabel(state));
}

export function torrentActions(t) {
  const paused = t.state === 'paused';
  return h(
    'div',
    { class: 'actions' },
    h('button', {
      type: 'button',
      'data-action': paused ? 'resume' : 'pause',
      'data-ih': t.info_hash,
      'aria-label': `${paused ? 'Resume' : 'Pause'} ${t.name}`,
    }, paused ? 'Resume' : 'Pause'),
    h('button', {
      type: 'button',
      class: 'danger-text',
      'data-action': 'remove',
      'data-ih': t.info_hash,
      'aria-label': `Remove ${t.name}`,
    }, 'Remove'),
  );
}

function header() {
  return h('tr', null, COLUMNS.map((c) => {
    const active = listUi.sort === c.key;
    return h('th', {
      scope: 'col',
      class: c.num ? 'num' : null,
      'aria-sort': active ? (listUi.desc ? 'descending' : 'ascending') : null,
    }, h('button', { type: 'button', class: 'sort', 'data-action': 'sort', 'data-col': c.key },
      c.label, h('span', { class: 'sort-mark', 'aria-hidden': 'true' }, active ? (listUi.desc ? '▼' : '▲') : '')));
  }), h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')));
}

function row(t) {
  const cell = (label, content, cls) => h('td', { 'data-label': label, class: cls }, content);
  return h(
    'tr',
    { 'data-key': t.info_hash, 'data-ih': t.info_hash, 'data-state': t.state, 'data-progress': t.progress },
    h('th', { scope: 'row', class: 'name' },
      h('a', { href: `#/torrent/${t.info_hash}` }, t.name || t.info_hash),
      t.error ? h('span', { class: 'row-error' }, t.error) : null),
    cell('Size', t.size ? f.bytes(t.size) : '—', 'num'),
    cell('Progress', progressBar(t.progress, t.state, `Progress of ${t.name}`), 'progress-cell'),
    cell('State', stateBadge(t.state)),
    cell('Down', f.rate(t.rate_down), 'num'),
    cell('Up', f.rate(t.rate_up), 'num'),
    cell('Ratio', f.ratio(t.ratio), 'num'),
    cell('Peers', `${t.peers_connected} / ${t.peers_known}`, 'num'),
    cell('ETA', t.state === 'downloading' ? f.duration(t.eta_secs) : '—', 'num'),
    h('td', { class: 'actions-cell' }, torrentActions(t)),
  );
}

function filters(torrents) {
  const counts = { all: torrents.length };
  for (const t of torrents) counts[t.state] = (counts[t.state] || 0) + 1;
  const opts = ['all', ...f.STATES];
  return h(
    'div',
    { class: 'filters', role: 'group', 'aria-label': 'Show torrents by state' },
    opts.map((st) => h('button', {
      type: 'button',
      class: counts[st] ? 'chip' : 'chip none',
      'data-action': 'filter',
      'data-state': st,
      'aria-pressed': listUi.filter === st ? 'true' : 'false',
    }, st === 'all' ? 'All' : f.stateLabel(st), h('span', { class: 'count' }, counts[st] || 0))),
  );
}

export function listView(snap) {
  const torrents = (snap && snap.torrents) || [];
  const shown = sorted(torrents.filter((t) => listUi.filter === 'all' || t.state === listUi.filter));
  let body;
  if (!snap) body = h('p', { class: 'empty' }, 'Waiting for the daemon…');
  else if (!torrents.length) {
    body = h('div', { class: 'empty' },
      h('p', null, 'No torrents yet.'),
      h('p', null, 'Add one with ', h('button', { type: 'button', class: 'link', 'data-action': 'open-add' }, 'Add torrent'),
        ', or drop a .torrent file on this page.'));
  } else if (!shown.length) {
    body = h('p', { class: 'empty' }, `No torrents in state “${f.stateLabel(listUi.filter)}”.`);
  } else {
    body = h('div', { class: 'table-wrap' }, h('table', { class: 'torrents responsive' },
      h('caption', { class: 'sr-only' }, 'Torrents'),
      h('thead', null, header()),
      h('tbody', null, shown.map(row))));
  }
  return h('section', { 'aria-labelledby': 'list-title' },
    h('div', { class: 'page-head' }, h('h1', { id: 'list-title' }, 'Torrents'), filters(torrents)),
    body);
}
