// The web console (web/, served by `triplane serve`) in headless Chromium, driven by the
// pinned `playwright-core` (tests/package.json) against Debian's /usr/bin/chromium. Run by
// tests/integration/web_console_test.cc as
//   node web_console.mjs <base URL> <admin key> <user key> <artifacts dir> <model path> <model URL>
// against a serve whose "demo" deployment answers and whose "long" deployment serves a
// model slow enough to be stopped mid-answer; the console adds a version from the GGUF
// file at <model path> (on the server's machine) and pulls one from <model URL>. Saves a screenshot of every page under the
// artifacts dir; exits 0 when every check passes, otherwise prints the failure and exits 1.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const [baseURL, adminKey, userKey, artifacts, modelPath, modelURL] = process.argv.slice(2);
mkdirSync(artifacts, { recursive: true });
const XSS = '<img src=x onerror=alert(1)>';
const checks = [];
const screenshots = [];

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
context.setDefaultTimeout(30_000);
const page = await context.newPage();

// Anything that would mean script ran or the page broke.
const dialogs = [];
const pageErrors = [];
const cspViolations = [];
function watch(p) {
  p.on('dialog', (dialog) => {
    dialogs.push(dialog.message());
    dialog.dismiss().catch(() => {});
  });
  p.on('pageerror', (error) => pageErrors.push(error.message));
  p.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) cspViolations.push(message.text());
  });
}
watch(page);

async function shot(name, p = page) {
  const file = path.join(artifacts, `${name}.png`);
  await p.screenshot({ path: file, fullPage: true });
  screenshots.push(file);
}

async function check(name, fn) {
  try {
    await fn();
  } catch (error) {
    await shot(`failed-${name.replace(/\W+/g, '-')}`).catch(() => {});
    console.error(`check "${name}" failed`);
    throw error;
  }
  checks.push(name);
}

async function admin(pathname, init = {}) {
  const response = await fetch(`${baseURL}${pathname}`, {
    ...init,
    headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json', ...(init.headers || {}) },
  });
  assert.ok(response.ok, `${pathname}: ${response.status} ${await response.clone().text()}`);
  return response.json();
}

async function until(what, fn, seconds = 120) {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

const lastAnswer = () => page.locator('.message.assistant').last();

// ---- Chat page --------------------------------------------------------------------------

await check('security headers', async () => {
  const response = await page.goto(`${baseURL}/`);
  assert.equal(response.status(), 200);
  const headers = response.headers();
  assert.match(headers['content-security-policy'], /script-src 'self'/);
  assert.doesNotMatch(headers['content-security-policy'], /unsafe-inline|unsafe-eval/);
  assert.equal(headers['x-content-type-options'], 'nosniff');
  assert.ok(headers.etag);
  const again = await fetch(`${baseURL}/chat.js`, { headers: { 'if-none-match': (await fetch(`${baseURL}/chat.js`)).headers.get('etag') } });
  assert.equal(again.status, 304);
});

await check('sign in', async () => {
  await page.getByLabel('API key').fill(`tp-${'x'.repeat(43)}`);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').filter({ hasText: 'not accepted' }).waitFor();
  await shot('chat-sign-in');
  await page.getByLabel('API key').fill(userKey);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByLabel('Model').waitFor();
  const models = await page.getByLabel('Model').locator('option').allTextContents();
  assert.ok(models.includes('demo'), models.join());
  // Kept for this tab only.
  assert.equal(await page.evaluate(() => sessionStorage.getItem('triplane.apiKey')), userKey);
  assert.equal(await page.evaluate(() => localStorage.length), 0);
});

// Every form control on the page has a name a screen reader can say.
async function assertLabelled(where) {
  const unlabelled = await page.evaluate(() => [...document.querySelectorAll('input, select, textarea, button')]
    .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())
    .map((e) => e.outerHTML));
  assert.deepEqual(unlabelled, [], where);
}

await check('every control has a label', () => assertLabelled('chat'));

