// The app shell: hash routing, rendering from the live snapshot, actions (event delegation on
// data-action, so re-rendered nodes need no listeners), dialogs and drag-and-drop.

import { h, morphChildren } from './dom.js';
import { api, onTokenNeeded, setToken } from './api.js';
import { live, subscribe, start, apply } from './live.js';
import { showError, showInfo } from './toast.js';
import * as f from './format.js';
import { listView, listUi } from './pages/list.js';
import { detailView, PATH_RULES } from './pages/detail.js';
import { pathsView } from './pages/pathsPage.js';
import { settingsView, settingsFromForm } from './pages/settings.js';
import { installFileHandlers } from './files.js';

const $ = (id) => document.getElementById(id);
const main = $('main');

// ---- routing -------------------------------------------------------------------------------

function route() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean);
  if (parts[0] === 'torrent' && parts[1]) return { page: 'detail', ih: decodeURIComponent(parts[1]).toLowerCase() };
  if (parts[0] === 'paths') return { page: 'paths' };
  if (parts[0] === 'settings') return { page: 'settings' };
  return { page: 'torrents' };
}

const settingsState = { data: null, error: null };

async function loadSettings() {
  settingsState.error = null;
  try {
    settingsState.data = await api.settings();
  } catch (e) {
    settingsState.error = e.message;
    showError(e, 'Loading settings');
  }
  render();
}

function view(r) {
  const snap = live.snapshot;
  switch (r.page) {
    case 'detail':
      return detailView(snap, r.ih);
    case 'paths':
      return pathsView(snap);
    case 'settings':
      return settingsView(settingsState.data, settingsState.error);
    default:
      return listView(snap);
  }
}

const TITLES = { torrents: 'Torrents', paths: 'Paths', settings: 'Settings', detail: 'Torrent' };

function render() {
  const r = route();
  const wrapper = h('div', null, h('div', { 'data-key': `page-${r.page}`, class: `page page-${r.page}` }, view(r)));
  morphChildren(main, wrapper);
  for (const a of document.querySelectorAll('[data-nav]')) {
    const current = a.dataset.nav === (r.page === 'detail' ? 'torrents' : r.page);
    if (current) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const snap = live.snapshot;
  let title = TITLES[r.page];
  if (r.page === 'detail' && snap) {
    const t = snap.torrents.find((x) => x.info_hash === r.ih);
    if (t) title = t.name;
  }
  document.title = `${title} · bittorrent-over-scion`;
  renderChrome();
}

function renderChrome() {
  const snap = live.snapshot;
  const conn = $('conn');
  const labels = { connecting: 'Connecting…', live: 'Live', reconnecting: 'Reconnecting…' };
  // A status region: touch it only on a change, or screen readers repeat it every update.
  if (conn.dataset.state !== live.connection) {
    conn.textContent = labels[live.connection];
    conn.dataset.state = live.connection;
  }
  const banner = $('banner');
  const lost = `Lost the connection to the daemon — reconnecting…${live.lastError ? ` (${live.lastError})` : ''}`;
  if (live.connection !== 'reconnecting') banner.hidden = true;
  else if (banner.hidden || banner.textContent !== lost) {
    banner.hidden = false;
    banner.textContent = lost;
  }
  if (snap) {
    let down = 0;
    let up = 0;
    for (const t of snap.torrents || []) {
      down += t.rate_down;
      up += t.rate_up;
    }
    const totals = $('totals');
    const text = `↓ ${f.rate(down)}  ↑ ${f.rate(up)}`;
    if (totals.textContent !== text) totals.textContent = text;
    totals.title = 'All torrents: download and upload rate';
  }
}

let lastRoute = '';
function onRoute() {
  const r = route();
  const key = JSON.stringify(r);
  if (r.page === 'settings' && lastRoute !== key) {
    settingsState.data = null;
    loadSettings();
  }
  const changed = lastRoute && lastRoute !== key;
  lastRoute = key;
  render();
  if (changed) {
    window.scrollTo(0, 0);
    main.focus({ preventScroll: true });
  }
}

// ---- actions -------------------------------------------------------------------------------

function torrentName(ih) {
  const t = live.snapshot && live.snapshot.torrents.find((x) => x.info_hash === ih);
  return t ? t.name : ih;
}

/** Runs an API call; on failure tells the person; on success refreshes from a snapshot. */
async function act(what, fn) {
  try {
    const out = await fn();
    refreshSoon();
    return out;
  } catch (e) {
    showError(e, what);
    return undefined;
  }
}

let refreshTimer = null;
function refreshSoon() {
  // The SSE stream brings the change too; a direct read makes the page answer at once.
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(async () => {
    try {
      apply(await api.snapshot());
    } catch (e) {
      showError(e, 'Refreshing');
    }
  }, 100);
}

const actions = {
  'open-add': () => openAdd(),
  'close-dialog': (el) => el.closest('dialog').close(),
  pause: (el) => act(`Pausing ${torrentName(el.dataset.ih)}`, () => api.pause(el.dataset.ih)),
  resume: (el) => act(`Resuming ${torrentName(el.dataset.ih)}`, () => api.resume(el.dataset.ih)),
  remove: (el) => openRemove(el.dataset.ih),
  sort: (el) => {
    const col = el.dataset.col;
    if (listUi.sort === col) listUi.desc = !listUi.desc;
    else {
      listUi.sort = col;
      listUi.desc = !['name', 'state', 'eta'].includes(col);
    }
    render();
  },
  filter: (el) => {
    listUi.filter = el.dataset.state;
    render();
  },
  'reload-settings': () => loadSettings(),
};

document.addEventListener('click', (ev) => {
  const el = ev.target.closest('[data-action]');
  if (!el || !actions[el.dataset.action]) return;
  ev.preventDefault();
  actions[el.dataset.action](el);
});

// ---- add dialog ----------------------------------------------------------------------------

const addDialog = $('add-dialog');
const addForm = $('add-form');
const addFile = $('add-file');

function openAdd(files) {
  addForm.reset();
  $('add-error').hidden = true;
  if (files) addFile.files = files;
  updateFileHint();
  if (!addDialog.open) addDialog.showModal();
  (files ? $('add-outdir') : addFile).focus();
}

function updateFileHint() {
  const file = addFile.files && addFile.files[0];
  $('add-file-hint').textContent = file
    ? `Selected: ${file.name} (${f.bytes(file.size)})`
    : 'Or drop a .torrent file anywhere on the page.';
}
addFile.addEventListener('change', updateFileHint);

function base64(buffer) {
  const bytes = new Uint8Array(buffer);
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

/** SCION addresses contain commas (`ISD-AS,[IP]:port`), so peers are split on whitespace only. */
function peerList(text) {
  return text.split(/\s+/).map((x) => x.trim()).filter(Boolean);
}

function addError(message) {
  const el = $('add-error');
  el.textContent = message;
  el.hidden = false;
}

addForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const file = addFile.files && addFile.files[0];
  const magnet = $('add-magnet').value.trim();
  if (!file && !magnet) return addError('Choose a .torrent file or paste a magnet link.');
  if (file && magnet) return addError('Give either a file or a magnet link, not both.');
  if (magnet && !magnet.startsWith('magnet:?')) return addError('A magnet link starts with “magnet:?”.');
  const body = { paused: $('add-paused').checked };
  const outDir = $('add-outdir').value.trim();
  if (outDir) body.out_dir = outDir;
  const peers = peerList($('add-peers').value);
  if (peers.length) body.peers = peers;
  const submit = $('add-submit');
  submit.disabled = true;
  try {
    if (file) body.torrent_base64 = base64(await file.arrayBuffer());
    else body.magnet = magnet;
    const out = await api.addTorrent(body);
    addDialog.close();
    showInfo(`Added ${file ? file.name : 'magnet link'}`);
    refreshSoon();
    if (out && out.info_hash) location.hash = '#/';
  } catch (e) {
    // Shown in the dialog, where the person is looking (a toast would sit under the backdrop).
    addError(e.message);
  } finally {
    submit.disabled = false;
  }
  return undefined;
});

