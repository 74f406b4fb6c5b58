// A torrent's files as a tree: folders that fold, a checkbox per file (wanted or skipped), a
// priority per file, the torrent's download order (sequential, first/last piece first), and a
// play / open link per file to its stream (GET .../files/{index}/stream, which serves ranges
// while the torrent downloads).
//
// The play links carry a signature from GET .../stream_access, never the API token: a <video>
// or a new tab cannot send the Authorization header, and URLs end up in history and logs.

import { h } from './dom.js';
import { request } from './api.js';
import * as f from './format.js';
import { progressBar } from './pages/list.js';

const enc = encodeURIComponent;
const PRIORITIES = ['skip', 'low', 'normal', 'high'];
const MEDIA = /\.(mp4|m4v|mkv|webm|ogv|mov|avi|mpe?g|ts|mp3|m4a|aac|flac|ogg|oga|opus|wav)$/i;

// Signatures per torrent, fetched when its page shows and again before they expire.
const access = new Map();
let rerender = () => {};

function signature(ih) {
  const a = access.get(ih);
  const now = Date.now() / 1000;
  if (a && (a.pending || a.expires_unix - now > 600)) return a.sig || null;
  access.set(ih, { ...(a || {}), pending: true });
  request('GET', `/torrents/${enc(ih)}/stream_access`)
    .then((r) => access.set(ih, { sig: r.sig, expires_unix: r.expires_unix }))
    .catch(() => access.delete(ih))
    .finally(() => rerender());
  return a ? a.sig || null : null;
}

export function streamUrl(ih, index, sig) {
  const url = `/api/v1/torrents/${enc(ih)}/files/${index}/stream`;
  return sig ? `${url}?sig=${enc(sig)}` : url;
}

// {name, files: [[index, file]], dirs: Map<name, node>} from the files' `/`-separated paths.
function tree(files) {
  const root = { files: [], dirs: new Map() };
  files.forEach((file, index) => {
    const parts = file.path.split('/');
    let node = root;
    for (const dir of parts.slice(0, -1)) {
      if (!node.dirs.has(dir)) node.dirs.set(dir, { files: [], dirs: new Map() });
      node = node.dirs.get(dir);
    }
    node.files.push([index, file, parts[parts.length - 1]]);
  });
  return root;
}

function indexesUnder(node) {
  return [...node.files.map(([i]) => i), ...[...node.dirs.values()].flatMap(indexesUnder)];
}

function fileRow(t, index, file, name, sig) {
  const skipped = file.priority === 'skip';
  const id = `file-${index}`;
  const label = MEDIA.test(name) ? 'play' : 'open';
  return h('li', { class: `file${skipped ? ' skipped' : ''}`, 'data-key': `f${index}`, 'data-file': String(index), 'data-priority': file.priority },
    // Keyed by the priority: a change from anywhere rebuilds the controls with the daemon's value.
    h('input', { type: 'checkbox', id, checked: !skipped, 'data-key': `want-${index}-${file.priority}`, 'data-want': String(index), 'data-ih': t.info_hash, 'aria-label': `Download ${file.path}` }),
    h('label', { for: id, class: 'file-name' }, name),
    h('select', { 'data-key': `prio-${index}-${file.priority}`, 'data-prio': String(index), 'data-ih': t.info_hash, 'aria-label': `Priority of ${file.path}` },
      PRIORITIES.map((p) => h('option', { value: p, selected: p === file.priority }, p))),
    h('span', { class: 'num file-size' }, f.bytes(file.length)),
    h('span', { class: 'progress-cell' }, progressBar(file.length ? file.done / file.length : 1, null, `Progress of ${file.path}`)),
    h('a', { class: 'play', href: streamUrl(t.info_hash, index, sig), target: '_blank', rel: 'noopener', 'data-stream': String(index), title: `${label} ${file.path} (streams while it downloads)` }, label));
}

function folder(t, name, node, path, sig) {
  const all = indexesUnder(node);
  const wanted = all.filter((i) => t.files[i].priority !== 'skip').length;
  return h('li', { class: 'folder', 'data-key': `d${path}` },
    h('details', { open: true },
      h('summary', null,
        h('input', { type: 'checkbox', checked: wanted > 0, 'data-key': `dir-${path}-${wanted}-${all.length}`, 'data-want-dir': all.join(','), 'data-ih': t.info_hash, 'aria-label': `Download everything in ${path}` }),
        h('span', { class: 'folder-name' }, `${name}/`),
        h('span', { class: 'muted' }, ` ${wanted} of ${all.length} wanted`)),
      listOf(t, node, path, sig)));
}

function listOf(t, node, path, sig) {
  return h('ul', { class: 'file-tree' },
    [...node.dirs].map(([name, child]) => folder(t, name, child, `${path}${name}/`, sig)),
    node.files.map(([index, file, name]) => fileRow(t, index, file, name, sig)));
}

function orderForm(t) {
  const toggle = (key, label, on) => h('label', { class: 'toggle' },
    h('input', { type: 'checkbox', checked: on, 'data-key': `${key}-${on}`, 'data-order': key, 'data-ih': t.info_hash }),
    ` ${label}`);
  return h('p', { class: 'file-order' },
    toggle('sequential', 'Download in order (sequential)', !!t.sequential),
    toggle('first_last_piece', 'First and last piece of each file first', !!t.first_last_piece));
}

export function filesSection(t) {
  const files = t.files || [];
  const sig = files.length ? signature(t.info_hash) : null;
  return h('section', { class: 'card', 'aria-labelledby': 'files-title' },
    h('h2', { id: 'files-title' }, `Files (${files.length})`),
    files.length === 0
      ? h('p', { class: 'empty' }, 'No file list yet (metadata not fetched).')
      : [
        h('p', { class: 'hint' }, 'Unchecked files are not downloaded (nor created on disk). "play" / "open" streams a file while it downloads: the part being read is fetched first.'),
        orderForm(t),
        listOf(t, tree(files), '', sig),
      ]);
}

/** Wires the file controls: `act(what, fn)` runs an API call (errors shown), `render` redraws. */
export function installFileHandlers({ act, render }) {
  rerender = render;
  const setPriorities = (ih, priorities, what) => act(what, () => request('PUT', `/torrents/${enc(ih)}/files`, { priorities }));
  document.addEventListener('change', (ev) => {
    const el = ev.target;
    const ih = el.dataset && el.dataset.ih;
    if (!ih) return;
    if (el.dataset.want !== undefined) {
      setPriorities(ih, { [el.dataset.want]: el.checked ? 'normal' : 'skip' }, 'Choosing files');
    } else if (el.dataset.prio !== undefined) {
      setPriorities(ih, { [el.dataset.prio]: el.value }, 'Setting the priority');
    } else if (el.dataset.wantDir !== undefined) {
      const prio = el.checked ? 'normal' : 'skip';
      const priorities = Object.fromEntries(el.dataset.wantDir.split(',').map((i) => [i, prio]));
      setPriorities(ih, priorities, 'Choosing files');
    } else if (el.dataset.order !== undefined) {
      act('Setting the download order', () => request('PUT', `/torrents/${enc(ih)}/options`, { [el.dataset.order]: el.checked }));
    }
  });
}