// Every chat request the page sends to the real engines runs to its max_tokens
// (ignore_eos: a random-weight model may end an answer at any token); `longAnswers`
// drops max_tokens too (as long as the context allows). The last body sent is kept.
let longAnswers = false;
let lastBody = null;
await page.route('**/v1/chat/completions', (route) => {
  const body = JSON.parse(route.request().postData());
  lastBody = body;
  body.ignore_eos = true;
  if (longAnswers) delete body.max_tokens;
  route.continue({ postData: JSON.stringify(body) });
});
const answered = async (locator) => /\d+ tokens?/.test(await locator.locator('.stats').textContent());

await check('chat streams an answer from the engine', async () => {
  await page.getByLabel('Model').selectOption('demo');
  await page.locator('summary', { hasText: 'Settings' }).click();
  await page.getByLabel('Max tokens').fill('24');
  const prompt = `你好 🙂 ${XSS} **not bold**`;
  await page.getByLabel('Message', { exact: true }).fill(prompt);
  await page.getByLabel('Message', { exact: true }).press('Enter');
  await until('the answer', () => answered(lastAnswer()));
  const stats = await lastAnswer().locator('.stats').textContent();
  assert.match(stats, /time to first token \d+\.\d\d s/);
  assert.match(stats, /[\d.]+ tokens\/s/);
  assert.match(stats, /24 tokens/);
  assert.ok((await lastAnswer().locator('.content').textContent()).length > 0);
  // The user's own words, exactly as typed: text, not markup.
  assert.equal(await page.locator('.message.user .content').last().textContent(), prompt);
  assert.equal(await page.locator('#transcript img').count(), 0);
  await shot('chat-answer');
});

await check('regenerate replaces the last answer', async () => {
  const before = await lastAnswer().locator('.content').textContent();
  await page.getByRole('button', { name: 'Regenerate' }).click();
  await until('the new answer', async () => (await lastAnswer().locator('.content').textContent()) !== before &&
    answered(lastAnswer()));
  assert.equal(await page.locator('.message.assistant').count(), 1);
  assert.equal(await page.locator('.message.user').count(), 1);
});

await check('a multi-turn conversation sends the history', async () => {
  await page.getByLabel('Message', { exact: true }).fill('第二个问题');
  await page.getByRole('button', { name: 'Send' }).click();
  await until('the second answer', async () => (await page.locator('.message.assistant').count()) === 2 &&
    answered(lastAnswer()));
  assert.deepEqual(lastBody.messages.map((m) => m.role), ['user', 'assistant', 'user']);
  assert.equal(lastBody.messages[2].content, '第二个问题');
  assert.equal(lastBody.stream, true);
});

await check('stop cancels the answer and the engine stops', async () => {
  await page.getByRole('button', { name: 'Clear' }).click();
  assert.equal(await page.locator('.message').count(), 0);
  await page.getByLabel('Model').selectOption('long');
  longAnswers = true;
  await page.getByLabel('Message', { exact: true }).fill('Tell me a very long story.');
  await page.getByLabel('Message', { exact: true }).press('Enter');
  await until('the first tokens', async () => (await lastAnswer().locator('.content').textContent()).length > 0);
  await page.getByRole('button', { name: 'Stop' }).click();
  await until('the stopped answer', async () => /stopped/.test(await lastAnswer().locator('.stats').textContent()));
  longAnswers = false;
  const stopped = await lastAnswer().locator('.content').textContent();
  // The engine's running requests return to 0: the gateway cancelled the upstream request.
  const instances = (await admin('/admin/v1/instances?deployment=long')).data;
  assert.equal(instances.length, 1);
  await until('the engine to drop the request', async () => {
    const metrics = await (await fetch(`${instances[0].url}/metrics`)).text();
    const running = /^triplane_num_requests_running(?:\{[^}]*\})? (\S+)$/m.exec(metrics);
    return running && Number(running[1]) === 0;
  }, 60);
  assert.equal(await lastAnswer().locator('.content').textContent(), stopped, 'the answer grew after Stop');
  assert.ok(await page.getByRole('button', { name: 'Send' }).isEnabled());
  await shot('chat-stopped');
});

