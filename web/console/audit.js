// The audit log: every admin action, newest first, and a check of its hash chain.

import { field, formatTime, h, replace } from '../dom.js';
import { actionButton, form, json, table } from './ui.js';

export const title = 'Audit log';
const PAGE = 50;

export function change(row) {
  if (row.before === null && row.after === null) return '';
  return h('details', {}, h('summary', {}, 'before / after'),
    h('div', { class: 'row' }, h('div', {}, h('strong', {}, 'Before'), json(row.before)),
      h('div', {}, h('strong', {}, 'After'), json(row.after))));
}

export async function render(section, ctx) {
  const rows = h('div');
  const verdict = h('div', { role: 'status' });
  const actor = h('input', { autocomplete: 'off' });
  const action = h('input', { autocomplete: 'off' });
  const target = h('input', { autocomplete: 'off' });
  let beforeId = null;
  let shown = [];

  const load = async (more) => {
    const params = new URLSearchParams({ order: 'desc', limit: String(PAGE) });
    if (more && beforeId) params.set('before_id', String(beforeId));
    for (const [name, input] of [['actor', actor], ['action', action], ['target', target]]) {
      if (input.value.trim()) params.set(name, input.value.trim());
    }
    const page = (await ctx.api(`/admin/v1/audit?${params}`)).data;
    if (!ctx.alive()) return;
    shown = more ? shown.concat(page) : page;
    if (page.length) beforeId = page[page.length - 1].id;
    replace(rows,
      table('Audit rows', [
        { label: 'Id', num: true, value: (r) => String(r.id) },
        { label: 'Time', value: (r) => formatTime(r.time) },
        { label: 'Actor', value: (r) => r.actor },
        { label: 'Action', value: (r) => r.action },
        { label: 'Target', value: (r) => r.target },
        { label: 'Change', value: change },
      ], shown, 'No audit row matches.'),
      page.length === PAGE ? actionButton('Older rows', ctx, () => load(true)) : null);
  };

  const filters = form(ctx, 'Filter', [
    h('div', { class: 'row' }, field('Actor (key id)', actor), field('Action', action, 'e.g. key.create'), field('Target', target)),
  ], () => load(false));
  const verify = actionButton('Verify the chain', ctx, async () => {
    const result = await ctx.api('/admin/v1/audit/verify');
    replace(verdict, result.ok
      ? h('p', { class: 'ok' }, `Verified: ${result.rows_checked} rows, every hash matches its row and the one before.`)
      : h('p', { class: 'bad' }, `The chain is broken at row ${result.first_bad_id}: ${result.problem}. ` +
        'A row was changed or removed outside Triplane: restore the store from a backup.'));
  });
  section.append(h('h2', {}, 'Audit log'), h('section', { class: 'card' }, verify, verdict),
    h('section', { class: 'card' }, filters), rows);
  await load(false);
}
