// Overview: the fleet at a glance (GET /admin/v1/overview) and live charts per deployment
// from the monitoring center (GET /admin/v1/metrics/deployments[/{name}]).

import { seg } from '../api.js';
import { formatBytes, formatNumber, h, replace } from '../dom.js';
import { deploymentCharts, formatPercent, formatSeconds } from './charts.js';
import { stat, table } from './ui.js';

export const title = 'Overview';
const WINDOW_SECONDS = 900;

export async function render(section, ctx) {
  const summary = h('div');
  const live = h('div');
  section.append(h('h2', {}, 'Overview'), summary, h('h3', {}, 'Live metrics'), live);

  const drawSummary = async () => {
    const o = await ctx.api('/admin/v1/overview');
    if (!ctx.alive()) return;
    const i = o.instances;
    const d = o.deployments;
    const cap = o.capacity;
    replace(summary, h('div', { class: 'stats-grid' },
      stat('Models', `${o.models} (${o.versions} versions)`),
      stat('Deployments', `${d.running} running of ${d.total}`),
      stat('Instances', `${i.ready} ready of ${i.total}`),
      stat('Starting / draining', `${i.starting} / ${i.draining}`),
      stat('Failed', `${d.failed + d.degraded} deployments, ${i.failed} instances`),
      cap ? stat('CPU cores used', `${cap.used_cores} of ${cap.cores}`) : null,
      cap ? stat('Memory used', `${formatBytes(cap.used_memory_bytes)} of ${formatBytes(cap.memory_bytes)}`) : null,
      stat('Config revision', String(o.config_revision)),
      stat('Audit rows', String(o.audit_rows))),
    h('p', { class: 'muted' }, `Triplane ${o.version}, store: ${o.store.kind} (${o.store.description})`));
  };

  let interval = 5;
  const drawLive = async () => {
    let metrics;
    try {
      metrics = await ctx.api('/admin/v1/metrics/deployments');
    } catch (error) {
      if (error.status === 404) {
        replace(live, h('p', { class: 'notice' },
          'Live metrics come from the monitoring center, which this server does not run.'));
        return;
      }
      throw error;
    }
    interval = metrics.interval_seconds || interval;
    const rows = metrics.data;
    const histories = await Promise.all(rows.map((row) =>
      ctx.api(`/admin/v1/metrics/deployments/${seg(row.deployment)}?window=${WINDOW_SECONDS}`)
        .catch(() => ({ points: [] }))));
    if (!ctx.alive()) return;
    const latest = (row, field) => (row.latest ? row.latest[field] : null);
    replace(live,
      table('Deployments now', [
        { label: 'Deployment', value: (r) => r.deployment },
        { label: 'Model', value: (r) => `${r.model} ${r.version}` },
        { label: 'Instances', num: true, value: (r) => String(r.instances) },
        { label: 'Requests/s', num: true, value: (r) => formatNumber(latest(r, 'requests_per_second')) },
        { label: 'Latency p50 / p99', num: true, value: (r) => `${formatSeconds(latest(r, 'latency_p50_seconds'))} / ${formatSeconds(latest(r, 'latency_p99_seconds'))}` },
        { label: 'Tokens/s', num: true, value: (r) => formatNumber(latest(r, 'tokens_per_second'), 1) },
        { label: 'KV cache', num: true, value: (r) => formatPercent(latest(r, 'kv_cache_usage')) },
      ], rows, 'No deployment is reporting metrics yet.'),
      rows.map((row, index) => h('section', { class: 'card', 'aria-label': `Charts of ${row.deployment}`, dataset: { deployment: row.deployment } },
        h('h4', {}, `${row.deployment}: ${row.model} version ${row.version}, up to the last ${WINDOW_SECONDS / 60} minutes`),
        deploymentCharts(histories[index].points || [], WINDOW_SECONDS))));
  };

  await Promise.all([drawSummary(), drawLive().catch(ctx.showError)]);
  ctx.every(interval, () => {
    drawSummary().catch(ctx.showError);
    drawLive().catch(ctx.showError);
  });
}
