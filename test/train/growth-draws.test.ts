// The values growth draws for new parameter tokens (spec/growth.md, src/grow.ts): new value
// rows are N(0, σ²) with σ = 2/(L·√C) from the seeded Rng (keys first under --init random,
// then values, row-major), new keys are exactly 0 (zero) or N(0, 0.02²) (random). The draws
// are re-derived here from a fresh Rng, and order-free statistics check that new rows are
// fresh noise, not copies of old rows. Omits: the function-preservation (grow.test.ts).

import { describe, expect, it } from 'vitest';
import type { ModelConfig } from '../../src/config.ts';
import { growLayers, growModel, growPattention } from '../../src/grow.ts';
import { initParams } from '../../src/params.ts';
import { Rng } from '../../src/rng.ts';
import { tinyConfig } from '../helpers/tiny.ts';

// 2 layers, C = 32: σ = 2/(2·√32) ≈ 0.177, far from the keys' 0.02.
const c: ModelConfig = tinyConfig({ numLayers: 2, hiddenSize: 32, numHeads: 2, qkvSlots: 6, projSlots: 6, ffnSlots: 12, vocabSize: 23 });
const C = 32;
const SIGMA = 2 / (2 * Math.sqrt(32));
const w = initParams(c, new Rng(5));

/** The next `count` draws std·N(0, 1) of rng, rounded to float32 as the weights store them. */
function draws(rng: Rng, count: number, std: number): number[] {
  return Array.from({ length: count }, () => Math.fround(std * rng.normal()));
}

/** The layers of block i in forward order (spec/model.md), written out independently. */
function forwardOrder(L: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < L; i++) {
    const p = `sequential.${i + 2}`;
    out.push(`${p}.attention.query`, `${p}.attention.key`, `${p}.attention.value`, `${p}.attention.proj`, `${p}.mlp`);
  }
  return out;
}

const rows = (d: Float32Array, from: number, to: number) => Array.from({ length: to - from }, (_, r) => Array.from(d.subarray((from + r) * C, (from + r + 1) * C)));

describe('growPattention draws (documented order)', () => {
  const layer = { prefix: 'x', kind: 'ffn' as const, n: 3, dIn: C, dOut: C };
  const k = Float32Array.from({ length: 3 * C }, (_, i) => i / 7), v = Float32Array.from({ length: 3 * C }, (_, i) => -i / 5);

  it('zero: old rows kept, new keys exactly 0, new values the next draws of rng; nothing else drawn', () => {
    const rng = new Rng(42);
    const g = growPattention(layer, k, v, 8, 'zero', rng, 0.3);
    const ref = new Rng(42);
    expect(Array.from(g.key.subarray(0, 3 * C))).toEqual(Array.from(k));
    expect(Array.from(g.value.subarray(0, 3 * C))).toEqual(Array.from(v));
    expect(g.key.subarray(3 * C).every((x) => x === 0)).toBe(true);
    expect(Array.from(g.value.subarray(3 * C))).toEqual(draws(ref, 5 * C, 0.3));
    expect(rng.normal()).toBe(ref.normal()); // the stream continues right after the values
  });

  it('random: new keys N(0, 0.02²) first, then the values', () => {
    const rng = new Rng(43);
    const g = growPattention(layer, k, v, 7, 'random', rng, 0.3);
    const ref = new Rng(43);
    expect(Array.from(g.key.subarray(3 * C))).toEqual(draws(ref, 4 * C, 0.02));
    expect(Array.from(g.value.subarray(3 * C))).toEqual(draws(ref, 4 * C, 0.3));
    expect(Array.from(g.key.subarray(0, 3 * C))).toEqual(Array.from(k));
  });
});

