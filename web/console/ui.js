// Building blocks the console's views share.

import { h } from '../dom.js';

// A table in a horizontally scrolling wrapper (narrow screens). columns: [{label,
// value(row) -> node|string, num?: true}]; `empty` is shown when there are no rows.
export function table(caption, columns, rows, empty = 'None yet.') {
  if (!rows.length) return h('p', { class: 'muted' }, empty);
  return h('div', { class: 'table-wrap' },
    h('table', {},
      h('caption', { class: 'visually-hidden' }, caption),
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', class: c.num ? 'num' : null }, c.label)))),
      h('tbody', {}, rows.map((row) => h('tr', { dataset: row.__data || {} },
        columns.map((c) => h('td', { class: c.num ? 'num' : null }, c.value(row))))))));
}

// Runs `action` with `button` disabled meanwhile (once at a time), its errors to `ctx`.
async function whileDisabled(button, ctx, action) {
  button.disabled = true;
  try {
    ctx.showError(null);
    await action();
  } catch (error) {
    ctx.showError(error);
  } finally {
    button.disabled = false;
  }
}

// A button that runs `action` once at a time and reports its errors to `ctx`.
export function actionButton(label, ctx, action, attributes = {}) {
  const button = h('button', { type: 'button', ...attributes }, label);
  button.addEventListener('click', () => whileDisabled(button, ctx, () => action(button)));
  return button;
}

// A form whose submit runs `action(form)` with the button disabled meanwhile.
export function form(ctx, label, children, action) {
  const submit = h('button', { type: 'submit', class: 'primary' }, label);
  const element = h('form', {}, children, submit);
  element.addEventListener('submit', (event) => {
    event.preventDefault();
    whileDisabled(submit, ctx, () => action(element));
  });
  return element;
}

// A two-step button for what cannot be undone: the first press asks, the second acts.
export function confirmButton(label, confirmLabel, ctx, action) {
  const button = h('button', { type: 'button', class: 'danger' }, label);
  let armed = false;
  button.addEventListener('click', async () => {
    if (!armed) {
      armed = true;
      button.textContent = confirmLabel;
      return;
    }
    button.disabled = true;
    try {
      await action();
    } catch (error) {
      ctx.showError(error);
      button.disabled = false;
    }
  });
  button.addEventListener('blur', () => {
    armed = false;
    button.textContent = label;
  });
  return button;
}

export function stat(label, value) {
  return h('div', { class: 'stat' }, h('div', { class: 'label' }, label), h('div', { class: 'value' }, value));
}

export function json(value) {
  return h('pre', {}, h('code', {}, JSON.stringify(value, null, 2)));
}
