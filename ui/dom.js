// Small DOM helpers: no framework, no inline style, text only through textContent.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k === 'text') el.textContent = v;
    else if (k === 'class') el.className = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// Replaces the page's content and moves focus to its heading, so a screen change is announced.
export function mount(...nodes) {
  const main = document.getElementById('main');
  main.replaceChildren(...nodes.flat());
  const heading = main.querySelector('h1');
  if (heading) {
    heading.setAttribute('tabindex', '-1');
    heading.focus();
  }
}

let uid = 0;
export function nextId(prefix) {
  uid += 1;
  return `${prefix}-${uid}`;
}

// A labelled input; returns the wrapper and the input.
export function field(label, attrs = {}, hint) {
  const id = nextId('f');
  const hintId = hint ? `${id}-hint` : null;
  const input = h('input', { id, 'aria-describedby': hintId, ...attrs });
  const wrap = h('div', { class: 'field' },
    h('label', { for: id, text: label }),
    hint ? h('p', { id: hintId, class: 'hint', text: hint }) : null,
    input);
  return { wrap, input };
}

export function codeField(label = '6-digit code') {
  return field(label, {
    name: 'code', inputmode: 'numeric', autocomplete: 'one-time-code',
    pattern: '[0-9]{6}', maxlength: '6', required: true, class: 'code',
  });
}

export function checkbox(label, attrs = {}) {
  const id = nextId('c');
  const input = h('input', { type: 'checkbox', id, ...attrs });
  return { wrap: h('div', { class: 'check' }, input, h('label', { for: id, text: label })), input };
}

export function button(text, onclick, cls = 'secondary', attrs = {}) {
  return h('button', { type: 'button', class: cls, onclick, ...attrs }, text);
}

export function linkButton(text, onclick, attrs = {}) {
  return h('button', { type: 'button', class: 'link', onclick, ...attrs }, text);
}

// The place where a screen announces its errors and notices.
export function alertBox() {
  return h('div', { class: 'alert', role: 'alert', hidden: true });
}

export function notice(box, text, kind = 'error') {
  box.className = `alert ${kind}`;
  box.textContent = text;
  box.hidden = !text;
}

export function copyButton(label, textFn, status) {
  return button(label, async () => {
    try {
      await navigator.clipboard.writeText(textFn());
      notice(status, 'Copied.', 'ok');
    } catch {
      notice(status, 'Copying is blocked here: select the text and copy it yourself.', 'error');
    }
  });
}

export function formatDate(s) {
  if (!s) return '—';
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? s : d.toLocaleString();
}

export function card(...children) {
  return h('section', { class: 'card' }, ...children);
}
