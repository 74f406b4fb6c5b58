// One torrent: summary, the SCION paths of each peer (live), peers and files.

import { h } from '../dom.js';
import * as f from '../format.js';
import { laneHistory } from '../live.js';
import { hopSequence, goodputChart } from '../paths.js';
import { progressBar, stateBadge, torrentActions } from './list.js';
import { filesSection } from '../files.js';

function stat(label, value) {
  return h('div', { class: 'stat' }, h('dt', null, label), h('dd', null, value));
}

function limitText(bps) {
  return bps ? `${f.rate(bps)}` : 'unlimited';
}

function summary(t) {
  return h('dl', { class: 'stats' },
    stat('Size', t.size ? f.bytes(t.size) : '—'),
    stat('Downloaded', f.bytes(t.bytes_down)),
    stat('Uploaded', f.bytes(t.bytes_up)),
    stat('Ratio', f.ratio(t.ratio)),
    stat('Down', f.rate(t.rate_down)),
    stat('Up', f.rate(t.rate_up)),
    stat('ETA', t.state === 'downloading' ? f.duration(t.eta_secs) : '—'),
    stat('Pieces', `${t.pieces_have} / ${t.pieces_total} × ${f.bytes(t.piece_length)}`),
    stat('Peers', `${t.peers_connected} connected, ${t.peers_known} known, ${t.peers_banned} banned`),
    stat('Limits', `↓ ${limitText(t.limits && t.limits.download_bps)}, ↑ ${limitText(t.limits && t.limits.upload_bps)}`),
    stat('Saved in', h('code', null, t.out_dir || '.')),
    stat('Info hash', h('code', { class: 'hash' }, t.info_hash)));
}

function laneRow(t, lane, now, peerBytes) {
  const p = lane.path;
  const bytes = lane.bytes_down + lane.bytes_up;
  const share = peerBytes > 0 ? `${Math.round((bytes / peerBytes) * 100)} % of the peer's` : '—';
  return h(
    'li',
    {
      class: `lane${lane.open ? '' : ' closed'}`,
      'data-key': String(lane.id),
      'data-lane': String(lane.id),
      'data-fingerprint': p ? p.fingerprint : '',
      'data-bytes': String(bytes),
      'data-open': lane.open ? 'true' : 'false',
    },
    h('div', { class: 'lane-path' },
      h('div', { class: 'lane-title' },
        h('span', { class: 'lane-label' }, lane.label || `lane ${lane.id}`),
        lane.open ? null : h('span', { class: 'badge state-error' }, 'closed'),
        lane.runtime ? h('span', { class: 'muted', 'data-runtime': String(lane.runtime) }, `runtime ${lane.runtime}`) : null,
        p ? h('span', { class: 'muted' }, `MTU ${p.mtu ?? 'unknown'}${p.latency_ms !== null && p.latency_ms !== undefined ? ` · path latency ${f.ms(p.latency_ms)}` : ''}`) : null),
      hopSequence(p),
      lane.closed_reason ? h('p', { class: 'lane-reason' }, `Closed: ${lane.closed_reason}`) : null),
    h('dl', { class: 'lane-stats' },
      stat('Goodput', h('span', null, h('span', { class: 'down-text nw' }, `↓ ${f.rate(lane.rate_down)}`), ' ', h('span', { class: 'up-text nw' }, `↑ ${f.rate(lane.rate_up)}`))),
      stat('Bytes', `↓ ${f.bytes(lane.bytes_down)} ↑ ${f.bytes(lane.bytes_up)}`),
      stat('Block latency', h('span', null, h('span', { class: 'nw' }, `p50 ${f.ms(lane.latency_ms_p50)}`), ' · ', h('span', { class: 'nw' }, `p99 ${f.ms(lane.latency_ms_p99)}`))),
      stat('Share', share)),
    goodputChart(laneHistory(t.info_hash, lane.id), now),
  );
}

function pathsSection(t, now) {
  const scionLanes = t.lanes.filter((l) => l.transport === 'scion');
  const byPeer = new Map();
  for (const l of scionLanes) {
    if (!byPeer.has(l.peer)) byPeer.set(l.peer, []);
    byPeer.get(l.peer).push(l);
  }
  const peerInfo = new Map(t.peers.map((p) => [p.addr, p]));
  const tcpLanes = t.lanes.length - scionLanes.length;
  return h('section', { class: 'card', 'aria-labelledby': 'paths-title' },
    h('h2', { id: 'paths-title' }, 'SCION paths'),
    byPeer.size === 0
      ? h('p', { class: 'empty' }, 'No SCION peer is connected.')
      : [...byPeer].map(([peer, lanes]) => {
        const info = peerInfo.get(peer);
        const open = lanes.filter((l) => l.open).length;
        const peerBytes = lanes.reduce((sum, l) => sum + l.bytes_down + l.bytes_up, 0);
        return h('article', { class: 'scion-peer', 'data-key': peer, 'data-peer': peer },
          h('h3', null, h('code', null, peer),
            h('span', { class: 'muted' }, ` ${info && info.client ? info.client : 'unknown client'} · ${open} of ${lanes.length} lanes open`)),
          h('ol', { class: 'lanes' }, lanes.map((l) => laneRow(t, l, now, peerBytes))));
      }),
    tcpLanes ? h('p', { class: 'muted' }, `${tcpLanes} TCP connection${tcpLanes > 1 ? 's' : ''} (no SCION path) — see Peers.`) : null);
}

