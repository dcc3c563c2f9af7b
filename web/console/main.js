// The admin console's shell: sign-in with an admin key, hash routes (#/overview,
// #/models, ...) and what every view shares (the API with the key, the error line,
// timers stopped when the view is left).

import { callJson, explain, getKey, setKey, startSignIn } from '../api.js';
import { replace } from '../dom.js';
import * as audit from './audit.js';
import * as config from './config.js';
import * as deployments from './deployments.js';
import * as keys from './keys.js';
import * as models from './models.js';
import * as overview from './overview.js';
import * as usage from './usage.js';

const VIEWS = { overview, models, deployments, keys, usage, audit, config };
const $ = (id) => document.getElementById(id);

let timers = [];
let generation = 0; // bumped on every navigation: late answers of a left view are dropped

function showError(error) {
  const box = $('console-error');
  box.textContent = error ? (typeof error === 'string' ? error : explain(error, { admin: true })) : '';
  box.hidden = !error;
  if (error && error.status === 401) showSignIn(explain(error, { admin: true }));
}

// What a view gets: the admin API, errors, timers that end with the view.
function context(mine) {
  return {
    api: (path, options = {}) => callJson(path, { ...options, key: getKey('admin') }),
    key: () => getKey('admin'),
    showError,
    alive: () => mine === generation,
    every(seconds, fn) {
      const id = setInterval(() => {
        if (mine === generation) fn();
      }, seconds * 1000);
      timers.push(id);
    },
    refresh: () => route(),
  };
}

function route() {
  for (const id of timers) clearInterval(id);
  timers = [];
  generation += 1;
  const name = (location.hash.replace(/^#\/?/, '').split('?')[0] || 'overview');
  const view = VIEWS[name] || overview;
  for (const link of document.querySelectorAll('.console nav a')) {
    if (link.getAttribute('href') === `#/${name}`) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  showError(null);
  const section = $('view');
  replace(section);
  document.title = `${view.title} · Triplane admin console`;
  Promise.resolve(view.render(section, context(generation))).catch(showError);
}

async function signIn(key) {
  await callJson('/admin/v1/overview', { key });
  setKey('admin', key);
  $('sign-in').hidden = true;
  $('console').hidden = false;
  $('sign-out').hidden = false;
  route();
  $('view').focus();
}

function showSignIn(message) {
  for (const id of timers) clearInterval(id);
  timers = [];
  generation += 1;
  $('console').hidden = true;
  $('sign-out').hidden = true;
  $('sign-in').hidden = false;
  $('sign-in-error').textContent = message || '';
  $('sign-in-error').hidden = !message;
  $('admin-key').focus();
}

// Why signing in failed, for people. A 404 means a server without the admin API: a
// separate `triplane gateway` serves these pages too.
function signInProblem(error) {
  if (error && error.status === 404) {
    return 'This server has no admin API (it is a gateway): open the console on the control plane\'s address (triplane serve or triplane control).';
  }
  return explain(error, { admin: true });
}

$('sign-out').addEventListener('click', () => {
  setKey('admin', '');
  showSignIn('');
});

window.addEventListener('hashchange', () => {
  if (!$('console').hidden) {
    route();
    $('view').focus();
  }
});

startSignIn('admin', {
  form: $('sign-in-form'), input: $('admin-key'), signIn, showSignIn, problem: signInProblem,
});
