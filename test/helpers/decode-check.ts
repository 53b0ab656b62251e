// The KV-cache property, shared by the per-backend decode tests: decoding a sequence in steps
// (the prompt as one batch, then chunks or single tokens) gives at every step the logits that a
// full recompute of the sequence so far gives for the same positions. Also the rotary offset
// on its own: rotating rows at positions off… equals rows off… of a rotation from 0.

import fc from 'fast-check';
import type { Backend, Handle } from '../../src/backend.ts';
import type { ModelConfig } from '../../src/config.ts';
import { decodeStep, emptyCache, releaseCache } from '../../src/decode.ts';
import { TokenFormer } from '../../src/model.ts';
import { paramSpecs } from '../../src/params.ts';
import { Rng } from '../../src/rng.ts';
import { checkValues, type ValueTol } from './compare.ts';
import { arbConfig } from './tiny.ts';

/** Random weights large enough that attention is peaked (std 0.5), LayerNorm weight 1, bias 0. */
export function randomWeights(c: ModelConfig, seed: number): Map<string, Float32Array> {
  const rng = new Rng(seed);
  const out = new Map<string, Float32Array>();
  for (const s of paramSpecs(c)) {
    const data = new Float32Array(s.shape.reduce((a, b) => a * b, 1));
    if (s.role === 'norm_weight') data.fill(1);
    else if (s.role !== 'norm_bias') rng.fillNormal(data, 0.5);
    out.set(s.name, data);
  }
  return out;
}

export interface DecodeCase {
  config: ModelConfig;
  seed: number;
  batch: number;
  /** Token ids (batch, total), row-major. */
  ids: number[];
  /** Positions per step: the prompt first, then the rest; they sum to total. */
  steps: number[];
}

/** Random tiny configs (every Θ variant, tied and untied, rotary ¼, ½, 1), prompts 1…8 tokens,
 *  then `maxChunk`-token steps at most (1 = one token at a time). */
export function arbDecodeCase(maxChunk: number, maxBatch = 1): fc.Arbitrary<DecodeCase> {
  return fc.record({
    config: arbConfig,
    seed: fc.nat(),
    batch: fc.integer({ min: 1, max: maxBatch }),
    prompt: fc.integer({ min: 1, max: 8 }),
    rest: fc.array(fc.integer({ min: 1, max: maxChunk }), { minLength: 1, maxLength: 4 }),
  }).chain((r) => {
    const total = r.prompt + r.rest.reduce((a, b) => a + b, 0);
    return fc.array(fc.nat({ max: r.config.vocabSize - 1 }), { minLength: r.batch * total, maxLength: r.batch * total })
      .map((ids) => ({ config: r.config, seed: r.seed, batch: r.batch, ids, steps: [r.prompt, ...r.rest] }));
  });
}

/** ids[:, a:b] of a (batch, total) row-major list, as an i32 (batch, b − a) tensor. */
function columns<T extends Handle>(be: Backend<T>, k: DecodeCase, a: number, b: number): T {
  const total = k.ids.length / k.batch;
  const out = new Int32Array(k.batch * (b - a));
  for (let r = 0; r < k.batch; r++) for (let t = a; t < b; t++) out[r * (b - a) + t - a] = k.ids[r * total + t];
  return be.uploadInt(out, [k.batch, b - a]);
}

/** Rows a…b−1 of every batch of logits (batch, T, V). */
function rowsOf(l: Float32Array, batch: number, T: number, V: number, a: number, b: number): Float32Array {
  const out = new Float32Array(batch * (b - a) * V);
  for (let r = 0; r < batch; r++) out.set(l.subarray((r * T + a) * V, (r * T + b) * V), r * (b - a) * V);
  return out;
}

/**
 * Runs the case; returns one message per step whose cached logits differ from the full
 * recompute: bit for bit (=== per element) when tol is null, else within tol.
 */
export async function decodeMismatches<T extends Handle>(be: Backend<T>, k: DecodeCase, tol: ValueTol | null): Promise<string[]> {
  const model = TokenFormer.fromHost(be, k.config, randomWeights(k.config, k.seed));
  const V = k.config.vocabSize;
  const errors: string[] = [];
  let cache = emptyCache<T>(k.batch);
  let done = 0;
  try {
    for (const [s, n] of k.steps.entries()) {
      const ids = columns(be, k, done, done + n);
      const step = decodeStep(model, ids, cache);
      cache = step.cache;
      const got = await be.read(step.logits);
      for (const t of [ids, step.logits]) be.dispose(t);
      const all = columns(be, k, 0, done + n);
      const full = model.forward(all, null);
      const want = rowsOf(await be.read(full.logits), k.batch, done + n, V, done, done + n);
      be.dispose(full.logits);
      model.release(full);
      be.dispose(all);
      const e = tol ? checkValues(`step ${s}`, got, want, tol) : firstDifference(`step ${s}`, got, want);
      if (e) errors.push(`${e} (positions ${done}…${done + n - 1})`);
      done += n;
    }
  } finally {
    releaseCache(be, cache);
    model.dispose();
  }
  return errors;
}

function firstDifference(what: string, got: Float32Array, want: Float32Array): string | null {
  if (got.length !== want.length) return `${what}: ${got.length} logits, want ${want.length}`;
  for (let i = 0; i < got.length; i++) {
    if (!(got[i] === want[i])) return `${what}: logit [${i}] is ${got[i]}, the full recompute gives ${want[i]}`;
  }
  return null;
}