describe('growModel / growLayers draws', () => {
  for (const init of ['zero', 'random'] as const) {
    it(`${init}: every grown layer's new rows are the seeded draws, layers in forward order, σ = 2/(L·√C)`, () => {
      const g = growModel(c, w, { qkv: 9, ffn: 20 }, init, new Rng(77));
      const ref = new Rng(77);
      const nOld = (p: string) => (p.endsWith('mlp') ? 12 : 6);
      const nNew = (p: string) => (p.endsWith('mlp') ? 20 : p.endsWith('proj') ? 6 : 9);
      for (const p of forwardOrder(2)) {
        const key = g.weights.get(`${p}.key_param_tokens`)!, val = g.weights.get(`${p}.value_param_tokens`)!;
        expect(val.length).toBe(nNew(p) * C);
        const added = (nNew(p) - nOld(p)) * C;
        const wantKeys = init === 'random' ? draws(ref, added, 0.02) : new Array<number>(added).fill(0);
        expect(Array.from(key.subarray(nOld(p) * C)), `${p} keys`).toEqual(wantKeys);
        expect(Array.from(val.subarray(nOld(p) * C)), `${p} values`).toEqual(draws(ref, added, SIGMA));
        expect(Array.from(val.subarray(0, nOld(p) * C))).toEqual(Array.from(w.get(`${p}.value_param_tokens`)!));
      }
    });
  }

  it('single layers draw in forward order whatever order they are named in', () => {
    const g = growLayers(c, w, { 'sequential.3.mlp': 14, 'sequential.2.attention.value': 8 }, 'zero', new Rng(3));
    const ref = new Rng(3);
    expect(Array.from(g.weights.get('sequential.2.attention.value.value_param_tokens')!.subarray(6 * C))).toEqual(draws(ref, 2 * C, SIGMA));
    expect(Array.from(g.weights.get('sequential.3.mlp.value_param_tokens')!.subarray(12 * C))).toEqual(draws(ref, 2 * C, SIGMA));
  });
});

describe('new value rows are fresh N(0, σ²) noise (order-free statistics)', () => {
  // 12 → 76 tokens: 64 new rows × 32 = 2048 new values per FFN layer.
  const g = growModel(c, w, { ffn: 76 }, 'zero', new Rng(2024));

  for (const p of ['sequential.2.mlp', 'sequential.3.mlp']) {
    it(`${p}: mean, std and 1σ mass match N(0, σ²); no new row equals or correlates with an old one`, () => {
      const val = g.weights.get(`${p}.value_param_tokens`)!;
      const fresh = Array.from(val.subarray(12 * C));
      const N = fresh.length;
      const mean = fresh.reduce((a, b) => a + b, 0) / N;
      const std = Math.sqrt(fresh.reduce((a, b) => a + (b - mean) ** 2, 0) / (N - 1));
      expect(Math.abs(mean)).toBeLessThan((5 * SIGMA) / Math.sqrt(N)); // 5 standard errors
      expect(Math.abs(std / SIGMA - 1)).toBeLessThan(0.08); // sd of the ratio ≈ 1/√(2N) = 1.6%
      const within = fresh.filter((x) => Math.abs(x) < SIGMA).length / N;
      expect(Math.abs(within - 0.6827)).toBeLessThan(0.05);
      const old = rows(val, 0, 12), added = rows(val, 12, 76);
      const key = (r: number[]) => r.join(',');
      const oldKeys = new Set(old.map(key));
      expect(added.filter((r) => oldKeys.has(key(r))).length).toBe(0);
      expect(new Set(added.map(key)).size).toBe(added.length);
      // Correlation of each new row with every old row over its C entries: |ρ| of independent
      // rows is ~1/√C; a copy (or a scaled copy) gives |ρ| = 1.
      const corr = (a: number[], b: number[]) => {
        const ma = a.reduce((s, x) => s + x, 0) / C, mb = b.reduce((s, x) => s + x, 0) / C;
        let ab = 0, aa = 0, bb = 0;
        for (let j = 0; j < C; j++) { ab += (a[j] - ma) * (b[j] - mb); aa += (a[j] - ma) ** 2; bb += (b[j] - mb) ** 2; }
        return ab / Math.sqrt(aa * bb);
      };
      let worst = 0;
      for (const a of added) for (const b of old) worst = Math.max(worst, Math.abs(corr(a, b)));
      expect(worst).toBeLessThan(0.9);
      expect(g.weights.get(`${p}.key_param_tokens`)!.subarray(12 * C).every((x) => x === 0)).toBe(true);
    });
  }

  it('random init: new keys have std 0.02, new values σ', () => {
    const r = growModel(c, w, { ffn: 76 }, 'random', new Rng(2025));
    const sd = (d: Float32Array) => Math.sqrt(d.reduce((a, b) => a + b * b, 0) / d.length);
    expect(Math.abs(sd(r.weights.get('sequential.2.mlp.key_param_tokens')!.subarray(12 * C)) / 0.02 - 1)).toBeLessThan(0.08);
    expect(Math.abs(sd(r.weights.get('sequential.2.mlp.value_param_tokens')!.subarray(12 * C)) / SIGMA - 1)).toBeLessThan(0.08);
  });
});
