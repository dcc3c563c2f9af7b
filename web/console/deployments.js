// Deployments: desired state and what runs (GET /admin/v1/deployments with instances,
// each instance's latest monitor point), create, scale, change version, delete.
// Refreshed every two seconds while shown.

import { seg } from '../api.js';
import { field, formatBytes, formatNumber, h, replace } from '../dom.js';
import { actionButton, confirmButton, form, table } from './ui.js';

export const title = 'Deployments';

export async function render(section, ctx) {
  const list = h('div');
  let models = [];
  // Inputs keep what people typed across refreshes (a refresh must not eat an edit).
  const inputs = new Map();
  const input = (key, make) => {
    if (!inputs.has(key)) inputs.set(key, make());
    return inputs.get(key);
  };

  // The latest monitor point of each running instance (null when it has none yet, or the
  // server runs no monitor).
  const latestPoints = async (deployments) => {
    const ids = deployments.flatMap((d) => (d.instances || []).filter((i) => i.state === 'ready' || i.state === 'draining').map((i) => i.id));
    const points = await Promise.all(ids.map((id) => ctx.api(`/admin/v1/metrics/instances/${seg(id)}?window=60`)
      .then((series) => series.points[series.points.length - 1] || null).catch(() => null)));
    return new Map(ids.map((id, index) => [id, points[index]]));
  };

  const draw = async () => {
    const [deployments, repo] = await Promise.all([ctx.api('/admin/v1/deployments'), ctx.api('/admin/v1/models')]);
    const latest = await latestPoints(deployments.data);
    if (!ctx.alive()) return;
    const now = (i, field, format) => {
      const value = latest.get(i.id)?.[field];
      return value === null || value === undefined ? '' : format(value);
    };
    models = repo.data;
    const versionsOf = (name) => (models.find((m) => m.name === name)?.versions || []).map((v) => v.version);
    replace(list, deployments.data.length ? deployments.data.map((d) => {
      const replicas = input(`${d.name}/replicas`, () => h('input', { type: 'number', min: 0, max: 1000, value: d.replicas }));
      const version = input(`${d.name}/version`, () => h('select', {}));
      const chosen = version.value || d.version;
      replace(version, versionsOf(d.model).map((v) => h('option', { value: v, selected: v === chosen }, v)));
      const s = d.status || {};
      return h('section', { class: 'card', 'aria-label': `Deployment ${d.name}`, dataset: { deployment: d.name } },
        h('h3', {}, `${d.name} `, h('span', { class: s.phase === 'running' ? 'ok' : s.phase === 'failed' || s.phase === 'degraded' ? 'bad' : 'muted' }, s.phase || '')),
        h('p', {}, `${d.model} version ${d.version}: ${s.ready_replicas ?? 0} of ${d.replicas} replicas ready`,
          s.reason ? ` (${s.reason})` : '', `, generation ${d.generation}`),
        h('div', { class: 'row' },
          field('Replicas', replicas),
          actionButton('Scale', ctx, async () => {
            await ctx.api(`/admin/v1/deployments/${seg(d.name)}`, { method: 'PATCH', body: { replicas: Number(replicas.value) } });
            await draw();
          }),
          field('Version', version),
          actionButton('Change version', ctx, async () => {
            await ctx.api(`/admin/v1/deployments/${seg(d.name)}`, { method: 'PATCH', body: { version: version.value } });
            await draw();
          }),
          confirmButton('Delete', 'Confirm delete', ctx, async () => {
            await ctx.api(`/admin/v1/deployments/${seg(d.name)}`, { method: 'DELETE' });
            await draw();
          })),
        table(`Instances of ${d.name}`, [
          { label: 'Instance', value: (i) => i.id },
          { label: 'Version', value: (i) => i.version },
          { label: 'State', value: (i) => h('span', { class: i.state === 'ready' ? 'ok' : i.state === 'failed' ? 'bad' : '' }, i.state) },
          { label: 'Address', value: (i) => i.url || '' },
          { label: 'PID', num: true, value: (i) => String(i.pid ?? '') },
          { label: 'Restarts', num: true, value: (i) => String(i.restarts) },
          { label: 'Running', num: true, value: (i) => now(i, 'running', (v) => formatNumber(v, 0)) },
          { label: 'KV cache', num: true, value: (i) => now(i, 'kv_cache_usage', (v) => `${(v * 100).toFixed(0)}%`) },
          { label: 'CPU', num: true, value: (i) => now(i, 'cpu_percent', (v) => `${v.toFixed(0)}%`) },
          { label: 'Memory', num: true, value: (i) => now(i, 'rss_bytes', formatBytes) },
          { label: 'Last error', value: (i) => i.last_error || '' },
        ], (d.instances || []).map((i) => ({ ...i, __data: { instance: i.id, state: i.state } })), 'No instance.'));
    }) : h('p', { class: 'muted' }, 'No deployment yet: create one below.'));
    const modelSelect = createModel;
    const current = modelSelect.value;
    replace(modelSelect, models.map((m) => h('option', { value: m.name, selected: m.name === current }, m.name)));
  };

  const name = h('input', { required: true, autocomplete: 'off' });
  const createModel = h('select', { required: true });
  const createVersion = h('input', { autocomplete: 'off' });
  const createReplicas = h('input', { type: 'number', min: 0, value: 1 });
  const threads = h('input', { type: 'number', min: 0, value: 0 });
  const create = form(ctx, 'Create', [
    h('div', { class: 'row' },
      field('Name', name), field('Model', createModel),
      field('Version', createVersion, 'Optional: the newest by default'),
      field('Replicas', createReplicas), field('Engine threads', threads, '0: the default')),
  ], async () => {
    const body = { name: name.value.trim(), model: createModel.value, replicas: Number(createReplicas.value) };
    if (createVersion.value.trim()) body.version = createVersion.value.trim();
    if (Number(threads.value) > 0) body.engine = { threads: Number(threads.value) };
    await ctx.api('/admin/v1/deployments', { method: 'POST', body });
    name.value = '';
    await draw();
  });

  section.append(h('h2', {}, 'Deployments'), list,
    h('section', { class: 'card', 'aria-labelledby': 'create-title' }, h('h3', { id: 'create-title' }, 'Create a deployment'), create),
    h('p', { class: 'muted' }, 'Change version rolls the instances: new ones start before old ones drain. Canaries and one-call rollback come with the rollout API.'));
  await draw();
  ctx.every(2, () => draw().catch(ctx.showError));
}
