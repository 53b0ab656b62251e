// `tokenformer generate` as a user runs it (a child process), end to end with the real
// GPT-NeoX-20B tokenizer on a one-layer, hidden-16 model with the official padded vocabulary
// (50304 rows): greedy output equals the argmax of full recomputes done here, never an id past
// the tokenizer's 50277; the same seed prints the same text twice; the streamed text equals the
// --json text; and every bad input exits 2 with one `error:` line.

import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { createCpuBackend } from '../backends/cpu.ts';
import { readConfigFile } from '../src/config-parse.ts';
import { readSafetensors } from '../src/safetensors.ts';
import { readTokenizer } from '../src/tokenizer.ts';
import { serializeTorchBin } from '../src/torch-bin/write.ts';
import { expectUserError, runCli } from './helpers/cli.ts';
import { greedyByRecompute, neoxTinyConfig, writeModel } from './helpers/gen-model.ts';

const TOKENIZER = join(import.meta.dirname, 'fixtures/tokenizer/gpt-neox-20b-tokenizer.json');
const dir = mkdtempSync(join(tmpdir(), 'cli-gen-'));
let m: { config: string; weights: string };
beforeAll(() => { m = writeModel(dir, neoxTinyConfig(), 9); });

const gen = (...extra: string[]) => runCli(['generate', '--config', m.config, '--weights', m.weights, '--tokenizer', TOKENIZER,
  '--backend', 'cpu', ...extra]);

describe('tokenformer generate', () => {
  it('greedy (--temperature 0) equals the argmax of a full recompute per step; text = decode(ids)', async () => {
    const r = gen('--prompt', 'The café served 日本語 menus', '--temperature', '0', '--max-new-tokens', '8', '--json');
    expect(r.code, r.err).toBe(0);
    const doc = JSON.parse(r.out);
    const tk = readTokenizer(TOKENIZER);
    expect(doc.prompt_ids).toEqual(tk.encode('The café served 日本語 menus'));
    const c = readConfigFile(m.config);
    const w = new Map([...readSafetensors(m.weights)].map(([k, t]) => [k, t.data as Float32Array]));
    const greedy = await greedyByRecompute(createCpuBackend(), c, w, doc.prompt_ids, 8, tk.size);
    const eosAt = greedy.indexOf(tk.eosId!); // generation stops after an EOS
    const want = eosAt >= 0 ? greedy.slice(0, eosAt + 1) : greedy;
    expect(doc.generated_ids).toEqual(want);
    expect(doc.stop).toBe(eosAt >= 0 ? 'eos' : 'max_new_tokens');
    expect(doc.text).toBe(tk.decode(eosAt >= 0 ? want.slice(0, -1) : want));
    expect(r.err).toMatch(new RegExp(`^tokenformer generate: ${doc.generated_ids.length} new tokens after ${doc.prompt_ids.length} prompt tokens in .* on cpu; stop: ${doc.stop}\n$`));
  });

  it('the same seed prints the same text twice, another seed other text; streamed text = --json text', () => {
    const args = ['--prompt', 'Hello world', '--max-new-tokens', '16', '--top-k', '0', '--top-p', '0.98'];
    const a = gen(...args, '--seed', '1'), b = gen(...args, '--seed', '1'), other = gen(...args, '--seed', '2');
    const json = gen(...args, '--seed', '1', '--json');
    for (const r of [a, b, other, json]) expect(r.code, r.err).toBe(0);
    expect(a.out).toBe(b.out);
    expect(a.out).not.toBe(other.out);
    const doc = JSON.parse(json.out);
    expect(doc.generated_ids.every((id: number) => id >= 0 && id < 50277)).toBe(true);
    expect(a.out).toBe(`${doc.text}\n`);
  }, 300_000);
});