function peersSection(t) {
  const cell = (label, content, cls) => h('td', { 'data-label': label, class: cls }, content);
  return h('section', { class: 'card', 'aria-labelledby': 'peers-title' },
    h('h2', { id: 'peers-title' }, `Peers (${t.peers.length})`),
    t.peers.length === 0 ? h('p', { class: 'empty' }, 'No peer is connected.') : h('table', { class: 'responsive peers' },
      h('thead', null, h('tr', null,
        ['Address', 'Transport', 'Client', 'Source', 'Lanes', 'Down', 'Up', 'Downloaded', 'Uploaded'].map((c, i) => h('th', { scope: 'col', class: i >= 4 ? 'num' : null }, c)))),
      h('tbody', null, t.peers.map((p) => h('tr', { 'data-key': p.addr, 'data-peer': p.addr, 'data-transport': p.transport },
        h('th', { scope: 'row' }, h('code', null, p.addr)),
        cell('Transport', h('span', { class: `badge transport-${p.transport}` }, p.transport === 'scion' ? 'SCION' : 'TCP')),
        cell('Client', p.client || '—'),
        cell('Source', f.sourceLabel(p.source)),
        cell('Lanes', String(p.lanes), 'num'),
        cell('Down', f.rate(p.rate_down), 'num'),
        cell('Up', f.rate(p.rate_up), 'num'),
        cell('Downloaded', f.bytes(p.bytes_down), 'num'),
        cell('Uploaded', f.bytes(p.bytes_up), 'num'))))));
}

// Each tracker: its state (a failure says why; a TLS failure by its kind) and its last
// scrape's counters (BEP 48).
function trackersSection(t) {
  const list = t.trackers || [];
  if (list.length === 0) return null;
  const cell = (label, content, cls) => h('td', { 'data-label': label, class: cls }, content);
  const stateText = (s) => {
    if (s.state === 'working') return `working, ${s.last_peers} peers last`;
    if (s.state === 'not_contacted') return 'not contacted';
    const why = s.tls_error ? `TLS: ${s.tls_error.replace(/_/g, ' ')}` : (s.last_error || '');
    return `${s.state === 'unsupported' ? 'unsupported' : 'failing'}${why ? ` (${why})` : ''}`;
  };
  const count = (s, k) => (s.scrape ? String(s.scrape[k]) : '—');
  return h('section', { class: 'card', 'aria-labelledby': 'trackers-title' },
    h('h2', { id: 'trackers-title' }, `Trackers (${list.length})`),
    h('table', { class: 'responsive trackers' },
      h('thead', null, h('tr', null,
        ['URL', 'Tier', 'State', 'Seeders', 'Leechers', 'Completed'].map((c, i) => h('th', { scope: 'col', class: i >= 3 ? 'num' : null }, c)))),
      h('tbody', null, list.map((s) => h('tr', { 'data-key': s.url, 'data-tracker': s.url, 'data-state': s.state },
        h('th', { scope: 'row' }, h('code', null, s.url)),
        cell('Tier', String(s.tier + 1)),
        cell('State', stateText(s)),
        cell('Seeders', count(s, 'seeders'), 'num'),
        cell('Leechers', count(s, 'leechers'), 'num'),
        cell('Completed', count(s, 'completed'), 'num'))))));
}

function limitsForm(t) {
  const kib = (v) => (v ? +(v / 1024).toFixed(1) : '');
  const l = t.limits || {};
  const field = (id, label, value) => h('span', { class: 'inline-field' },
    h('label', { for: id }, label, h('span', { class: 'hint' }, ' KiB/s')),
    h('input', { id, type: 'number', min: 0, step: 'any', inputmode: 'decimal', value: kib(value), placeholder: 'unlimited' }));
  return h('form', { class: 'inline-form', 'data-form': 'limits', 'data-ih': t.info_hash, 'data-key': `limits-${t.info_hash}`, 'data-static': true, novalidate: true },
    field('torrent-limit-down', 'Download', l.download_bps),
    field('torrent-limit-up', 'Upload', l.upload_bps),
    h('button', { type: 'submit' }, 'Set limits'));
}

