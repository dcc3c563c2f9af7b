// The official `openai` npm client (tests/package.json) against a running `triplane engine`
// or the gateway of `triplane serve`: every endpoint it offers for one model, streaming
// included. Run by tests/integration/openai_client_test.cc as
// `node openai_client.mjs <base URL> <model> [api key]`; exits 0 when every check passes,
// otherwise prints the failed assertion and exits 1.

import assert from 'node:assert/strict';
import OpenAI from 'openai';

const [baseURL, model, apiKey = 'unused'] = process.argv.slice(2);
const client = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey, maxRetries: 0, timeout: 60_000 });
const greedy = { temperature: 0, ignore_eos: true };
const checks = [];

async function check(name, fn) {
  await fn();
  checks.push(name);
}

await check('models.list', async () => {
  const page = await client.models.list();
  assert.deepEqual(page.data.map((m) => m.id), [model]);
  const one = await client.models.retrieve(model);
  assert.equal(one.id, model);
  assert.equal(one.object, 'model');
});

await check('completions.create', async () => {
  const whole = await client.completions.create({ model, prompt: 'Hello world', max_tokens: 8, ...greedy });
  assert.equal(whole.object, 'text_completion');
  assert.equal(whole.choices.length, 1);
  assert.equal(whole.choices[0].finish_reason, 'length');
  assert.equal(whole.usage.completion_tokens, 8);
  assert.ok(whole.choices[0].text.length > 0);

  const stream = await client.completions.create({ model, prompt: 'Hello world', max_tokens: 8, stream: true, ...greedy });
  let text = '';
  let finish = null;
  for await (const chunk of stream) {
    for (const choice of chunk.choices) {
      text += choice.text;
      finish = choice.finish_reason ?? finish;
    }
  }
  assert.equal(text, whole.choices[0].text);
  assert.equal(finish, 'length');
});

await check('chat.completions.create', async () => {
  const messages = [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', content: 'Say something.' },
  ];
  const whole = await client.chat.completions.create({
    model, messages, max_completion_tokens: 6, logprobs: true, top_logprobs: 2, ...greedy,
  });
  assert.equal(whole.object, 'chat.completion');
  assert.equal(whole.choices[0].message.role, 'assistant');
  assert.equal(whole.choices[0].finish_reason, 'length');
  assert.equal(whole.choices[0].logprobs.content.length, 6);
  assert.equal(whole.choices[0].logprobs.content[0].top_logprobs.length, 2);
  assert.equal(whole.usage.total_tokens, whole.usage.prompt_tokens + 6);

  const stream = await client.chat.completions.create({
    model, messages, max_completion_tokens: 6, stream: true, stream_options: { include_usage: true }, ...greedy,
  });
  let content = '';
  let role = null;
  let usage = null;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    for (const choice of chunk.choices) {
      role = choice.delta.role ?? role;
      content += choice.delta.content ?? '';
    }
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(role, 'assistant');
  assert.equal(content, whole.choices[0].message.content);
  // The same counts (the second time the prompt comes from the prefix cache).
  assert.equal(usage.prompt_tokens, whole.usage.prompt_tokens);
  assert.equal(usage.completion_tokens, 6);
  assert.ok(usage.prompt_tokens_details.cached_tokens > 0);

  // The SDK's streaming helper assembles the same message.
  const runner = client.chat.completions.stream({ model, messages, max_completion_tokens: 6, ...greedy });
  const final = await runner.finalChatCompletion();
  assert.equal(final.choices[0].message.content, whole.choices[0].message.content);
});

await check('embeddings.create', async () => {
  // The SDK asks for base64 by default and decodes it; ask for floats too.
  for (const encoding_format of [undefined, 'float']) {
    const result = await client.embeddings.create({ model, input: ['first', 'second'], encoding_format });
    assert.equal(result.data.length, 2);
    for (const item of result.data) {
      const norm = Math.sqrt(item.embedding.reduce((s, v) => s + v * v, 0));
      assert.ok(Math.abs(norm - 1) < 1e-4, `norm ${norm}`);
    }
    assert.ok(result.usage.prompt_tokens > 0);
  }
});

await check('errors', async () => {
  if (apiKey !== 'unused') {
    const stranger = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey: `tp-${'x'.repeat(43)}`, maxRetries: 0 });
    await assert.rejects(stranger.models.list(), (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);
  }
  await assert.rejects(
    client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof OpenAI.NotFoundError && e.status === 404,
  );
  await assert.rejects(
    client.completions.create({ model, prompt: 'x', temperature: 5 }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'temperature',
  );
});

console.log(JSON.stringify({ ok: true, checks }));
