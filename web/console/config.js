// The config center: entries (GET /admin/v1/config), an editor for one entry's JSON
// value, and its revision history from the audit log (target "config/KEY").

import { field, formatTime, h, replace } from '../dom.js';
import { actionButton, confirmButton, form, table } from './ui.js';

export const title = 'Config';

// Config keys are the rest of the path: percent-encode each segment, keep the slashes.
const keyPath = (key) => key.split('/').map(encodeURIComponent).join('/');

export async function render(section, ctx) {
  const list = h('div');
  const history = h('div');
  const key = h('input', { required: true, autocomplete: 'off', spellcheck: 'false' });
  const value = h('textarea', { rows: 8, spellcheck: 'false', required: true });
  let revision = 0;

  const draw = async () => {
    const config = await ctx.api('/admin/v1/config');
    if (!ctx.alive()) return;
    revision = config.revision;
    replace(list, h('p', { class: 'muted' }, `Revision ${revision}`), table('Config entries', [
      { label: 'Key', value: (e) => h('button', { type: 'button', class: 'link', onclick: () => edit(e.key, e.value) }, e.key) },
      { label: 'Value', value: (e) => h('code', {}, JSON.stringify(e.value)) },
      { label: 'Revision', num: true, value: (e) => String(e.revision) },
      { label: 'Updated', value: (e) => `${formatTime(e.updated_at)} by ${e.updated_by}` },
    ], config.data, 'No config entry yet.'));
  };

  const drawHistory = async (name) => {
    const rows = (await ctx.api(`/admin/v1/audit?order=desc&limit=50&target=${encodeURIComponent(`config/${name}`)}`)).data;
    if (!ctx.alive()) return;
    replace(history, h('h3', {}, `History of ${name}`), table(`History of ${name}`, [
      { label: 'Time', value: (r) => formatTime(r.time) },
      { label: 'Actor', value: (r) => r.actor },
      { label: 'Action', value: (r) => r.action },
      // The audit row's "after" is the value set (null for a delete).
      { label: 'Value', value: (r) => h('code', {}, r.action === 'config.delete' ? '(deleted)' : JSON.stringify(r.after)) },
      {
        label: '',
        value: (r) => (r.action === 'config.set' ? h('button', { type: 'button', onclick: () => edit(name, r.after) }, 'Load into the editor') : ''),
      },
    ], rows, 'No change recorded.'));
  };

  function edit(name, current) {
    key.value = name;
    value.value = JSON.stringify(current, null, 2);
    value.focus();
    drawHistory(name).catch(ctx.showError);
  }

  const editor = form(ctx, 'Save', [
    field('Key', key, 'e.g. limits.default, routing.MODEL, prices.MODEL'),
    field('Value (JSON)', value),
  ], async () => {
    let parsed;
    try {
      parsed = JSON.parse(value.value);
    } catch (error) {
      throw new Error(`The value is not valid JSON (${error.message}): correct it and save again.`);
    }
    await ctx.api(`/admin/v1/config/${keyPath(key.value.trim())}`, { method: 'PUT', body: { value: parsed } });
    await draw();
    await drawHistory(key.value.trim());
  });
  editor.append(' ', confirmButton('Delete this key', 'Confirm delete', ctx, async () => {
    await ctx.api(`/admin/v1/config/${keyPath(key.value.trim())}`, { method: 'DELETE' });
    await draw();
    await drawHistory(key.value.trim());
  }));
  editor.append(' ', actionButton('Show history', ctx, () => drawHistory(key.value.trim())));

  section.append(h('h2', {}, 'Config'), list,
    h('section', { class: 'card', 'aria-labelledby': 'editor-title' }, h('h3', { id: 'editor-title' }, 'Edit an entry'), editor),
    history);
  await draw();
}
