// Deployments: desired state and what runs (GET /admin/v1/deployments with instances,
// each instance's latest monitor point), create, scale, roll out a version (rolling or
// canary), promote, abort, roll back, each version's error rate and latency side by side,
// recent events, delete. Refreshed every two seconds while shown.

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
    // Each deployment's rollout (versions side by side) and its newest events.
    const rollouts = new Map(await Promise.all(deployments.data.map(async (d) => [d.name, await Promise.all([
      ctx.api(`/admin/v1/deployments/${seg(d.name)}/rollout`).catch(() => null),
      ctx.api(`/admin/v1/deployments/${seg(d.name)}/events?limit=1000`).then((e) => e.data.slice(-8).reverse()).catch(() => []),
    ])])));
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
      const percent = input(`${d.name}/percent`, () => h('input', { type: 'number', min: 1, max: 99, value: 10 }));
      const [rollout, events] = rollouts.get(d.name) || [null, []];
      const post = (path, body) => async () => {
        await ctx.api(`/admin/v1/deployments/${seg(d.name)}/${path}`, { method: 'POST', body: body ? body() : {} });
        await draw();
      };
      const versions = Object.entries(rollout?.versions || {}).map(([v, stats]) => ({ version: v, ...stats }));
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
          actionButton('Roll out', ctx, post('rollout', () => ({ version: version.value, strategy: 'rolling' }))),
          field('Canary %', percent),
          d.canary
            ? [actionButton('Promote canary', ctx, post('rollout/promote')), actionButton('Abort canary', ctx, post('rollout/abort'))]
            : actionButton('Start canary', ctx, post('rollout', () => ({ version: version.value, strategy: 'canary', canary_percent: Number(percent.value) }))),
          d.canary || d.previous_version
            ? actionButton(d.canary ? 'Roll back (abort the canary)' : `Roll back to ${d.previous_version}`, ctx, post('rollback'))
            : null,
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
        ], (d.instances || []).map((i) => ({ ...i, __data: { instance: i.id, state: i.state } })), 'No instance.'),
        d.canary ? h('p', {}, `Canary: version ${d.canary.version} takes ${d.canary.percent}% of the traffic.`) : null,
        versions.length ? table(`Versions of ${d.name} side by side, last ${rollout.window_seconds} s`, [
          { label: 'Version', value: (v) => v.version },
          { label: 'Requests', num: true, value: (v) => String(v.requests) },
          { label: 'Errors', num: true, value: (v) => String(v.errors) },
          { label: 'Error rate', num: true, value: (v) => h('span', { class: v.error_rate > rollout.max_error_rate ? 'bad' : '' }, `${(v.error_rate * 100).toFixed(1)}%`) },
          { label: 'p50', num: true, value: (v) => `${(v.p50_latency_seconds * 1000).toFixed(0)} ms` },
          { label: 'p99', num: true, value: (v) => `${(v.p99_latency_seconds * 1000).toFixed(0)} ms` },
        ], versions.map((v) => ({ ...v, __data: { version: v.version } }))) : null,
        h('h4', {}, 'Recent events'),
        events.length
          ? h('ul', { class: 'events', 'aria-label': `Events of ${d.name}` },
            events.map((e) => h('li', {}, h('time', { datetime: e.time }, e.time.replace('T', ' ').slice(0, 19)), ` ${e.kind} (${e.actor}): ${e.message}`)))
          : h('p', { class: 'muted' }, 'No event yet.'));
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
    h('p', { class: 'muted' }, 'Roll out moves every replica to the chosen version: new instances start, old ones leave the routes and drain once enough new ones are ready. A canary runs the chosen version next to the replicas with a share of the traffic; a failing canary is rolled back on its own.'));
  await draw();
  ctx.every(2, () => draw().catch(ctx.showError));
}