// ---- remove dialog -------------------------------------------------------------------------

const removeDialog = $('remove-dialog');
let removing = null;

function openRemove(ih) {
  removing = ih;
  $('remove-text').textContent = `“${torrentName(ih)}” will be removed from the client.`;
  $('remove-data').checked = false;
  removeDialog.showModal();
  $('remove-data').focus();
}

$('remove-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const ih = removing;
  const withData = $('remove-data').checked;
  removeDialog.close();
  const name = torrentName(ih);
  const done = await act(`Removing ${name}`, async () => {
    await api.remove(ih, withData);
    return true;
  });
  if (done) {
    showInfo(`Removed ${name}${withData ? ' and its data' : ''}`);
    if (route().page === 'detail') location.hash = '#/';
    // The button that opened the dialog is gone with its row: keep focus on the page.
    else main.focus({ preventScroll: true });
  }
});

// ---- per-torrent forms ---------------------------------------------------------------------

document.addEventListener('submit', async (ev) => {
  const form = ev.target;
  if (form.dataset.form === 'add-peers') {
    ev.preventDefault();
    const input = form.querySelector('input');
    const peers = peerList(input.value);
    if (!peers.length) return showError(new Error('Type at least one peer address'), 'Adding peers');
    const out = await act('Adding peers', () => api.addPeers(form.dataset.ih, peers));
    if (out) {
      showInfo(`${out.added} new peer${out.added === 1 ? '' : 's'}`);
      input.value = '';
    }
  } else if (form.dataset.form === 'limits') {
    ev.preventDefault();
    const limits = {};
    for (const [key, id] of [['download_bps', 'torrent-limit-down'], ['upload_bps', 'torrent-limit-up']]) {
      const raw = form.querySelector(`#${id}`).value.trim();
      const v = raw === '' ? null : Number(raw);
      if (v !== null && (!Number.isFinite(v) || v < 0)) return showError(new Error('a limit is a number ≥ 0 (KiB/s) or empty'), 'Setting limits');
      limits[key] = v === null ? null : Math.round(v * 1024);
    }
    if ((await act('Setting limits', () => api.setLimits(form.dataset.ih, limits))) !== undefined) showInfo('Limits set');
  } else if (form.dataset.form === 'path-rules') {
    ev.preventDefault();
    const err = form.querySelector('.form-error');
    err.hidden = true;
    const rules = {};
    for (const [key] of PATH_RULES) {
      const v = form.elements[key].value.trim();
      if (v) rules[key] = v;
    }
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    try {
      await api.setPathRules(form.dataset.ih, rules);
      showInfo(Object.keys(rules).length ? 'Path rules saved' : 'Path rules removed');
      refreshSoon();
    } catch (e) {
      // Next to the fields, where the person is looking: the daemon names the rule at fault.
      err.textContent = e.message;
      err.hidden = false;
    } finally {
      button.disabled = false;
    }
  } else if (form.dataset.form === 'settings') {
    ev.preventDefault();
    const err = $('settings-error');
    err.hidden = true;
    let body;
    try {
      body = settingsFromForm(form);
    } catch (e) {
      err.textContent = e.message;
      err.hidden = false;
      return undefined;
    }
    const saved = await act('Saving settings', () => api.saveSettings(body));
    if (saved !== undefined) {
      showInfo('Settings saved');
      if (saved) settingsState.data = saved;
    }
  }
  return undefined;
});

