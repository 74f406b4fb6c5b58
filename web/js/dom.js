// Building DOM trees from plain functions, and patching the live page to match a new tree
// (so focus, scroll position and open <details> survive the once-a-second live updates).

const SVG_NS = 'http://www.w3.org/2000/svg';

function build(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k === 'text') el.textContent = String(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** An HTML element: h('a', {href: '#/'}, 'text', child, [more]). */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** An SVG element. */
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

function sameKind(a, b) {
  if (a.nodeType !== b.nodeType || a.nodeName !== b.nodeName) return false;
  if (a.nodeType !== Node.ELEMENT_NODE) return true;
  return a.getAttribute('data-key') === b.getAttribute('data-key');
}

function patchAttributes(from, to) {
  for (const { name } of [...from.attributes]) {
    if (!to.hasAttribute(name)) from.removeAttribute(name);
  }
  for (const { name, value } of [...to.attributes]) {
    if (from.getAttribute(name) !== value) from.setAttribute(name, value);
  }
}

/** Makes `target`'s children look like `source`'s, reusing nodes where tag and key match. */
export function morphChildren(target, source) {
  const keyed = new Map();
  for (const c of target.childNodes) {
    const k = c.nodeType === Node.ELEMENT_NODE && c.getAttribute('data-key');
    if (k) keyed.set(`${c.nodeName}|${k}`, c);
  }
  const wanted = [...source.childNodes];
  let cursor = target.firstChild;
  for (const next of wanted) {
    const k = next.nodeType === Node.ELEMENT_NODE && next.getAttribute('data-key');
    let match = null;
    if (k) match = keyed.get(`${next.nodeName}|${k}`) || null;
    else if (cursor && sameKind(cursor, next)) match = cursor;
    if (!match) {
      target.insertBefore(next, cursor);
      continue;
    }
    if (match !== cursor) target.insertBefore(match, cursor);
    else cursor = cursor.nextSibling;
    morphNode(match, next);
  }
  while (cursor) {
    const after = cursor.nextSibling;
    cursor.remove();
    cursor = after;
  }
}

function morphNode(from, to) {
  if (from.nodeType !== Node.ELEMENT_NODE) {
    if (from.nodeValue !== to.nodeValue) from.nodeValue = to.nodeValue;
    return;
  }
  // <details> open state and form fields belong to the person, not to the data.
  const open = from.nodeName === 'DETAILS' ? from.open : null;
  patchAttributes(from, to);
  if (open !== null) from.open = open;
  if (from.hasAttribute('data-static')) return;
  morphChildren(from, to);
}
