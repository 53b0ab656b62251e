// Sampling (src/sample.ts), the generation loop (src/generate.ts) and the CLI's streaming, in
// process on the CPU reference: greedy = argmax over the allowed ids only, top-k and top-p keep
// exactly the sets computed here by sorting, plain sampling follows softmax(l/t) in frequency,
// the same seed gives the same ids, greedy generation equals the argmax of full recomputes,
// the stops (EOS, max-new-tokens, max_position_embeddings), and `tokenformer generate` streaming
// one write per token whose concatenation is the --json text. The CLI as a child process (bad
// input, exit codes, the real tokenizer end to end) is in cli-generate.test.ts.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import { createCpuBackend } from '../backends/cpu.ts';
import { main } from '../cli/main.ts';
import { TextStream } from '../cli/generate.ts';
import { UserError } from '../src/errors.ts';
import { generate, type GenerateOptions } from '../src/generate.ts';
import { TokenFormer } from '../src/model.ts';
import { Rng } from '../src/rng.ts';
import { argmax, checkSampling, sample } from '../src/sample.ts';
import { readTokenizer } from '../src/tokenizer.ts';
import { randomWeights } from './helpers/decode-check.ts';
import { greedyByRecompute, neoxTinyConfig, writeModel } from './helpers/gen-model.ts';
import { tinyConfig } from './helpers/tiny.ts';

const TOKENIZER = join(import.meta.dirname, 'fixtures/tokenizer/gpt-neox-20b-tokenizer.json');
const be = createCpuBackend();
const arbLogits = fc.array(fc.double({ min: -8, max: 8, noNaN: true }), { minLength: 2, maxLength: 40 });

/** Ids < allowed sorted by logit (desc), ties by id: the test's own ranking. */
function byLogit(l: number[], allowed: number): number[] {
  return Array.from({ length: allowed }, (_, i) => i).sort((a, b) => l[b] - l[a] || a - b);
}

function softmax(l: number[], t: number): number[] {
  const m = Math.max(...l);
  const e = l.map((x) => Math.exp((x - m) / t));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / z);
}

