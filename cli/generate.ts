// `tokenformer generate`: text from a prompt with a KV-cached decode (src/decode.ts), sampled by
// src/sample.ts and seeded, so the same inputs and seed give the same text. It streams the text
// to stdout as tokens arrive (the whole continuation is decoded again each time and only its
// new, complete-character suffix is printed, so a character split across tokens prints once,
// whole), then one newline; --json prints one object instead. A summary goes to stderr.
// Every flag, the tokenizer, the config and weights, and the prompt are checked before the
// backend starts. Omits: batches of prompts, chat templates, stop strings.

import type { Command } from 'commander';
import { loadBackend } from '../backends/index.ts';
import type { ModelConfig } from '../src/config.ts';
import { UserError } from '../src/errors.ts';
import { generate, type Generated, type GenerateOptions } from '../src/generate.ts';
import { TokenFormer } from '../src/model.ts';
import { DEFAULT_SAMPLING, checkSampling } from '../src/sample.ts';
import { readTokenizer, type TextTokenizer } from '../src/tokenizer.ts';
import { checkBackendName, readModelFiles } from './io.ts';
import { settle } from './stdio.ts';
import { numberFlag } from './train.ts';

interface GenOpts {
  config: string;
  weights: string;
  tokenizer: string;
  prompt: string;
  maxNewTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  seed: number;
  backend: string;
  json?: boolean;
  maxMemory?: string;
}

/**
 * The printable text of a growing id list: decode(all) minus a trailing run of U+FFFD, which
 * may be a character whose remaining bytes are still to come. `push` returns what is new.
 */
export class TextStream {
  private shown = '';
  constructor(private readonly tk: TextTokenizer) {}

  push(ids: readonly number[]): string {
    const text = this.tk.decode(ids).replace(/\uFFFD+$/, '');
    if (!text.startsWith(this.shown)) return ''; // cannot happen for UTF-8 (see spec/decode.md)
    const fresh = text.slice(this.shown.length);
    this.shown = text;
    return fresh;
  }

  /** The rest, U+FFFD included, once no more ids will come. */
  finish(ids: readonly number[]): string {
    const text = this.tk.decode(ids);
    const rest = text.startsWith(this.shown) ? text.slice(this.shown.length) : '';
    this.shown = text;
    return rest;
  }
}

/** The generated ids that are text: all of them, less a final EOS. */
export function textIds(g: Generated): number[] {
  return g.stop === 'eos' ? g.ids.slice(0, -1) : g.ids;
}

function sampling(o: GenOpts) {
  const s = { temperature: o.temperature, topK: o.topK, topP: o.topP };
  checkSampling(s);
  if (!Number.isSafeInteger(o.maxNewTokens) || o.maxNewTokens < 0) {
    throw new UserError(`--max-new-tokens must be an integer ≥ 0, got ${o.maxNewTokens}`);
  }
  return s;
}

/** Everything checked before the backend starts: flags, tokenizer, model files, prompt. */
function plan(o: GenOpts) {
  const s = sampling(o);
  checkBackendName(o.backend);
  if (o.prompt === '') throw new UserError('--prompt is empty');
  const tk = readTokenizer(o.tokenizer);
  const { config, weights } = readModelFiles(o.config, o.weights, { maxMemory: o.maxMemory });
  if (tk.size > config.vocabSize) {
    throw new UserError(`the tokenizer has ${tk.size} ids, but the model's vocabulary has only ${config.vocabSize} rows`);
  }
  const prompt = tk.encode(o.prompt);
  if (prompt.length > config.maxPositions) {
    throw new UserError(`the prompt is ${prompt.length} tokens, over max_position_embeddings ${config.maxPositions}`);
  }
  const opts: GenerateOptions = { ...s, maxNewTokens: o.maxNewTokens, seed: o.seed, allowed: tk.size, eosId: tk.eosId };
  return { tk, config, weights, prompt, opts };
}

async function generateCmd(o: GenOpts): Promise<void> {
  const p = plan(o);
  const be = await loadBackend(o.backend);
  try {
    const model = TokenFormer.fromHost(be, p.config, p.weights);
    const stream = new TextStream(p.tk);
    const t0 = performance.now();
    const out = await generate(model, p.prompt, p.opts, (id, ids) => {
      if (!o.json && id !== p.opts.eosId) process.stdout.write(stream.push(ids));
    });
    const seconds = (performance.now() - t0) / 1000;
    const ids = textIds(out);
    if (o.json) {
      const text = p.tk.decode(ids);
      process.stdout.write(`${JSON.stringify({ prompt_ids: p.prompt, generated_ids: out.ids, text, stop: out.stop })}\n`);
    } else {
      process.stdout.write(`${stream.finish(ids)}\n`);
    }
    await settle();
    process.stderr.write(`tokenformer generate: ${out.ids.length} new tokens after ${p.prompt.length} prompt tokens in `
      + `${seconds.toFixed(2)} s (${(out.ids.length / seconds).toFixed(1)} tokens/s) on ${be.name}; stop: ${out.stop}\n`);
    model.dispose();
  } finally {
    await be.destroy();
  }
}

function intFlag(flag: string) {
  return numberFlag(flag, true);
}

export function registerGenerate(program: Command): void {
  const d = DEFAULT_SAMPLING;
  program.command('generate')
    .description('generate text from a prompt (KV-cached decoding; greedy at --temperature 0, else seeded top-k/top-p sampling)')
    .requiredOption('--config <path>', 'model config (YAML or JSON)')
    .requiredOption('--weights <path>', 'weights: .safetensors or pytorch_model.bin (torch.save)')
    .requiredOption('--tokenizer <path>', 'Hugging Face tokenizer.json (e.g. test/fixtures/tokenizer/gpt-neox-20b-tokenizer.json)')
    .requiredOption('--prompt <text>', 'the text to continue')
    .option('--max-new-tokens <n>', 'stop after this many new tokens (also at EOS and max_position_embeddings)', intFlag('max-new-tokens'), 32)
    .option('--temperature <t>', 'softmax temperature; 0 = greedy argmax', numberFlag('temperature', false), d.temperature)
    .option('--top-k <k>', 'keep the k most likely tokens (0 = all)', intFlag('top-k'), d.topK)
    .option('--top-p <p>', 'then keep the smallest set with probability ≥ p (nucleus), in (0, 1]', numberFlag('top-p', false), d.topP)
    .option('--seed <s>', 'seed of the sampler: the same seed gives the same text', intFlag('seed'), 0)
    .option('--backend <name>', 'cpu, webgpu, gpujs[-<mode>] or auto', 'auto')
    .option('--json', 'print one JSON object {prompt_ids, generated_ids, text, stop} instead of streaming')
    .option('--max-memory <size>', 'memory budget, e.g. 8G (default TOKENFORMER_MAX_MEMORY or 75% of RAM)')
    .action(generateCmd);
}
