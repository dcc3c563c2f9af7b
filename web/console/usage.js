// Usage and cost from the ledger (GET /admin/v1/usage), grouped by key, team, model or
// day over a period, with the same table as CSV.

import { call } from '../api.js';
import { field, formatNumber, h, replace } from '../dom.js';
import { form, table } from './ui.js';

export const title = 'Usage and cost';

// "2026-12-05" (a date input, local day) -> RFC 3339 UTC of that day's local midnight.
function dayStart(value) {
  if (!value) return null;
  const [y, m, d] = value.split('-').map(Number);
  return new Date(y, m - 1, d).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export async function render(section, ctx) {
  const results = h('div', { 'aria-live': 'polite' });
  const groupBy = h('select', {}, ['key', 'team', 'model', 'day', 'all'].map((g) => h('option', { value: g }, g)));
  const from = h('input', { type: 'date' });
  const to = h('input', { type: 'date' });
  const model = h('input', { autocomplete: 'off' });

  const query = (format) => {
    const params = new URLSearchParams({ group_by: groupBy.value });
    const f = dayStart(from.value);
    // `to` is inclusive for people: the end is the next day's start.
    let t = null;
    if (to.value) {
      const [y, m, d] = to.value.split('-').map(Number);
      t = new Date(y, m - 1, d + 1).toISOString().replace(/\.\d{3}Z$/, 'Z');
    }
    if (f) params.set('from', f);
    if (t) params.set('to', t);
    if (model.value.trim()) params.set('model', model.value.trim());
    if (format) params.set('format', format);
    return `/admin/v1/usage?${params}`;
  };

  const draw = async () => {
    const [usage, keys] = await Promise.all([ctx.api(query()), ctx.api('/admin/v1/keys')]);
    if (!ctx.alive()) return;
    const keyName = new Map(keys.data.map((k) => [k.id, k.name]));
    const label = (group) => {
      if (usage.group_by === 'key') return group ? `${keyName.get(group) || '?'} (${group})` : '(no key)';
      if (usage.group_by === 'team') return group || '(no team)';
      return group || 'all';
    };
    replace(results, table('Usage', [
      { label: usage.group_by === 'all' ? 'Total' : usage.group_by[0].toUpperCase() + usage.group_by.slice(1), value: (r) => label(r.group) },
      { label: 'Requests', num: true, value: (r) => formatNumber(r.requests, 0) },
      { label: 'Errors', num: true, value: (r) => formatNumber(r.errors, 0) },
      { label: 'Prompt tokens', num: true, value: (r) => formatNumber(r.prompt_tokens, 0) },
      { label: 'Completion tokens', num: true, value: (r) => formatNumber(r.completion_tokens, 0) },
      { label: 'Cached tokens', num: true, value: (r) => formatNumber(r.cached_tokens, 0) },
      { label: 'Cost', num: true, value: (r) => (r.cost_micros / 1e6).toFixed(6) },
    ], usage.data.map((r) => ({ ...r, __data: { group: r.group } })), 'No usage in this period.'));
  };

  const download = h('button', { type: 'button' }, 'Download CSV');
  download.addEventListener('click', async () => {
    try {
      // The key goes in a header, so a plain link cannot fetch it: fetch, then save.
      const response = await call(query('csv'), { key: ctx.key() });
      const url = URL.createObjectURL(await response.blob());
      const link = h('a', { href: url, download: `triplane-usage-${groupBy.value}.csv` });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (error) {
      ctx.showError(error);
    }
  });

  const filters = form(ctx, 'Show', [
    h('div', { class: 'row' },
      field('Group by', groupBy), field('From', from, 'First day (local time)'),
      field('To', to, 'Last day, included'), field('Model', model, 'Optional filter')),
  ], draw);
  filters.append(' ', download);
  section.append(h('h2', {}, 'Usage and cost'), h('section', { class: 'card' }, filters), results);
  await draw();
}
