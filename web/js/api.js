// The daemon's HTTP API (/api/v1). Every failure becomes an ApiError with the server's message;
// a 401 asks the person for the token once and retries.

const TOKEN_KEY = 'bts-token';

export class ApiError extends Error {
  constructor(message, { status = 0, kind = 'network' } = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.kind = kind;
  }
}

let askToken = async () => null;

/** `ask` shows the token prompt and resolves with the entered token (or null). */
export function onTokenNeeded(ask) {
  askToken = ask;
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(t) {
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
}

let pendingToken = null;

/** Shared by concurrent requests so the person is asked once. */
export function requestToken() {
  if (!pendingToken) {
    pendingToken = askToken().then((t) => {
      pendingToken = null;
      if (t) setToken(t);
      return t;
    });
  }
  return pendingToken;
}

async function errorFrom(res) {
  let message = `${res.status} ${res.statusText}`.trim();
  let kind = 'http';
  try {
    const body = await res.json();
    if (body && typeof body.error === 'string') message = body.error;
    if (body && typeof body.kind === 'string') kind = body.kind;
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(message, { status: res.status, kind });
}

export async function request(method, path, body) {
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const headers = { Accept: 'application/json' };
    const t = token();
    if (t) headers.Authorization = `Bearer ${t}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let res;
    try {
      res = await fetch(`/api/v1${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new ApiError(`Cannot reach the daemon (${e.message})`);
    }
    if (res.status === 401) {
      if (t) setToken(null);
      if (await requestToken()) continue;
      throw await errorFrom(res);
    }
    if (!res.ok) throw await errorFrom(res);
    if (res.status === 204) return null;
    const text = await res.text();
    return text ? JSON.parse(text) : null;
  }
  throw new ApiError('The token was not accepted', { status: 401, kind: 'unauthorized' });
}

const enc = encodeURIComponent;

export const api = {
  snapshot: () => request('GET', '/snapshot'),
  addTorrent: (body) => request('POST', '/torrents', body),
  pause: (ih) => request('POST', `/torrents/${enc(ih)}/pause`),
  resume: (ih) => request('POST', `/torrents/${enc(ih)}/resume`),
  remove: (ih, deleteData) => request('DELETE', `/torrents/${enc(ih)}?delete_data=${deleteData ? 'true' : 'false'}`),
  addPeers: (ih, peers) => request('POST', `/torrents/${enc(ih)}/peers`, { peers }),
  setLimits: (ih, limits) => request('PUT', `/torrents/${enc(ih)}/limits`, limits),
  setPathRules: (ih, rules) => request('PUT', `/torrents/${enc(ih)}/path_rules`, rules),
  settings: () => request('GET', '/settings'),
  saveSettings: (body) => request('PUT', '/settings', body),
};

/** The live stream's URL (EventSource cannot send headers, so the token rides in the query). */
export function eventsUrl() {
  const t = token();
  return t ? `/api/v1/events?token=${enc(t)}` : '/api/v1/events';
}