// The torrent's own path rules (`PUT .../path_rules` replaces all four; empty = no such rule).
export const PATH_RULES = [
  ['sequence', 'Sequence', '0-0#1 1-ff00:0:120 0*', 'scionproto hop predicates, e.g. via 1-ff00:0:120'],
  ['acl', 'ACL', '- 1-ff00:0:110; +', '+/- hop predicates, ending in + or -'],
  ['path_policy', 'Path policy', 'deny=2; max-hops=4; min-mtu=1280', 'deny, allow, max-hops, min-mtu'],
  ['preference', 'Preference', 'latency,hops', 'latency, bandwidth, hops, mtu'],
];

function pathRulesForm(t) {
  const r = t.path_rules || {};
  // Keyed by the rules themselves: a change (saved here or elsewhere) rebuilds the form with the
  // daemon's values; otherwise live updates leave what is being typed alone.
  const key = `path-rules-${t.info_hash}-${JSON.stringify(PATH_RULES.map(([k]) => r[k] ?? null))}`;
  return h('form', { class: 'path-rules', 'data-form': 'path-rules', 'data-ih': t.info_hash, 'data-key': key, 'data-static': true, novalidate: true },
    h('div', { class: 'field-row' }, PATH_RULES.map(([k, label, example, hint]) => h('div', { class: 'field' },
      h('label', { for: `rule-${k}` }, label, h('span', { class: 'hint' }, ` (${hint})`)),
      h('input', { id: `rule-${k}`, name: k, type: 'text', value: r[k] ?? '', placeholder: example, spellcheck: 'false', autocomplete: 'off' })))),
    h('p', { class: 'form-error', id: 'path-rules-error', role: 'alert', hidden: true }),
    h('div', { class: 'buttons' }, h('button', { type: 'submit' }, 'Save path rules')));
}

function pathRulesSection(t) {
  // The daemon's own words when the rules leave no path (the notice at the top says it too).
  const refused = t.error && /allowed by the torrent's/.test(t.error) ? t.error : null;
  return h('section', { class: 'card', 'aria-labelledby': 'rules-title' },
    h('h2', { id: 'rules-title' }, 'Path rules'),
    h('p', { class: 'hint' }, 'Which SCION paths this torrent\'s lanes may use, and in which order they are tried. Empty = no such rule; saving replaces all four.'),
    refused ? h('p', { class: 'notice error', 'data-rules-error': true }, refused) : null,
    pathRulesForm(t));
}

function peersForm(t) {
  return h('form', { class: 'inline-form', 'data-form': 'add-peers', 'data-ih': t.info_hash, 'data-key': `peers-${t.info_hash}`, 'data-static': true },
    h('label', { for: 'peer-input' }, 'Add peers'),
    h('input', { id: 'peer-input', name: 'peers', type: 'text', placeholder: '1-ff00:0:112,[127.0.0.1]:31000 192.0.2.1:6881', spellcheck: 'false', autocomplete: 'off' }),
    h('button', { type: 'submit' }, 'Add'));
}

export function detailView(snap, infoHash) {
  if (!snap) return h('p', { class: 'empty' }, 'Waiting for the daemon…');
  const t = (snap.torrents || []).find((x) => x.info_hash === infoHash);
  if (!t) {
    return h('section', null, h('p', null, h('a', { href: '#/' }, '← All torrents')),
      h('h1', null, 'Torrent not found'),
      h('p', { class: 'empty' }, `No torrent with info hash ${infoHash} (it may have been removed).`));
  }
  return h('section', { class: 'detail', 'data-ih': t.info_hash, 'data-state': t.state, 'data-progress': t.progress, 'aria-labelledby': 'detail-title' },
    h('p', { class: 'crumb' }, h('a', { href: '#/' }, '← All torrents')),
    h('div', { class: 'page-head' },
      h('h1', { id: 'detail-title' }, t.name || t.info_hash),
      stateBadge(t.state),
      torrentActions(t)),
    t.error ? h('p', { class: 'notice error', role: 'alert' }, t.error) : null,
    progressBar(t.progress, t.state, `Progress of ${t.name}`),
    summary(t),
    pathsSection(t, snap.at_unix_ms || Date.now()),
    peersSection(t),
    trackersSection(t),
    h('section', { class: 'card' }, h('h2', null, 'More peers'), peersForm(t)),
    h('section', { class: 'card' }, h('h2', null, 'Limits for this torrent'),
      h('p', { class: 'hint' }, 'Empty = unlimited (the global limits still apply).'), limitsForm(t)),
    pathRulesSection(t),
    filesSection(t));
}
