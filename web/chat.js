// The chat page: sign in with an API key, pick a model, talk with it. Answers stream in
// token by token and are rendered as safe Markdown (markdown.js); Stop aborts the fetch,
// which makes the gateway cancel the engine's request.

import { call, callJson, explain, getKey, setKey, startSignIn } from './api.js';
import { h, replace } from './dom.js';
import { renderMarkdown } from './markdown.js';
import { readEvents } from './sse.js';

const $ = (id) => document.getElementById(id);

const state = {
  messages: [], // {role, content, node?, stats?, status?}
  controller: null, // AbortController of the request in flight
};

function showError(text) {
  const box = $('chat-error');
  box.textContent = text || '';
  box.hidden = !text;
}

function setBusy(busy) {
  $('send').disabled = busy;
  $('stop').hidden = !busy;
  $('regenerate').disabled = busy || !state.messages.some((m) => m.role === 'assistant');
  $('clear').disabled = busy || state.messages.length === 0;
}

// ---- Sign in ----------------------------------------------------------------

async function signIn(key) {
  const models = await callJson('/v1/models', { key });
  setKey('user', key);
  const select = $('model');
  const previous = select.value;
  replace(select, ...models.data.map((m) => h('option', { value: m.id }, m.id)));
  if (previous && models.data.some((m) => m.id === previous)) select.value = previous;
  $('sign-in').hidden = true;
  $('chat').hidden = false;
  $('sign-out').hidden = false;
  if (models.data.length === 0) {
    showError('No model is deployed for this key yet: deploy one in the admin console, then reload.');
  }
  $('prompt').focus();
}

function showSignIn(message) {
  $('chat').hidden = true;
  $('sign-out').hidden = true;
  $('sign-in').hidden = false;
  const form = $('sign-in-form');
  let error = form.querySelector('.error');
  if (!error) {
    error = h('div', { class: 'error', role: 'alert' });
    form.append(error);
  }
  error.textContent = message || '';
  error.hidden = !message;
  $('api-key').focus();
}

// Why signing in failed, for people. A 404 means a server without the public API: a
// separate `triplane control` serves these pages too.
function signInProblem(error) {
  if (error && error.status === 404) {
    return 'This server has no chat API (it is a control plane): open the chat on triplane serve or a gateway.';
  }
  return explain(error);
}

$('sign-out').addEventListener('click', () => {
  state.controller?.abort();
  setKey('user', '');
  clearConversation();
  showSignIn('');
});

// ---- Transcript ---------------------------------------------------------------

function messageNode(message) {
  const body = h('div', { class: 'content' });
  const stats = h('div', { class: 'stats', 'aria-label': 'Answer statistics' });
  const who = message.role === 'user' ? 'You' : message.model || 'Assistant';
  const node = h('article', { class: `message ${message.role}`, dataset: { role: message.role } },
    h('h2', { class: 'who' }, who), body, stats);
  message.node = node;
  paint(message);
  return node;
}

// Redraws one message. The user's own words are shown exactly as typed (text, not
// Markdown); answers are rendered as Markdown, as DOM nodes only.
function paint(message) {
  const body = message.node.querySelector('.content');
  if (message.role === 'user') {
    body.textContent = message.content;
  } else {
    replace(body, renderMarkdown(message.content));
    if (message.status === 'streaming') body.append(h('span', { class: 'cursor', 'aria-hidden': 'true' }));
  }
  const stats = message.node.querySelector('.stats');
  const parts = [];
  if (message.stats) {
    const s = message.stats;
    if (s.ttft !== null) parts.push(`time to first token ${s.ttft.toFixed(2)} s`);
    if (s.tokensPerSecond !== null) parts.push(`${s.tokensPerSecond.toFixed(1)} tokens/s`);
    if (message.status !== 'failed' || s.tokens > 0) parts.push(`${s.tokens} token${s.tokens === 1 ? '' : 's'}`);
  }
  if (message.status === 'stopped') parts.push('stopped');
  if (message.status === 'failed') parts.push('failed');
  if (message.finish === 'length') parts.push('cut at the token limit');
  stats.textContent = parts.join(' · ');
}

let paintPending = null;
// Streaming repaints at most once per frame.
function schedulePaint(message) {
  if (paintPending) return;
  paintPending = requestAnimationFrame(() => {
    paintPending = null;
    paint(message);
    const transcript = $('transcript');
    transcript.scrollTop = transcript.scrollHeight;
  });
}