await check('model output is rendered as text, never as HTML', async () => {
  await page.getByRole('button', { name: 'Clear' }).click();
  await page.getByLabel('Model').selectOption('demo');
  const deltas = [
    'Here is **bold**, *italic* and `<b>code</b>`.\n\n',
    XSS, ' and <script>alert(2)</script>\n\n',
    '```html\n<img src=y onerror=alert(3)>\n```\n\n',
    '- [bad](javascript:alert(4))\n- [good](https://example.com/x)\n\n',
    '你好，世界 🙂👍🏽',
  ];
  const events = deltas.map((content, i) => ({
    id: 'chatcmpl-test', object: 'chat.completion.chunk', created: 0, model: 'demo',
    choices: [{ index: 0, delta: i === 0 ? { role: 'assistant', content } : { content }, finish_reason: null }],
  }));
  events.push({ id: 'chatcmpl-test', object: 'chat.completion.chunk', created: 0, model: 'demo',
    choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] });
  // Registered last, so it answers before the handler above.
  const canned = (route) => route.fulfill({
    status: 200,
    headers: { 'content-type': 'text/event-stream' },
    body: events.map((e) => `data: ${JSON.stringify(e)}\n\n`).join('') + 'data: [DONE]\n\n',
  });
  await page.route('**/v1/chat/completions', canned);
  await page.getByLabel('Message', { exact: true }).fill('show me');
  await page.getByLabel('Message', { exact: true }).press('Enter');
  await until('the canned answer', async () => (await lastAnswer().locator('.content').textContent()).includes('👍🏽'));
  await page.unroute('**/v1/chat/completions', canned);
  const answer = lastAnswer().locator('.content');
  const text = await answer.textContent();
  assert.ok(text.includes(XSS), text);
  assert.ok(text.includes('<script>alert(2)</script>'), text);
  assert.ok(text.includes('你好，世界 🙂👍🏽'), text);
  assert.equal(await page.locator('#transcript img, #transcript script, #transcript iframe').count(), 0);
  assert.equal(await answer.locator('strong').textContent(), 'bold');
  assert.equal(await answer.locator('em').textContent(), 'italic');
  assert.equal(await answer.locator('code').first().textContent(), '<b>code</b>');
  assert.equal(await answer.locator('pre code').textContent(), '<img src=y onerror=alert(3)>');
  const links = await answer.locator('a').evaluateAll((as) => as.map((a) => a.href));
  assert.deepEqual(links, ['https://example.com/x']);
  await page.getByText(XSS, { exact: false }).first().waitFor({ state: 'visible' });
  await shot('chat-markdown');
});

await check('a character split across network chunks is decoded whole', async () => {
  const decoded = await page.evaluate(async () => {
    const { readEvents } = await import('/sse.js');
    const bytes = new TextEncoder().encode(`data: ${JSON.stringify({ choices: [{ delta: { content: '中文🙂' } }] })}\n\ndata: [DONE]\n\n`);
    const at = bytes.indexOf(0xf0) + 2; // inside the emoji's four bytes
    const cut = bytes.indexOf(0xe4) + 1; // inside 中
    const stream = new ReadableStream({
      start(controller) {
        controller.enqueue(bytes.slice(0, cut));
        controller.enqueue(bytes.slice(cut, at));
        controller.enqueue(bytes.slice(at));
        controller.close();
      },
    });
    let text = '';
    for await (const event of readEvents(new Response(stream))) text += event.choices[0].delta.content;
    return text;
  });
  assert.equal(decoded, '中文🙂');
});

