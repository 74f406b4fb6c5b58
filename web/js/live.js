// The live state: the latest ClientSnapshot from the SSE stream, the connection's state, and a
// client-side history of each lane's goodput (the API sends only the current rates).

import { api, eventsUrl, ApiError } from './api.js';

export const HISTORY_MS = 120_000;

const listeners = new Set();
const history = new Map(); // `${info_hash}/${lane id}` -> [{t, down, up}]

export const live = {
  snapshot: null,
  /** 'connecting' | 'live' | 'reconnecting' */
  connection: 'connecting',
  lastError: null,
};

export function subscribe(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function notify() {
  for (const fn of listeners) fn(live);
}

/** Goodput samples of one lane, oldest first. */
export function laneHistory(infoHash, laneId) {
  return history.get(`${infoHash}/${laneId}`) || [];
}

function record(snap) {
  const now = snap.at_unix_ms || Date.now();
  const seen = new Set();
  for (const t of snap.torrents || []) {
    for (const lane of t.lanes || []) {
      const key = `${t.info_hash}/${lane.id}`;
      seen.add(key);
      let h = history.get(key);
      if (!h) history.set(key, (h = []));
      const last = h[h.length - 1];
      if (last && last.t >= now) continue;
      h.push({ t: now, down: lane.rate_down || 0, up: lane.rate_up || 0 });
    }
  }
  for (const [key, h] of history) {
    while (h.length && h[0].t < now - HISTORY_MS) h.shift();
    if (!h.length || (!seen.has(key) && h[h.length - 1].t < now - HISTORY_MS)) history.delete(key);
  }
}

export function apply(snap) {
  record(snap);
  live.snapshot = snap;
  notify();
}

let source = null;
let retryMs = 1000;
let retryTimer = null;

function setConnection(state, error = null) {
  if (live.connection === state && live.lastError === error) return;
  live.connection = state;
  live.lastError = error;
  notify();
}

function open() {
  source = new EventSource(eventsUrl());
  source.addEventListener('open', () => {
    retryMs = 1000;
    setConnection('live');
  });
  source.addEventListener('snapshot', (ev) => {
    let snap;
    try {
      snap = JSON.parse(ev.data);
    } catch (e) {
      setConnection(live.connection, `Bad snapshot from the daemon: ${e.message}`);
      return;
    }
    if (live.connection !== 'live') setConnection('live');
    apply(snap);
  });
  source.addEventListener('error', () => {
    // EventSource retries by itself only for some failures; we own the retry so a 401 or a
    // restarted daemon are handled the same way.
    source.close();
    source = null;
    setConnection('reconnecting', live.lastError);
    scheduleReconnect();
  });
}

function scheduleReconnect() {
  clearTimeout(retryTimer);
  retryTimer = setTimeout(reconnect, retryMs);
  retryMs = Math.min(retryMs * 2, 10_000);
}

/** A plain request first: it tells a 401 (asks for the token) from a daemon that is down. */
async function reconnect() {
  try {
    apply(await api.snapshot());
  } catch (e) {
    setConnection('reconnecting', e instanceof ApiError ? e.message : String(e));
    scheduleReconnect();
    return;
  }
  open();
}

export function start() {
  reconnect();
}
