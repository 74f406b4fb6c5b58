// Settings: global limits and the seeding policy (editable), and what the daemon runs with
// (read-only). Loaded once per visit so live updates never overwrite what is being typed.

import { h } from '../dom.js';

const KIB = 1024;

function numberField(id, label, value, hint, attrs = {}) {
  return h('div', { class: 'field' },
    h('label', { for: id }, label, hint ? h('span', { class: 'hint' }, ` ${hint}`) : null),
    h('input', { id, name: id, type: 'number', min: 0, step: 'any', inputmode: 'decimal', value: value ?? '', ...attrs }));
}

function readOnly(label, value) {
  return h('div', { class: 'stat' }, h('dt', null, label),
    h('dd', null, value === null || value === undefined || value === ''
      ? h('span', { class: 'muted' }, 'not available')
      : h('code', null, String(value))));
}

function dhtText(dht) {
  if (dht === undefined || dht === null) return null;
  if (typeof dht === 'boolean') return dht ? 'on' : 'off';
  if (typeof dht === 'object' && 'enabled' in dht) return dht.enabled ? 'on' : 'off';
  return JSON.stringify(dht);
}

export function settingsView(settings, loadError) {
  if (loadError) {
    return h('section', null, h('h1', null, 'Settings'),
      h('p', { class: 'notice error', role: 'alert' }, `Could not load the settings: ${loadError}`),
      h('button', { type: 'button', 'data-action': 'reload-settings' }, 'Try again'));
  }
  if (!settings) return h('section', null, h('h1', null, 'Settings'), h('p', { class: 'empty' }, 'Loading…'));
  const l = settings.limits || {};
  const sp = settings.seed_policy || {};
  const kib = (v) => (v ? +(v / KIB).toFixed(1) : '');
  return h('section', { 'aria-labelledby': 'settings-title' },
    h('h1', { id: 'settings-title' }, 'Settings'),
    h('form', { class: 'card settings-form', id: 'settings-form', 'data-form': 'settings', 'data-static': true, novalidate: true },
      h('h2', null, 'Limits'),
      h('p', { class: 'hint' }, 'For all torrents together. Empty = unlimited.'),
      h('div', { class: 'field-row' },
        numberField('limit-down', 'Download', kib(l.download_bps), '(KiB/s)'),
        numberField('limit-up', 'Upload', kib(l.upload_bps), '(KiB/s)')),
      h('h2', null, 'Seeding'),
      h('p', { class: 'hint' }, 'A complete torrent stops seeding at the first limit reached. Empty = seed forever.'),
      h('div', { class: 'field-row' },
        numberField('seed-ratio', 'Stop at ratio', sp.stop_at_ratio ?? ''),
        numberField('seed-minutes', 'Stop after', sp.stop_after_secs ? +(sp.stop_after_secs / 60).toFixed(1) : '', '(minutes)')),
      h('p', { class: 'form-error', id: 'settings-error', role: 'alert', hidden: true }),
      h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary' }, 'Save'))),
    h('section', { class: 'card', 'aria-labelledby': 'runtime-title' },
      h('h2', { id: 'runtime-title' }, 'Daemon'),
      h('p', { class: 'hint' }, 'Set when the daemon starts (command line).'),
      h('dl', { class: 'stats' },
        readOnly('SCION daemon', settings.sciond),
        readOnly('Local SCION address', settings.local_scion),
        readOnly('TCP listen address', settings.tcp_listen),
        readOnly('Download root', settings.download_root),
        readOnly('DHT', dhtText(settings.dht)))));
}

/** The PUT body from the form; throws a message for a value that is not a number ≥ 0. */
export function settingsFromForm(form) {
  const num = (id, what) => {
    const raw = form.querySelector(`#${id}`).value.trim();
    if (raw === '') return null;
    const v = Number(raw);
    if (!Number.isFinite(v) || v < 0) throw new Error(`${what} must be a number ≥ 0 (or empty)`);
    return v;
  };
  const down = num('limit-down', 'Download limit');
  const up = num('limit-up', 'Upload limit');
  const ratio = num('seed-ratio', 'Ratio');
  const minutes = num('seed-minutes', 'Seeding time');
  return {
    limits: {
      download_bps: down === null ? null : Math.round(down * KIB),
      upload_bps: up === null ? null : Math.round(up * KIB),
    },
    seed_policy: {
      stop_at_ratio: ratio,
      stop_after_secs: minutes === null ? null : Math.round(minutes * 60),
    },
  };
}