await check('a rate-limited request says when to retry', async () => {
  const limited = await admin('/admin/v1/keys', { method: 'POST', body: JSON.stringify({ name: 'web-limited' }) });
  await admin(`/admin/v1/config/limits.key.${limited.id}`, {
    method: 'PUT', body: JSON.stringify({ value: { requests_per_minute: 1 } }),
  });
  const other = await context.newPage();
  watch(other);
  await other.goto(`${baseURL}/`);
  await other.getByLabel('API key').fill(limited.key);
  await other.getByRole('button', { name: 'Sign in' }).click();
  await other.getByLabel('Model').selectOption('demo');
  await other.locator('summary', { hasText: 'Settings' }).click();
  await other.getByLabel('Max tokens').fill('4');
  // One request a minute: the second (or, should the limit arrive late or the minute
  // turn, a later one) is refused.
  for (let sent = 1; sent <= 6 && !(await other.locator('#chat-error').isVisible()); ++sent) {
    await other.getByLabel('Message', { exact: true }).fill(`message ${sent}`);
    await other.getByLabel('Message', { exact: true }).press('Enter');
    await until(`the answer to message ${sent}`, async () => !(await other.getByRole('button', { name: 'Stop' }).isVisible()) &&
      (await other.locator('.message.assistant').count()) === sent);
  }
  const error = await other.locator('#chat-error').textContent();
  assert.match(error, /Rate limit or quota reached: .*Retry in \d+ seconds?\./, error);
  await shot('chat-rate-limited', other);
  await other.close();
});

// ---- Admin console ------------------------------------------------------------------

await check('admin sign in and overview', async () => {
  await page.goto(`${baseURL}/admin`);
  await page.getByLabel('Admin key').fill(userKey);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#sign-in-error').filter({ hasText: 'admin key' }).waitFor();
  await page.getByLabel('Admin key').fill(adminKey);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
  const stat = (label) => page.locator('.stat').filter({ has: page.getByText(label, { exact: true }) });
  await stat('Instances').waitFor();
  assert.match(await stat('Deployments').textContent(), /2 running of 2/);
  await shot('admin-overview');
});

await check('overview: live charts draw from the monitoring center', async () => {
  const charts = page.locator('section[data-deployment="demo"]');
  await charts.waitFor();
  const line = (title) => charts.locator('figure').filter({ hasText: title }).locator('path.series-0')
    .getAttribute('d', { timeout: 1000 }).catch(() => null);
  // The monitor adds a point every interval (5 s): wait for a line of two points or more.
  await until('a line on the requests chart', async () => ((await line('Requests per second')) || '').includes('L'), 120);
  for (const title of ['Requests per second', 'Latency', 'Time to first token', 'Tokens per second', 'KV cache usage']) {
    assert.equal(await charts.locator('figure').filter({ hasText: title }).locator('svg').count(), 1, title);
  }
  // Answers were streamed by demo a moment ago: its tokens/s chart is above the axis.
  assert.ok(((await line('Tokens per second')) || '').includes('L'));
  assert.equal(await page.locator('tr', { hasText: 'demo 1' }).count(), 1);
  await assertLabelled('admin-overview-charts');
  await shot('admin-overview-charts');
});

await check('models: inspect metadata', async () => {
  await page.getByRole('link', { name: 'Models' }).click();
  await page.getByRole('heading', { name: 'Models and versions' }).waitFor();
  await page.locator('tr', { hasText: 'demo' }).getByRole('button', { name: 'Inspect' }).click();
  const metadata = page.getByRole('region', { name: /Metadata of demo/ });
  await metadata.waitFor();
  assert.match(await metadata.textContent(), /Architecturellama/);
  await shot('admin-models');
});