// ---- drag and drop -------------------------------------------------------------------------

const dropHint = $('drop-hint');
let dragDepth = 0;
const hasFiles = (ev) => ev.dataTransfer && [...ev.dataTransfer.types].includes('Files');

document.addEventListener('dragenter', (ev) => {
  if (!hasFiles(ev)) return;
  ev.preventDefault();
  dragDepth += 1;
  dropHint.hidden = false;
});
document.addEventListener('dragover', (ev) => {
  if (!hasFiles(ev)) return;
  ev.preventDefault();
  ev.dataTransfer.dropEffect = 'copy';
});
document.addEventListener('dragleave', () => {
  dragDepth = Math.max(0, dragDepth - 1);
  if (!dragDepth) dropHint.hidden = true;
});
document.addEventListener('drop', (ev) => {
  if (!hasFiles(ev)) return;
  ev.preventDefault();
  dragDepth = 0;
  dropHint.hidden = true;
  const files = [...ev.dataTransfer.files];
  if (!files.length) return;
  if (files.length > 1) showInfo('Several files dropped: adding the first; drop the others one by one.');
  const dt = new DataTransfer();
  dt.items.add(files[0]);
  openAdd(dt.files);
});

// ---- token ---------------------------------------------------------------------------------

const tokenDialog = $('token-dialog');
onTokenNeeded(() => new Promise((resolve) => {
  const input = $('token-input');
  input.value = '';
  const finish = (value) => {
    tokenDialog.removeEventListener('close', onClose);
    resolve(value);
  };
  const onClose = () => finish(tokenDialog.returnValue === 'ok' ? input.value.trim() || null : null);
  tokenDialog.addEventListener('close', onClose);
  tokenDialog.returnValue = '';
  tokenDialog.showModal();
  input.focus();
}));
$('token-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  if (!$('token-input').value.trim()) return;
  setToken($('token-input').value.trim());
  tokenDialog.close('ok');
});

// ---- focus trap ----------------------------------------------------------------------------

// A modal <dialog> makes the page inert, but Tab can still leave it for the browser's own UI;
// keep Tab cycling inside the open dialog.
const FOCUSABLE = 'a[href], button:not([disabled]), input:not([disabled]), textarea:not([disabled]), select:not([disabled]), [tabindex]:not([tabindex="-1"])';
document.addEventListener('keydown', (ev) => {
  if (ev.key !== 'Tab') return;
  const dialog = document.querySelector('dialog[open]');
  if (!dialog) return;
  const items = [...dialog.querySelectorAll(FOCUSABLE)].filter((el) => el.offsetParent !== null);
  if (!items.length) return;
  const first = items[0];
  const last = items[items.length - 1];
  const inside = dialog.contains(document.activeElement);
  if (ev.shiftKey && (document.activeElement === first || !inside)) {
    ev.preventDefault();
    last.focus();
  } else if (!ev.shiftKey && (document.activeElement === last || !inside)) {
    ev.preventDefault();
    first.focus();
  }
});

// ---- start ---------------------------------------------------------------------------------

let framePending = false;
subscribe(() => {
  if (framePending) return;
  framePending = true;
  requestAnimationFrame(() => {
    framePending = false;
    render();
  });
});
// The file tree's checkboxes, priorities, order toggles and play links (files.js).
installFileHandlers({ act, render });
window.addEventListener('hashchange', onRoute);
window.addEventListener('unhandledrejection', (ev) => showError(ev.reason, 'Unexpected error'));
onRoute();
start();
