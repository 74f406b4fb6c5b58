// Human-readable numbers.

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

export function bytes(n) {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  let i = 0;
  let v = n;
  while (v >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i += 1;
  }
  const digits = i === 0 || v >= 100 ? 0 : v >= 10 ? 1 : 2;
  return `${v.toFixed(digits)} ${UNITS[i]}`;
}

export function rate(bps) {
  if (!bps || bps < 1) return '—';
  return `${bytes(bps)}/s`;
}

export function percent(fraction) {
  const p = Math.max(0, Math.min(1, fraction || 0)) * 100;
  return `${p >= 99.95 || p === 0 ? p.toFixed(0) : p.toFixed(1)} %`;
}

export function duration(secs) {
  if (secs === null || secs === undefined) return '—';
  if (secs < 60) return `${Math.round(secs)}s`;
  const m = Math.floor(secs / 60);
  if (m < 60) return `${m}m ${Math.round(secs % 60)}s`;
  const hrs = Math.floor(m / 60);
  if (hrs < 48) return `${hrs}h ${m % 60}m`;
  return `${Math.floor(hrs / 24)}d ${hrs % 24}h`;
}

export function ratio(r) {
  return Number.isFinite(r) ? r.toFixed(2) : '∞';
}

export function ms(v) {
  if (v === null || v === undefined) return '—';
  return v >= 100 ? `${v.toFixed(0)} ms` : `${v.toFixed(1)} ms`;
}

export function ago(unixMs, nowMs) {
  if (!unixMs) return 'never';
  const s = Math.max(0, (nowMs - unixMs) / 1000);
  return s < 2 ? 'just now' : `${duration(s)} ago`;
}

const STATE_LABELS = {
  fetching_metadata: 'Fetching metadata',
  checking: 'Checking',
  downloading: 'Downloading',
  seeding: 'Seeding',
  paused: 'Paused',
  error: 'Error',
};

export function stateLabel(state) {
  return STATE_LABELS[state] || state;
}

export const STATES = Object.keys(STATE_LABELS);

const SOURCE_LABELS = {
  cli: 'command line',
  api: 'API',
  incoming: 'incoming',
  resume: 'resume',
  tracker: 'tracker',
  dht: 'DHT',
  pex: 'PEX',
  magnet: 'magnet',
};

export function sourceLabel(src) {
  return SOURCE_LABELS[src] || src;
}