describe('sample', () => {
  it('temperature 0 is the argmax over the allowed ids, never a larger masked logit', () => {
    fc.assert(fc.property(arbLogits, fc.nat(), (l, cut) => {
      const allowed = 1 + (cut % l.length);
      const padded = Float32Array.from([...l, 1e6, 1e6]); // padded-vocabulary rows with huge logits
      const want = byLogit(Array.from(padded), allowed)[0];
      expect(sample(padded, allowed, { temperature: 0, topK: 0, topP: 1 }, new Rng(1))).toBe(want);
      expect(argmax([3, 7, 7, 1], 4)).toBe(1); // ties: the lower id
    }));
  });

  it('never draws an id ≥ allowed, and only from the top k, then only from the nucleus', () => {
    fc.assert(fc.property(arbLogits, fc.nat(), fc.integer({ min: 0, max: 6 }), fc.double({ min: 0.05, max: 1, noNaN: true }), fc.nat(),
      (l, cut, topK, topP, seed) => {
        const allowed = 1 + (cut % l.length);
        const logits = Float64Array.from([...l, 50, 50]);
        const order = byLogit(l, allowed).slice(0, topK > 0 ? topK : allowed);
        const p = softmax(order.map((i) => l[i]), 0.7);
        let cum = 0, n = 0;
        while (n < order.length && cum < topP) cum += p[n++];
        const nucleus = new Set(order.slice(0, Math.max(1, n)));
        const rng = new Rng(seed);
        for (let d = 0; d < 30; d++) {
          const id = sample(logits, allowed, { temperature: 0.7, topK, topP }, rng);
          expect(nucleus.has(id), `id ${id} outside the nucleus ${[...nucleus]}`).toBe(true);
        }
      }), { numRuns: 150 });
  });

  it('plain sampling (no top-k/top-p) draws each id with frequency ≈ softmax(l / t)', () => {
    const l = [2, 1, 0.5, 0, -1, -3];
    for (const t of [1, 2.5]) {
      const want = softmax(l, t);
      const counts = new Array(l.length).fill(0);
      const rng = new Rng(42);
      const draws = 40_000;
      for (let d = 0; d < draws; d++) counts[sample(l, l.length, { temperature: t, topK: 0, topP: 1 }, rng)]++;
      for (let i = 0; i < l.length; i++) {
        const sd = Math.sqrt((want[i] * (1 - want[i])) / draws);
        expect(Math.abs(counts[i] / draws - want[i]), `t ${t} id ${i}`).toBeLessThan(5 * sd + 1e-4);
      }
    }
  });

  it('top-k then top-p: draws cover the whole nucleus, in proportion to its renormalized probabilities', () => {
    const l = [1, 3, 2.5, -1, 2, 0, 3.5, -2];
    const o = { temperature: 0.8, topK: 5, topP: 0.85 };
    const order = byLogit(l, l.length).slice(0, o.topK); // 6, 1, 2, 4, 0
    const p = softmax(order.map((i) => l[i]), o.temperature);
    let cum = 0, n = 0;
    while (cum < o.topP) cum += p[n++];
    const want = new Map(order.slice(0, n).map((id, j) => [id, p[j] / cum]));
    const counts = new Map<number, number>();
    const rng = new Rng(3);
    const draws = 30_000;
    for (let d = 0; d < draws; d++) {
      const id = sample(l, l.length, o, rng);
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual([...want.keys()].sort());
    for (const [id, q] of want) {
      expect(Math.abs(counts.get(id)! / draws - q), `id ${id}`).toBeLessThan(5 * Math.sqrt((q * (1 - q)) / draws));
    }
  });

  it('the same seed gives the same draws; another seed, other draws', () => {
    const l = Float32Array.from({ length: 300 }, (_, i) => Math.sin(i));
    const o = { temperature: 1, topK: 100, topP: 0.95 };
    const draw = (seed: number) => { const r = new Rng(seed); return Array.from({ length: 50 }, () => sample(l, 290, o, r)); };
    expect(draw(7)).toEqual(draw(7));
    expect(draw(7)).not.toEqual(draw(8));
  });

  it('refuses temperature < 0 or NaN, top-p outside (0, 1], top-k < 0 or fractional', () => {
    const ok = { temperature: 1, topK: 0, topP: 1 };
    for (const bad of [{ temperature: -0.1 }, { temperature: NaN }, { temperature: Infinity }, { topP: 0 }, { topP: 1.5 },
      { topP: NaN }, { topK: -1 }, { topK: 2.5 }]) {
      expect(() => checkSampling({ ...ok, ...bad }), JSON.stringify(bad)).toThrow(UserError);
    }
    expect(() => checkSampling(ok)).not.toThrow();
  });
});

describe('generate (KV-cached loop) on the CPU reference', () => {
  const c = tinyConfig({ vocabSize: 29, maxPositions: 12 });
  const w = randomWeights(c, 5);
  const base: GenerateOptions = { temperature: 0, topK: 0, topP: 1, maxNewTokens: 6, seed: 0, allowed: 25, eosId: null };

  it('greedy ids equal the argmax of a full recompute at every step (ids < allowed only)', async () => {
    const model = TokenFormer.fromHost(be, c, w);
    for (const prompt of [[3], [1, 4, 1, 5], [9, 2, 6, 5, 3]]) {
      const got = await generate(model, prompt, base);
      expect(got.ids).toEqual(await greedyByRecompute(be, c, w, prompt, 6, 25));
      expect(got.stop).toBe('max_new_tokens');
    }
  });

  it('stops at EOS (kept as the last id), and when the sequence fills max_position_embeddings', async () => {
    const model = TokenFormer.fromHost(be, c, w);
    const free = await generate(model, [1, 2], base);
    const eos = free.ids[3];
    const k = free.ids.indexOf(eos);
    expect(await generate(model, [1, 2], { ...base, eosId: eos })).toEqual({ ids: free.ids.slice(0, k + 1), stop: 'eos' });
    const ten = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    const full = await generate(model, ten, { ...base, maxNewTokens: 10 });
    expect(full).toEqual({ ids: await greedyByRecompute(be, c, w, ten, 2, 25), stop: 'max_position_embeddings' });
    expect(await generate(model, new Array(12).fill(1), base)).toEqual({ ids: [], stop: 'max_position_embeddings' });
  });

  it('the same seed gives the same sampled ids', async () => {
    const model = TokenFormer.fromHost(be, c, w);
    const o = { ...base, temperature: 1.3, topK: 10, topP: 0.9, seed: 11 };
    expect(await generate(model, [4, 4], o)).toEqual(await generate(model, [4, 4], o));
  });

  it('refuses an empty prompt, a prompt over max_position_embeddings, and a tokenizer bigger than the vocab', async () => {
    const model = TokenFormer.fromHost(be, c, w);
    await expect(generate(model, [], base)).rejects.toThrow(/no tokens/);
    await expect(generate(model, new Array(13).fill(1), base)).rejects.toThrow(/13 tokens, over max_position_embeddings 12/);
    await expect(generate(model, [1], { ...base, allowed: 30 })).rejects.toThrow(/30 ids/);
  });
});

describe('streaming text', () => {
  it('TextStream holds back a character until its last byte’s token arrives', () => {
    const tk = readTokenizer(TOKENIZER);
    const ids = tk.encode('a🤖b 日本');
    const s = new TextStream(tk);
    const pieces = ids.map((_, i) => s.push(ids.slice(0, i + 1)));
    expect(pieces.join('') + s.finish(ids)).toBe('a🤖b 日本');
    expect(pieces.some((p) => p === '')).toBe(true); // the emoji's first bytes printed nothing
    expect(pieces.every((p) => !p.includes('\uFFFD'))).toBe(true);
  });

  describe('tokenformer generate in process', () => {
    const writes: string[] = [];
    afterEach(() => { vi.restoreAllMocks(); writes.length = 0; });
    const run = async (args: string[]) => {
      vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => { writes.push(String(s)); return true; });
      vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
      const code = await main(['node', 'tokenformer', 'generate', ...args]);
      vi.restoreAllMocks();
      return { code, out: writes.splice(0) };
    };

    it('writes once per token (then a newline), and the writes join to the --json text', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'gen-'));
      const m = writeModel(dir, neoxTinyConfig(), 3);
      const args = ['--config', m.config, '--weights', m.weights, '--tokenizer', TOKENIZER, '--prompt', 'Once upon a time',
        '--max-new-tokens', '12', '--seed', '5', '--backend', 'cpu'];
      const streamed = await run(args);
      const json = await run([...args, '--json']);
      expect(streamed.code).toBe(0);
      expect(json.code).toBe(0);
      const doc = JSON.parse(json.out.join(''));
      expect(doc.generated_ids.length).toBe(12);
      expect(streamed.out.length).toBe(13); // one write per token, then "\n"
      expect(streamed.out.join('')).toBe(`${doc.text}\n`);
    });
  });
});
