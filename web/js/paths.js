// Drawing SCION paths: the hop sequence as ISD-AS#interface boxes with arrows, and a goodput
// chart (SVG polyline over the last two minutes).

import { h, s } from './dom.js';
import { rate } from './format.js';
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
        h('li', { class: 'hop' }, h('span', { class: 'ia' }, x.ia), h('span', { class: 'ifid' }, `#${x.interface}`)),
      ];
    }),
  );
}

const W = 240;
const H = 56;

function polyline(samples, field, maxV, now, cls) {
  const points = samples
    .map((p) => {
      const x = W - ((now - p.t) / HISTORY_MS) * W;
      const y = H - 2 - (p[field] / maxV) * (H - 6);
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    })
    .join(' ');
  return s('polyline', { class: cls, points, fill: 'none', 'vector-effect': 'non-scaling-stroke' });
}

/** A small chart of one lane's goodput, download and upload; `now` = the latest snapshot time. */
export function goodputChart(samples, now) {
  const maxV = Math.max(1, ...samples.map((p) => Math.max(p.down, p.up)));
  const hasDown = samples.some((p) => p.down > 0);
  const hasUp = samples.some((p) => p.up > 0);
  const summary = samples.length
    ? `Goodput over the last ${Math.round(HISTORY_MS / 60000)} minutes, peak ${rate(maxV)}`
    : 'No goodput samples yet';
  return h(
    'figure',
    { class: 'chart' },
    s(
      'svg',
      { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': summary },
      s('line', { class: 'grid', x1: 0, x2: W, y1: H / 2, y2: H / 2, 'vector-effect': 'non-scaling-stroke' }),
      s('line', { class: 'grid', x1: 0, x2: W, y1: H - 1, y2: H - 1, 'vector-effect': 'non-scaling-stroke' }),
      samples.length > 1 && (hasDown || !hasUp) ? polyline(samples, 'down', maxV, now, 'down') : null,
      samples.length > 1 && hasUp ? polyline(samples, 'up', maxV, now, 'up') : null,
    ),
    h('figcaption', null,
      h('span', null, `peak ${rate(maxV)}`),
      h('span', { class: 'legend' },
        hasDown || !hasUp ? h('span', { class: 'key down' }, 'down') : null,
        hasUp ? h('span', { class: 'key up' }, 'up') : null),
      h('span', null, '2 min')),
  );
}
