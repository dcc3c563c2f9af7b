// Keys and teams: API keys (a new key's secret is shown once, here, never again) and
// revocation; teams that group keys for limits and usage.

import { seg } from '../api.js';
import { field, formatTime, h, replace } from '../dom.js';
import { confirmButton, form, table } from './ui.js';

export const title = 'Keys and teams';

export async function render(section, ctx) {
  const keyList = h('div');
  const teamList = h('div');
  const created = h('div', { 'aria-live': 'assertive' });
  const teamSelect = h('select', {});

  const draw = async () => {
    const [keys, teams] = await Promise.all([ctx.api('/admin/v1/keys'), ctx.api('/admin/v1/teams')]);
    if (!ctx.alive()) return;
    replace(keyList, table('API keys', [
      { label: 'Name', value: (k) => k.name },
      { label: 'Key id', value: (k) => k.id },
      { label: 'Role', value: (k) => k.role },
      { label: 'Team', value: (k) => k.team || '' },
      { label: 'Models', value: (k) => (k.allowed_models && k.allowed_models.length ? k.allowed_models.join(', ') : 'all') },
      { label: 'Created', value: (k) => formatTime(k.created_at) },
      { label: 'Expires', value: (k) => (k.expires_at ? formatTime(k.expires_at) : 'never') },
      {
        label: 'Status',
        value: (k) => (k.revoked_at
          ? h('span', { class: 'bad' }, `revoked ${formatTime(k.revoked_at)}`)
          : confirmButton('Revoke', `Confirm: revoke ${k.name}`, ctx, async () => {
            await ctx.api(`/admin/v1/keys/${seg(k.id)}`, { method: 'DELETE' });
            await draw();
          })),
      },
    ], keys.data.map((k) => ({ ...k, __data: { key: k.name, revoked: k.revoked_at ? 'yes' : 'no' } })), 'No key yet.'));
    replace(teamList, table('Teams', [
      { label: 'Team', value: (t) => t.name },
      { label: 'Description', value: (t) => t.description || '' },
      { label: 'Created', value: (t) => formatTime(t.created_at) },
      {
        label: '',
        value: (t) => confirmButton('Delete', 'Confirm delete', ctx, async () => {
          await ctx.api(`/admin/v1/teams/${seg(t.name)}`, { method: 'DELETE' });
          await draw();
        }),
      },
    ], teams.data, 'No team yet.'));
    const current = teamSelect.value;
    replace(teamSelect, h('option', { value: '' }, '(none)'),
      teams.data.map((t) => h('option', { value: t.name, selected: t.name === current }, t.name)));
  };

  const name = h('input', { required: true, autocomplete: 'off' });
  const role = h('select', {}, h('option', { value: 'user' }, 'user'), h('option', { value: 'admin' }, 'admin'));
  const models = h('input', { autocomplete: 'off' });
  const expires = h('input', { type: 'datetime-local' });
  const createKey = form(ctx, 'Create key', [
    h('div', { class: 'row' },
      field('Name', name), field('Role', role), field('Team', teamSelect),
      field('Allowed models', models, 'Comma-separated; empty: all models'),
      field('Expires', expires, 'Optional, your local time')),
  ], async () => {
    const body = { name: name.value.trim(), role: role.value };
    if (teamSelect.value) body.team = teamSelect.value;
    const allowed = models.value.split(',').map((m) => m.trim()).filter(Boolean);
    if (allowed.length) body.allowed_models = allowed;
    if (expires.value) body.expires_at = new Date(expires.value).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const key = await ctx.api('/admin/v1/keys', { method: 'POST', body });
    const secret = h('code', { class: 'secret', id: 'new-key-secret' }, key.key);
    const copy = h('button', { type: 'button' }, 'Copy');
    copy.addEventListener('click', async () => {
      try {
        await navigator.clipboard.writeText(key.key);
        copy.textContent = 'Copied';
      } catch {
        copy.textContent = 'Select the key and copy it by hand';
      }
    });
    replace(created, h('div', { class: 'notice', role: 'status' },
      h('p', {}, h('strong', {}, `Key “${key.name}” created. Copy it now: it is shown only this once.`)),
      secret, copy));
    name.value = '';
    await draw();
  });

  const teamName = h('input', { required: true, autocomplete: 'off' });
  const teamDescription = h('input', { autocomplete: 'off' });
  const createTeam = form(ctx, 'Create team', [
    h('div', { class: 'row' }, field('Team name', teamName), field('Description', teamDescription, 'Optional')),
  ], async () => {
    const body = { name: teamName.value.trim() };
    if (teamDescription.value.trim()) body.description = teamDescription.value.trim();
    await ctx.api('/admin/v1/teams', { method: 'POST', body });
    teamName.value = '';
    teamDescription.value = '';
    await draw();
  });

  section.append(h('h2', {}, 'API keys'), keyList,
    h('section', { class: 'card', 'aria-labelledby': 'new-key-title' }, h('h3', { id: 'new-key-title' }, 'Create a key'), createKey, created),
    h('h2', {}, 'Teams'), teamList,
    h('section', { class: 'card', 'aria-labelledby': 'new-team-title' }, h('h3', { id: 'new-team-title' }, 'Create a team'), createTeam));
  await draw();
}