await check('models: add by path, pull by URL with progress', async () => {
  await page.getByLabel('Model', { exact: true }).fill('added');
  await page.getByLabel('File path or URL').fill(modelPath);
  await page.getByRole('button', { name: 'Add', exact: true }).click();
  await page.locator('tr', { hasText: 'added' }).getByRole('button', { name: 'Inspect' }).waitFor();
  // A second version of the same file, for the deployments page to switch to.
  await page.getByLabel('Model', { exact: true }).fill('added');
  await page.getByLabel('Version', { exact: true }).fill('2');
  await page.getByLabel('File path or URL').fill(modelPath);
  await page.getByRole('button', { name: 'Add', exact: true }).click();
  await until('version 2', async () => (await page.locator('tr', { hasText: 'added' }).count()) === 2);
  await page.getByLabel('Model', { exact: true }).fill('pulled');
  await page.getByLabel('File path or URL').fill(modelURL);
  await page.getByRole('button', { name: 'Add', exact: true }).click();
  const pull = page.locator('tr', { hasText: modelURL });
  await pull.filter({ hasText: 'succeeded' }).waitFor();
  const progress = pull.getByRole('progressbar');
  assert.equal(await progress.getAttribute('value'), await progress.getAttribute('max'));
  await page.locator('tr', { hasText: 'pulled' }).getByRole('button', { name: 'Inspect' }).waitFor();
  const models = (await admin('/admin/v1/models')).data.map((m) => m.name);
  assert.ok(models.includes('added') && models.includes('pulled'), models.join());
  await assertLabelled('admin-models-added');
  await shot('admin-models-added');
});

await check('keys: create shows the key once, revoke stops it', async () => {
  await page.getByRole('link', { name: 'Keys and teams' }).click();
  await page.getByLabel('Name', { exact: true }).fill('web-console-key');
  await page.getByRole('button', { name: 'Create key' }).click();
  const secret = (await page.locator('#new-key-secret').textContent()).trim();
  assert.match(secret, /^tp-/);
  const models = (key) => fetch(`${baseURL}/v1/models`, { headers: { authorization: `Bearer ${key}` } });
  assert.equal((await models(secret)).status, 200);
  await shot('admin-key-created');
  const row = page.locator('tr[data-key="web-console-key"]');
  await row.getByRole('button', { name: 'Revoke' }).click();
  await row.getByRole('button', { name: /Confirm: revoke/ }).click();
  await page.locator('tr[data-key="web-console-key"][data-revoked="yes"]').waitFor();
  assert.equal((await models(secret)).status, 401);
  // Shown once: a reload lists the key without its secret.
  await page.reload();
  await page.locator('tr[data-key="web-console-key"]').waitFor();
  assert.ok(!(await page.content()).includes(secret));
  await assertLabelled('admin-keys');
  await shot('admin-keys');
});

await check('deployments: scale up and see the new instance', async () => {
  await page.getByRole('link', { name: 'Deployments' }).click();
  const card = page.locator('section[data-deployment="demo"]');
  await card.waitFor();
  assert.equal(await card.locator('tbody tr[data-instance]').count(), 1);
  await card.getByLabel('Replicas').fill('2');
  await card.getByRole('button', { name: 'Scale' }).click();
  await until('two ready instances', async () => (await card.locator('tr[data-state="ready"]').count()) === 2, 180);
  // Each instance's latest point from the monitor: the long-running one has its memory.
  const long = page.locator('section[data-deployment="long"] tr[data-state="ready"]');
  await until('the monitor\'s memory of the long instance', async () => /\d MiB/.test(await long.textContent()), 60);
  await assertLabelled('admin-deployments');
  await shot('admin-deployments');
});

await check('deployments: create, roll out a version, see the events, roll back, delete', async () => {
  const create = page.getByRole('region', { name: 'Create a deployment' });
  await create.getByLabel('Name').fill('web-dep');
  await create.getByLabel('Model').selectOption('added');
  await create.getByLabel('Version').fill('1');
  await create.getByRole('button', { name: 'Create' }).click();
  const card = page.locator('section[data-deployment="web-dep"]');
  // One snapshot of the rows (they change under a rollout): exactly one, ready, of `version`.
  const only = async (version) => {
    const rows = await card.locator('tbody tr[data-instance]').evaluateAll((trs) =>
      trs.map((tr) => ({ state: tr.dataset.state, version: tr.cells[1]?.textContent })));
    return rows.length === 1 && rows[0].state === 'ready' && rows[0].version === version;
  };
  await until('an instance of version 1', () => only('1'), 180);
  await card.getByLabel('Version').selectOption('2');
  await card.getByRole('button', { name: 'Roll out' }).click();
  await until('the instance replaced by one of version 2', () => only('2'), 180);
  assert.equal((await admin('/admin/v1/deployments/web-dep')).version, '2');
  const events = card.getByRole('list', { name: 'Events of web-dep' });
  await until('the rollout in the events', async () =>
    (await events.count()) === 1 && (await events.textContent()).includes('rolling update from 1 to 2'), 30);
  await card.getByRole('button', { name: 'Roll back to 1' }).click();
  await until('back on version 1', () => only('1'), 180);
  await shot('admin-deployment-rolled-back');
  await card.getByRole('button', { name: 'Delete', exact: true }).click();
  await card.getByRole('button', { name: 'Confirm delete' }).click();
  await until('the deployment gone', async () => (await card.count()) === 0, 60);
});

