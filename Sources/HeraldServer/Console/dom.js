// DOM helpers. Every string from the server reaches the page as a text node or an attribute set
// with setAttribute, never through the HTML parser: data cannot become markup.

/** An element: `h('td', {class: 'n'}, 'text', child)`. Strings become text nodes. */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      element.addEventListener(name.slice(2), value);
    } else if (value === true) {
      element.setAttribute(name, '');
    } else {
      element.setAttribute(name, String(value));
    }
  }
  append(element, children);
  return element;
}

/** Appends children (elements, strings, arrays of them; null and undefined are skipped). */
export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

/** Replaces the children of `parent`. */
export function replace(parent, ...children) {
  parent.replaceChildren();
  return append(parent, children);
}

/** A count with a text label, so that nothing relies on colour alone. */
export function badge(text, kind) {
  return h('span', { class: `badge ${kind ?? ''}` }, text);
}

/** A duration in milliseconds for people: 850 ms, 12 s, 3 min 5 s, 2 h 4 min, 3 d 2 h. */
export function duration(milliseconds) {
  if (milliseconds === null || milliseconds === undefined) return '—';
  const ms = Math.max(0, Math.round(milliseconds));
  if (ms < 1000) return `${ms} ms`;
  const seconds = Math.floor(ms / 1000);
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${seconds % 60} s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

/** A time (milliseconds since 1970) in ISO form, UTC, to the second. */
export function time(milliseconds) {
  if (milliseconds === null || milliseconds === undefined) return '—';
  return new Date(milliseconds).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

/** A rate per second with one decimal. */
export function rate(value) {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—';
  return `${value.toFixed(1)}/s`;
}

/** A whole number with thousands separators. */
export function number(value) {
  if (value === null || value === undefined) return '—';
  return Number(value).toLocaleString('en-US');
}

/** The bytes of a base64 string. */
export function base64Bytes(text) {
  const binary = atob(text ?? '');
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/**
 * A message body for people: `{kind: 'json', text}` pretty-printed when it parses as JSON,
 * `{kind: 'text', text}` when it is UTF-8, `{kind: 'binary', text}` (hexadecimal) otherwise.
 */
export function bodyText(base64) {
  const bytes = base64Bytes(base64);
  let text;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const hex = Array.from(bytes.slice(0, 4096), (b) => b.toString(16).padStart(2, '0')).join(' ');
    return { kind: 'binary', text: hex + (bytes.length > 4096 ? ' …' : '') };
  }
  const trimmed = text.trim();
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    try {
      return { kind: 'json', text: JSON.stringify(JSON.parse(trimmed), null, 2) };
    } catch {
      // Not JSON after all: shown as text.
    }
  }
  return { kind: 'text', text };
}

/** A property value of the wire form (`{string}`, `{int}`, `{double}` or `{bool}`) as text. */
export function propertyText(property) {
  if (property === null || property === undefined) return '';
  for (const key of ['string', 'int', 'double', 'bool']) {
    if (key in property) return `${property[key]} (${key})`;
  }
  return JSON.stringify(property);
}

/** A labelled definition list from [label, value] pairs. */
export function facts(pairs) {
  return h('dl', { class: 'facts' }, pairs.map(([label, value]) => [h('dt', {}, label), h('dd', {}, value ?? '—')]));
}

/** Shows `text` in the status line for a few seconds (errors stay until the next message). */
export function announce(text, isError = false) {
  const status = document.getElementById('status');
  status.textContent = text;
  status.className = isError ? 'status error' : 'status';
  clearTimeout(announce.timer);
  if (!isError) announce.timer = setTimeout(() => { status.textContent = ''; }, 5000);
}

/**
 * Asks for confirmation in the page's dialog; resolves to true when confirmed.
 * `details` are lines of text shown under the question.
 */
export function confirmAction(question, details = [], confirmLabel = 'Confirm') {
  const dialog = document.getElementById('confirm');
  replace(dialog.querySelector('.question'), question);
  replace(dialog.querySelector('.details'), details.map((line) => h('p', {}, line)));
  dialog.querySelector('button[value=yes]').textContent = confirmLabel;
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'yes'), { once: true });
    dialog.returnValue = '';
    dialog.showModal();
  });
}
