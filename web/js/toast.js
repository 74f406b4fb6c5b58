// Messages for the person: errors stay until dismissed, confirmations fade after a few seconds.

import { h } from './dom.js';

const region = () => document.getElementById('toasts');

export function showError(err, context) {
  const message = err && err.message ? err.message : String(err);
  show('error', context ? `${context}: ${message}` : message, 0);
}

export function showInfo(message) {
  show('info', message, 4000);
}

function show(kind, message, timeoutMs) {
  const close = h('button', { type: 'button', class: 'toast-close', 'aria-label': 'Dismiss' }, '×');
  const toast = h(
    'div',
    { class: `toast ${kind}`, role: kind === 'error' ? 'alert' : 'status' },
    h('span', { class: 'toast-text' }, message),
    close,
  );
  close.addEventListener('click', () => toast.remove());
  region().append(toast);
  // Keep the region short: the oldest messages go first.
  while (region().children.length > 4) region().firstElementChild.remove();
  if (timeoutMs) setTimeout(() => toast.remove(), timeoutMs);
}
