// Drawing SCION paths: the hop sequence as ISD-AS#interface boxes with arrows, and a goodput
// chart (SVG polyline over the last two minutes).

import { h, s } from './dom.js';
import { duration, rate } from './format.js';
import { HISTORY_MS } from './live.js';

/** The hop sequence of a PathSnapshot; an empty one is a path inside our own AS. */
export function hopSequence(path) {
  const hops = (path && path.hops) || [];
  if (!hops.length) {
    return h('ol', { class: 'hops', 'aria-label': 'Path inside the local AS' },
      h('li', { class: 'hop local' }, 'local'));
  }
  const label = hops.map((x) => `${x.ia}#${x.interface}`).join(' → ');
  return h(
    'ol',
    { class: 'hops', 'aria-label': `Path ${label}` },
    hops.map((x, i) => {
      // Between ASes the packet crosses a link; inside an AS it goes from ingress to egress.
      const link = i > 0 && hops[i - 1].ia !== x.ia;
      return [
        i > 0 ? h('li', { class: link ? 'arrow link' : 'arrow through', 'aria-hidden': 'true' }, link ? '⟶' : '→') : null,
        h('li', { class: 'hop', title: x.geo ? place(x.geo) : null },
          h('span', { class: 'ia' }, x.ia), h('span', { class: 'ifid' }, `#${x.interface}`)),
      ];
    }),
  );
}

const UNKNOWN = 'unknown';

function place(g) {
  const at = `${g.latitude.toFixed(4)}, ${g.longitude.toFixed(4)}`;
  return g.address ? `${g.address} (${at})` : at;
}

/** kbit/s as the daemon gives it, in the largest unit that keeps it readable. */
export function kbps(v) {
  if (v === null || v === undefined) return UNKNOWN;
  if (v >= 1e6) return `${+(v / 1e6).toFixed(2)} Gbit/s`;
  if (v >= 1e3) return `${+(v / 1e3).toFixed(1)} Mbit/s`;
  return `${v} kbit/s`;
}

function ms(v) {
  return v === null || v === undefined ? UNKNOWN : `${+v.toFixed(3)} ms`;
}

/** MTU · latency · bottleneck · expiry of a PathSnapshot; unknown values say so. */
export function pathSummary(path, nowMs) {
  const left = path.expiry_unix_ms ? Math.round((path.expiry_unix_ms - nowMs) / 1000) : null;
  const expiry = left === null ? `expiry ${UNKNOWN}` : left > 0 ? `expires in ${duration(left)}` : 'expired';
  return `MTU ${path.mtu ?? UNKNOWN} · latency ${ms(path.latency_ms)} · bandwidth ${kbps(path.bandwidth_kbps)} · ${expiry}`;
}

/**
 * What the daemon says about each step of the path (links between ASes, crossings of transit
 * ASes), the routers' places and the ASes' notes, folded away under a summary line.
 */
export function pathMetadata(path) {
  const hops = path.hops || [];
  const steps = path.steps || [];
  if (!hops.length || !steps.length) return null;
  const rows = steps.map((st, i) => {
    const a = hops[i];
    const b = hops[i + 1];
    if (!a || !b) return null;
    const where = st.kind === 'internal'
      ? `inside ${a.ia} (#${a.interface} → #${b.interface})`
      : `${a.ia}#${a.interface} ⟶ ${b.ia}#${b.interface}`;
    const kind = st.kind === 'internal'
      ? `internal hops ${st.internal_hops ?? UNKNOWN}`
      : `link ${st.link_type ?? UNKNOWN}`;
    return h('tr', { 'data-key': String(i) },
      h('td', null, where), h('td', null, kind), h('td', null, ms(st.latency_ms)), h('td', null, kbps(st.bandwidth_kbps)));
  });
  const notes = (path.notes || []).map((n) => h('li', { 'data-key': n.ia }, h('code', null, n.ia), ' ', n.note === null ? h('span', { class: 'muted' }, UNKNOWN) : n.note));
  const places = hops.map((x, i) => h('li', { 'data-key': String(i) }, h('code', null, `${x.ia}#${x.interface}`), ' ', x.geo ? place(x.geo) : h('span', { class: 'muted' }, UNKNOWN)));
  return h('details', { class: 'path-meta' },
    h('summary', null, 'Path metadata'),
    h('table', { class: 'path-steps' },
      h('thead', null, h('tr', null, h('th', null, 'Step'), h('th', null, 'Kind'), h('th', null, 'Latency'), h('th', null, 'Bandwidth'))),
      h('tbody', null, rows)),
    h('p', { class: 'muted' }, 'Routers'), h('ul', { class: 'path-geo' }, places),
    h('p', { class: 'muted' }, 'Notes'), h('ul', { class: 'path-notes' }, notes));
}

const W = 240;
const H = 56;

const MIN_WINDOW_MS = 30_000;

function polyline(samples, field, maxV, now, windowMs, cls) {
  const points = samples
    .map((p) => {
      const x = W - ((now - p.t) / windowMs) * W;
      const y = H - 2 - (p[field] / maxV) * (H - 6);
      return [x.toFixed(1), y.toFixed(1)];
    });
  const line = points.map((p) => p.join(',')).join(' ');
  const area = `${points[0][0]},${H} ${line} ${points[points.length - 1][0]},${H}`;
  return [
    s('polygon', { class: `area ${cls}`, points: area }),
    s('polyline', { class: cls, points: line, fill: 'none', 'vector-effect': 'non-scaling-stroke' }),
  ];
}

/** A small chart of one lane's goodput, download and upload; `now` = the latest snapshot time. */
export function goodputChart(samples, now) {
  const maxV = Math.max(1, ...samples.map((p) => Math.max(p.down, p.up)));
  // The time axis grows with the history (a short transfer still fills a readable part of it)
  // up to the two minutes kept.
  const span = samples.length ? now - samples[0].t : 0;
  const windowMs = Math.min(HISTORY_MS, Math.max(MIN_WINDOW_MS, Math.ceil(span / 10_000) * 10_000));
  const windowText = windowMs >= 60_000 ? `${+(windowMs / 60_000).toFixed(1)} min` : `${windowMs / 1000} s`;
  const hasDown = samples.some((p) => p.down > 0);
  const hasUp = samples.some((p) => p.up > 0);
  const summary = samples.length
    ? `Goodput over the last ${windowText}, peak ${maxV > 1 ? rate(maxV) : '0'}`
    : 'No goodput samples yet';
  return h(
    'figure',
    { class: 'chart' },
    s(
      'svg',
      { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': summary },
      s('line', { class: 'grid', x1: 0, x2: W, y1: H / 2, y2: H / 2, 'vector-effect': 'non-scaling-stroke' }),
      s('line', { class: 'grid', x1: 0, x2: W, y1: H - 1, y2: H - 1, 'vector-effect': 'non-scaling-stroke' }),
      samples.length > 1 && (hasDown || !hasUp) ? polyline(samples, 'down', maxV, now, windowMs, 'down') : null,
      samples.length > 1 && hasUp ? polyline(samples, 'up', maxV, now, windowMs, 'up') : null,
    ),
    h('figcaption', null,
      h('span', null, maxV > 1 ? `peak ${rate(maxV)}` : 'no traffic'),
      h('span', { class: 'legend' },
        hasDown || !hasUp ? h('span', { class: 'key down' }, 'down') : null,
        hasUp ? h('span', { class: 'key up' }, 'up') : null),
      h('span', null, `last ${windowText}`)),
  );
}