function addMessage(message) {
  state.messages.push(message);
  $('transcript').append(messageNode(message));
  $('transcript').scrollTop = $('transcript').scrollHeight;
  return message;
}

function clearConversation() {
  state.controller?.abort();
  state.messages = [];
  replace($('transcript'));
  showError('');
  setBusy(false);
}

// ---- Completion ----------------------------------------------------------------

function requestBody(model) {
  const messages = [];
  const system = $('system-prompt').value.trim();
  if (system) messages.push({ role: 'system', content: system });
  for (const m of state.messages) {
    if (m.role === 'user' || (m.role === 'assistant' && m.content)) messages.push({ role: m.role, content: m.content });
  }
  const body = { model, messages, stream: true, stream_options: { include_usage: true } };
  const temperature = parseFloat($('temperature').value);
  if (!Number.isNaN(temperature)) body.temperature = temperature;
  const maxTokens = parseInt($('max-tokens').value, 10);
  if (maxTokens > 0) body.max_tokens = maxTokens;
  return body;
}

async function answer() {
  const model = $('model').value;
  if (!model) {
    showError('Choose a model first (none is deployed for this key: deploy one in the admin console).');
    return;
  }
  showError('');
  const body = requestBody(model);
  const reply = addMessage({ role: 'assistant', content: '', model, status: 'streaming' });
  const controller = new AbortController();
  state.controller = controller;
  setBusy(true);
  const started = performance.now();
  let first = null;
  let chunks = 0;
  let usage = null;
  try {
    const response = await call('/v1/chat/completions', {
      key: getKey('user'), method: 'POST', body, signal: controller.signal,
    });
    for await (const event of readEvents(response)) {
      if (event.usage) usage = event.usage;
      for (const choice of event.choices || []) {
        const delta = choice.delta && choice.delta.content;
        if (delta) {
          if (first === null) first = performance.now();
          chunks += 1;
          reply.content += delta;
          schedulePaint(reply);
        }
        if (choice.finish_reason) reply.finish = choice.finish_reason;
      }
    }
    reply.status = 'done';
  } catch (error) {
    if (controller.signal.aborted) {
      reply.status = 'stopped';
    } else {
      reply.status = 'failed';
      showError(explain(error));
      if (error.status === 401) showSignIn(explain(error));
    }
  } finally {
    const end = performance.now();
    const tokens = usage ? usage.completion_tokens : chunks;
    // Tokens after the first, over the time they took: the decode rate people feel.
    const decodeSeconds = first === null ? 0 : (end - first) / 1000;
    reply.stats = {
      ttft: first === null ? null : (first - started) / 1000,
      tokensPerSecond: tokens > 1 && decodeSeconds > 0 ? (tokens - 1) / decodeSeconds : null,
      tokens,
    };
    if (paintPending) cancelAnimationFrame(paintPending);
    paintPending = null;
    paint(reply);
    if (state.controller === controller) state.controller = null;
    setBusy(state.controller !== null);
  }
}

function send() {
  const prompt = $('prompt');
  const text = prompt.value;
  if (!text.trim() || state.controller) return;
  prompt.value = '';
  addMessage({ role: 'user', content: text });
  answer();
}

$('composer').addEventListener('submit', (event) => {
  event.preventDefault();
  send();
});

$('prompt').addEventListener('keydown', (event) => {
  // isComposing: Enter that confirms an IME candidate (Chinese input) must not send.
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    send();
  }
});

document.addEventListener('keydown', (event) => {
  if (event.key === 'Escape' && state.controller) state.controller.abort();
});

$('stop').addEventListener('click', () => state.controller?.abort());

$('regenerate').addEventListener('click', () => {
  if (state.controller) return;
  const last = state.messages[state.messages.length - 1];
  if (last && last.role === 'assistant') {
    state.messages.pop();
    last.node.remove();
  }
  if (state.messages.length) answer();
});

$('clear').addEventListener('click', () => {
  clearConversation();
  $('prompt').focus();
});

// ---- Start -------------------------------------------------------------------------

startSignIn('user', {
  form: $('sign-in-form'), input: $('api-key'), signIn, showSignIn, problem: signInProblem,
});
