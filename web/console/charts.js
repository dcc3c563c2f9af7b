// Line charts drawn as SVG from the monitoring center's time series, no library.

import { formatNumber, h } from '../dom.js';

const WIDTH = 300;
const HEIGHT = 120;
const LEFT = 40;
const BOTTOM = 16;
const TOP = 6;

function svg(tag, attributes = {}, ...children) {
  return h(`svg:${tag}`, attributes, ...children);
}

// A chart of one or two series over time. series: [{label, points: [[t, value|null]]}];
// `format` writes a value for people; `max` fixes the top of the scale (e.g. 1 for a
// ratio), else it follows the data. Gaps (null) break the line.
export function lineChart({ title, series, format = (v) => formatNumber(v), max = null, window = null }) {
  const all = series.flatMap((s) => s.points);
  const times = all.map((p) => p[0]);
  const values = all.map((p) => p[1]).filter((v) => v !== null && v !== undefined && Number.isFinite(v));
  const tMax = times.length ? Math.max(...times) : Date.now() / 1000;
  // The window, or less while the series is younger (a minute at least), so that a new
  // deployment's first points are not squeezed against the right edge.
  const oldest = times.length ? Math.min(...times) : tMax;
  const tMin = Math.max(window ? tMax - window : oldest, Math.min(oldest, tMax - 60));
  const yMax = max ?? (values.length ? Math.max(...values) * 1.1 || 1 : 1);
  const x = (t) => LEFT + ((t - tMin) / Math.max(1, tMax - tMin)) * (WIDTH - LEFT - 4);
  const y = (v) => TOP + (1 - Math.min(v, yMax) / yMax) * (HEIGHT - TOP - BOTTOM);

  const paths = series.map((s, index) => {
    let d = '';
    let run = 0; // points in the current stretch without a gap
    for (const [t, v] of s.points) {
      if (v === null || v === undefined || !Number.isFinite(v) || t < tMin) {
        if (run === 1) d += 'h0.01'; // a lone point: a dot (round caps)
        run = 0;
        continue;
      }
      d += `${run ? 'L' : 'M'}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
      run += 1;
    }
    if (run === 1) d += 'h0.01';
    return svg('path', { class: `series-${index}`, d: d || 'M0,0', dataset: { points: String(s.points.length) } });
  });
  const latest = series.map((s) => {
    const last = [...s.points].reverse().find((p) => p[1] !== null && p[1] !== undefined);
    return `${s.label} ${last ? format(last[1]) : 'unknown'}`;
  }).join(', ');
  const span = tMax - tMin;
  const since = span >= 120 ? `−${Math.round(span / 60)} min` : `−${Math.round(span)} s`;
  const chart = svg('svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: 'img', 'aria-label': `${title}: ${latest}`, preserveAspectRatio: 'none' },
    svg('title', {}, `${title}: ${latest}`),
    svg('line', { class: 'axis', x1: LEFT, y1: HEIGHT - BOTTOM, x2: WIDTH, y2: HEIGHT - BOTTOM }),
    svg('line', { class: 'axis', x1: LEFT, y1: TOP, x2: LEFT, y2: HEIGHT - BOTTOM }),
    svg('text', { x: LEFT - 3, y: TOP + 8, 'text-anchor': 'end' }, format(yMax)),
    svg('text', { x: LEFT - 3, y: HEIGHT - BOTTOM, 'text-anchor': 'end' }, format(0)),
    svg('text', { x: LEFT, y: HEIGHT - 3 }, since),
    svg('text', { x: WIDTH - 2, y: HEIGHT - 3, 'text-anchor': 'end' }, 'now'),
    paths);
  return h('figure', { class: 'chart' },
    h('h4', {}, title),
    chart,
    h('figcaption', { class: 'legend' }, series.map((s, index) => h('span', { class: `key-${index}` }, s.label))));
}

const seconds = (v) => (v === null || v === undefined ? '–' : v < 1 ? `${(v * 1000).toFixed(0)} ms` : `${v.toFixed(2)} s`);
const percent = (v) => (v === null || v === undefined ? '–' : `${(v * 100).toFixed(0)}%`);

// The five charts of one deployment from its POINTs (GET /admin/v1/metrics/deployments/{name}).
export function deploymentCharts(points, window) {
  const pick = (field) => points.map((p) => [p.t, p[field] ?? null]);
  return h('div', { class: 'charts' },
    lineChart({ title: 'Requests per second', series: [{ label: 'requests/s', points: pick('requests_per_second') }], window }),
    lineChart({
      title: 'Latency', format: seconds, window,
      series: [{ label: 'p50', points: pick('latency_p50_seconds') }, { label: 'p99', points: pick('latency_p99_seconds') }],
    }),
    lineChart({
      title: 'Time to first token', format: seconds, window,
      series: [{ label: 'p50', points: pick('ttft_p50_seconds') }, { label: 'p99', points: pick('ttft_p99_seconds') }],
    }),
    lineChart({ title: 'Tokens per second', series: [{ label: 'tokens/s', points: pick('tokens_per_second') }], window }),
    lineChart({ title: 'KV cache usage', format: percent, max: 1, series: [{ label: 'used', points: pick('kv_cache_usage') }], window }));
}

export const formatSeconds = seconds;
export const formatPercent = percent;
