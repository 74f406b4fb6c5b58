// The path service: every destination AS, the paths known to it, which carry lanes now and
// which are being avoided (and why).

import { h } from '../dom.js';
import * as f from '../format.js';
import { hopSequence, pathMetadata, pathSummary } from '../paths.js';

function status(kp) {
  if (kp.failed) return h('span', { class: 'badge state-error', title: kp.failed }, 'failed');
  if (kp.lanes > 0) return h('span', { class: 'badge state-seeding' }, `in use · ${kp.lanes} lane${kp.lanes > 1 ? 's' : ''}`);
  return h('span', { class: 'badge state-paused' }, 'idle');
}

function destination(d, now) {
  const used = d.paths.filter((p) => p.lanes > 0).length;
  const failed = d.paths.filter((p) => p.failed).length;
  return h('article', { class: 'card destination', 'data-key': d.ia, 'data-ia': d.ia },
    h('h2', null, h('code', null, d.ia)),
    h('p', { class: 'muted' },
      `${d.paths.length} known path${d.paths.length === 1 ? '' : 's'} · ${used} in use · ${failed} failed · refreshed ${f.ago(d.refreshed_unix_ms, now)}`),
    d.error ? h('p', { class: 'notice error' }, `Path lookup failed: ${d.error}`) : null,
    d.paths.length === 0 ? null : h('ul', { class: 'known-paths' }, d.paths.map((kp) => h('li', {
      class: `known-path${kp.failed ? ' failed' : kp.lanes > 0 ? ' used' : ''}`,
      'data-key': kp.path.fingerprint,
      'data-fingerprint': kp.path.fingerprint,
      'data-lanes': String(kp.lanes),
    },
    h('div', { class: 'kp-head' }, status(kp),
      h('span', { class: 'muted' }, pathSummary(kp.path, now))),
    hopSequence(kp.path),
    pathMetadata(kp.path),
    kp.failed ? h('p', { class: 'lane-reason' }, `Avoided: ${kp.failed}`) : null))));
}

export function pathsView(snap) {
  let body;
  if (!snap) body = h('p', { class: 'empty' }, 'Waiting for the daemon…');
  else if (!snap.paths || !snap.paths.length) {
    body = h('p', { class: 'empty' }, snap.local_scion
      ? 'No destination AS yet: paths are looked up when a SCION peer is dialled.'
      : 'SCION is not running in this daemon, so there are no paths.');
  } else body = snap.paths.map((d) => destination(d, snap.at_unix_ms || Date.now()));
  return h('section', { 'aria-labelledby': 'paths-page-title' },
    h('div', { class: 'page-head' }, h('h1', { id: 'paths-page-title' }, 'SCION paths')),
    snap && snap.local_scion ? h('p', { class: 'muted' }, 'From ', h('code', null, snap.local_scion)) : null,
    body);
}