await check('usage: a row for the chat key', async () => {
  await page.getByRole('link', { name: 'Usage and cost' }).click();
  await page.getByRole('heading', { name: 'Usage and cost' }).waitFor();
  const keys = (await admin('/admin/v1/keys')).data;
  const user = keys.find((k) => k.name === 'web-user');
  assert.ok(user, 'the user key is listed');
  // The recorder writes in batches: show again until the row is there.
  await until('the usage row', async () => {
    await page.getByRole('button', { name: 'Show' }).click();
    return (await page.locator(`tr[data-group="${user.id}"]`).count()) === 1;
  }, 60);
  const row = await page.locator(`tr[data-group="${user.id}"]`).textContent();
  assert.ok(row.includes('web-user'), row);
  const download = page.waitForEvent('download');
  await page.getByRole('button', { name: 'Download CSV' }).click();
  const csv = await (await download).path();
  assert.ok(csv);
  await assertLabelled('admin-usage');
  await shot('admin-usage');
});

await check('audit: the chain verifies', async () => {
  await page.getByRole('link', { name: 'Audit log' }).click();
  await page.getByRole('button', { name: 'Verify the chain' }).click();
  await page.getByText(/^Verified: \d+ rows/).waitFor();
  assert.ok((await page.locator('tbody tr').count()) > 0);
  await assertLabelled('admin-audit');
  await shot('admin-audit');
});

await check('config: edit a value and see its history', async () => {
  await page.getByRole('link', { name: 'Config' }).click();
  await page.getByLabel('Key', { exact: true }).fill('web.test');
  await page.getByLabel('Value (JSON)').fill('{"greeting": "你好"}');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByRole('heading', { name: 'History of web.test' }).waitFor();
  assert.deepEqual((await admin('/admin/v1/config/web.test')).value, { greeting: '你好' });
  await page.getByLabel('Value (JSON)').fill('{not json');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.locator('#console-error').filter({ hasText: 'not valid JSON' }).waitFor();
  await assertLabelled('admin-config');
  await shot('admin-config');
});

await check('keyboard: skip link first, sections reachable with Tab and Enter', async () => {
  await page.goto(`${baseURL}/admin#/overview`);
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Skip to the page\'s content');
  let presses = 0;
  while ((await page.evaluate(() => document.activeElement.textContent)) !== 'Keys and teams') {
    assert.ok(++presses < 30, 'Tab never reached the Keys and teams link');
    await page.keyboard.press('Tab');
  }
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'API keys' }).waitFor();
});

await check('phone width', async () => {
  await page.setViewportSize({ width: 360, height: 780 });
  for (const [url, name] of [[`${baseURL}/admin#/deployments`, 'phone-admin'], [`${baseURL}/`, 'phone-chat']]) {
    await page.goto(url);
    await page.waitForLoadState('networkidle');
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `${name}: ${overflow}px wider than the screen`);
    await shot(name);
  }
});

await check('nothing ran that should not have', async () => {
  assert.deepEqual(dialogs, []);
  assert.deepEqual(pageErrors, []);
  assert.deepEqual(cspViolations, []);
});

await browser.close();
console.log(JSON.stringify({ ok: true, checks, screenshots }));