describe('tokenformer generate --weights pytorch_model.bin', () => {
  it('a torch.save state dict gives the same greedy output as the same weights in safetensors', () => {
    const bin = join(dir, 'pytorch_model.bin');
    const t = readSafetensors(m.weights);
    writeFileSync(bin, serializeTorchBin(new Map([...t].map(([k, v]) => [k, { dtype: 'F32', shape: v.shape, data: v.data }]))));
    const args = ['--prompt', 'Once', '--temperature', '0', '--max-new-tokens', '5', '--json', '--backend', 'cpu', '--tokenizer', TOKENIZER, '--config', m.config];
    const a = runCli(['generate', ...args, '--weights', m.weights]);
    const b = runCli(['generate', ...args, '--weights', bin]);
    expect(a.code, a.err).toBe(0);
    expect(b.code, b.err).toBe(0);
    expect(JSON.parse(b.out)).toEqual(JSON.parse(a.out));
  });
});

describe('tokenformer generate: bad input exits 2 with one error line', () => {
  const badTokenizer = join(dir, 'wordlevel.json');
  const shortConfig = join(dir, 'short.yml');
  const smallVocab = join(dir, 'small');
  beforeAll(() => {
    writeFileSync(badTokenizer, JSON.stringify({ model: { type: 'WordLevel', vocab: { a: 0 } } }));
    writeFileSync(shortConfig, readFileSync(m.config, 'utf8').replace(/max_position_embeddings: \d+/, 'max_position_embeddings: 4'));
  });

  it.each([
    ['an empty prompt', ['--prompt', ''], /--prompt is empty/],
    ['a negative temperature', ['--prompt', 'hi', '--temperature', '-1'], /--temperature must be a finite number ≥ 0/],
    ['a NaN temperature', ['--prompt', 'hi', '--temperature', 'nan'], /--temperature expects a number/],
    ['top-p 0', ['--prompt', 'hi', '--top-p', '0'], /--top-p must be in \(0, 1\]/],
    ['top-p above 1', ['--prompt', 'hi', '--top-p', '1.5'], /--top-p must be in \(0, 1\]/],
    ['a negative top-k', ['--prompt', 'hi', '--top-k', '-3'], /--top-k must be an integer ≥ 0/],
    ['a fractional max-new-tokens', ['--prompt', 'hi', '--max-new-tokens', '2.5'], /--max-new-tokens expects an integer/],
    ['an unknown backend', ['--prompt', 'hi', '--backend', 'tpu'], /unknown backend "tpu"/],
  ])('%s', (_n, args, re) => {
    expectUserError(gen(...args), re);
  });

  it('a weights file that is neither safetensors nor torch.save', () => {
    const junk = join(dir, 'junk.bin');
    writeFileSync(junk, 'not a checkpoint at all');
    const r = runCli(['generate', '--config', m.config, '--weights', junk, '--tokenizer', TOKENIZER, '--prompt', 'hi', '--backend', 'cpu']);
    expectUserError(r, /junk\.bin/);
  });

  it('an unknown tokenizer format', () => {
    const r = runCli(['generate', '--config', m.config, '--weights', m.weights, '--tokenizer', badTokenizer, '--prompt', 'hi', '--backend', 'cpu']);
    expectUserError(r, /is not a usable tokenizer\.json: unknown model type "WordLevel"/);
  });

  it('a prompt longer than max_position_embeddings', () => {
    const r = runCli(['generate', '--config', shortConfig, '--weights', m.weights, '--tokenizer', TOKENIZER,
      '--prompt', 'one two three four five six', '--backend', 'cpu']);
    expectUserError(r, /the prompt is 6 tokens, over max_position_embeddings 4/);
  });

  it('a model whose vocabulary is smaller than the tokenizer', () => {
    const s = writeModel(mkdtempSync(`${smallVocab}-`), neoxTinyConfig({ vocabSize: 1000 }), 1);
    const r = runCli(['generate', '--config', s.config, '--weights', s.weights, '--tokenizer', TOKENIZER, '--prompt', 'hi', '--backend', 'cpu']);
    expectUserError(r, /the tokenizer has 50277 ids, but the model's vocabulary has only 1000 rows/);
  });
});

