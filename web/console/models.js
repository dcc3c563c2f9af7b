// Models and versions: the repository (GET /admin/v1/models), adding a version from a
// file on the server or pulling one from a URL with progress (/admin/v1/pulls), and each
// version's GGUF metadata.

import { seg } from '../api.js';
import { field, formatBytes, formatNumber, formatTime, h, replace } from '../dom.js';
import { confirmButton, form, json, table } from './ui.js';

export const title = 'Models';

function metadata(version) {
  const g = version.gguf || {};
  return h('div', {}, h('dl', {}, [
    ['Architecture', g.architecture], ['Parameters', formatNumber(g.parameter_count, 0)],
    ['File type', g.file_type], ['Context length', formatNumber(g.context_length, 0)],
    ['Chat template', g.has_chat_template ? 'yes' : 'no'], ['Size', formatBytes(version.size_bytes)],
    ['SHA-256', version.sha256], ['Source', version.source], ['File', version.file_path],
    ['Added', formatTime(version.created_at)],
  ].flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v === undefined || v === null ? '–' : String(v))])),
  h('details', {}, h('summary', {}, 'Tensor types and other metadata'), json({ tensor_types: g.tensor_types, extra: g.extra })));
}

export async function render(section, ctx) {
  const list = h('div');
  const inspector = h('div', { 'aria-live': 'polite' });
  const pulls = h('div');

  const drawModels = async () => {
    const models = (await ctx.api('/admin/v1/models')).data;
    if (!ctx.alive()) return;
    const rows = models.flatMap((m) => (m.versions.length ? m.versions : [{ model: m.name, version: null }])
      .map((v) => ({ ...v, model: m.name, description: m.description })));
    replace(list, table('Model versions', [
      { label: 'Model', value: (r) => r.model },
      { label: 'Version', value: (r) => r.version ?? '(no version yet)' },
      { label: 'Architecture', value: (r) => r.gguf?.architecture ?? '' },
      { label: 'Quantization', value: (r) => r.gguf?.file_type ?? '' },
      { label: 'Size', num: true, value: (r) => (r.version ? formatBytes(r.size_bytes) : '') },
      {
        label: 'Actions',
        value: (r) => (r.version ? h('div', { class: 'row' },
          h('button', { type: 'button', onclick: () => {
            replace(inspector, h('section', { class: 'card', 'aria-label': `Metadata of ${r.model} ${r.version}` },
              h('h3', {}, `${r.model} version ${r.version}`), metadata(r)));
            inspector.querySelector('section').focus?.();
          } }, 'Inspect'),
          confirmButton('Delete', 'Confirm delete', ctx, async () => {
            await ctx.api(`/admin/v1/models/${seg(r.model)}/versions/${seg(r.version)}`, { method: 'DELETE' });
            await drawModels();
          })) : ''),
      },
    ], rows, 'No model yet: add one below.'));
  };

  const drawPulls = async () => {
    const data = (await ctx.api('/admin/v1/pulls')).data;
    if (!ctx.alive()) return;
    replace(pulls, table('Pulls', [
      { label: 'Pull', value: (p) => p.id },
      { label: 'Model', value: (p) => `${p.model}${p.version ? ` ${p.version}` : ''}` },
      { label: 'URL', value: (p) => p.url },
      { label: 'State', value: (p) => (p.error ? `${p.state}: ${p.error}` : p.state) },
      {
        label: 'Progress',
        value: (p) => {
          const known = p.bytes_total > 0;
          const bar = h('progress', { max: known ? p.bytes_total : null, value: known ? p.bytes_done : null, 'aria-label': `Progress of ${p.id}` });
          return h('div', {}, bar, h('small', {}, `${formatBytes(p.bytes_done)}${known ? ` of ${formatBytes(p.bytes_total)}` : ''}`));
        },
      },
      { label: '', value: (p) => (p.state === 'running' || p.state === 'queued'
        ? h('button', { type: 'button', onclick: async () => { await ctx.api(`/admin/v1/pulls/${seg(p.id)}`, { method: 'DELETE' }).catch(ctx.showError); drawPulls(); } }, 'Cancel')
        : '') },
    ], data, 'No pull yet.'));
    if (data.some((p) => p.state === 'succeeded')) await drawModels();
    return data.some((p) => p.state === 'running' || p.state === 'queued');
  };

  const model = h('input', { required: true, autocomplete: 'off' });
  const version = h('input', { autocomplete: 'off' });
  const description = h('input', { autocomplete: 'off' });
  const source = h('input', { required: true, autocomplete: 'off' });
  const sha = h('input', { autocomplete: 'off', pattern: '[0-9a-fA-F]{64}' });
  const add = form(ctx, 'Add', [
    h('div', { class: 'row' },
      field('Model', model), field('Version', version, 'Optional: defaults to the next number'),
      field('Description', description, 'Optional')),
    field('File path or URL', source, 'A GGUF file on the server (/path/model.gguf), or http://, https:// or hf://ORG/REPO/FILE.gguf'),
    field('SHA-256 (URLs only)', sha, 'Optional: 64 hex digits, checked after the download'),
  ], async () => {
    const body = { model: model.value.trim() };
    if (version.value.trim()) body.version = version.value.trim();
    if (description.value.trim()) body.description = description.value.trim();
    const where = source.value.trim();
    if (/^(https?|hf):\/\//i.test(where)) {
      body.url = where;
      if (sha.value.trim()) body.sha256 = sha.value.trim();
      await ctx.api('/admin/v1/pulls', { method: 'POST', body });
      await pollPulls();
    } else {
      body.path = where;
      await ctx.api(`/admin/v1/models/${seg(body.model)}/versions`, { method: 'POST', body });
      await drawModels();
    }
    source.value = '';
    version.value = '';
  });

  let polling = false;
  async function pollPulls() {
    if (polling) return;
    polling = true;
    try {
      while (ctx.alive() && (await drawPulls())) await new Promise((r) => setTimeout(r, 1000));
    } finally {
      polling = false;
    }
  }

  section.append(h('h2', {}, 'Models and versions'), list, inspector,
    h('section', { class: 'card', 'aria-labelledby': 'add-title' }, h('h3', { id: 'add-title' }, 'Add a version'), add),
    h('h3', {}, 'Pulls'), pulls);
  await drawModels();
  await pollPulls();
}
