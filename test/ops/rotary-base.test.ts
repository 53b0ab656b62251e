// Rotary embedding with bases other than the default 10000 (rotary_emb_base): the kernel
// against an independent NeoX half-rotation computed here, forward and inverse, and the
// model's logits and gradient with base 500 and 1e6 against the naive forward and finite
// differences. Omits: the relative-position property (properties.test.ts covers it).

import { describe, expect, it } from 'vitest';
import { fc, test } from '@fast-check/vitest';
import { createCpuBackend } from '../../backends/cpu.ts';
import type { ModelConfig } from '../../src/config.ts';
import { rotaryForward } from '../../src/ops/rotary.ts';
import { TokenFormer } from '../../src/model.ts';
import { initParams } from '../../src/params.ts';
import { Rng } from '../../src/rng.ts';
import { naiveForward } from '../helpers/naive-model.ts';
import { tinyConfig } from '../helpers/tiny.ts';
import { randInts, randn } from './fd.ts';

const be = createCpuBackend();

/** x (B, T, H, D) rotated by sign·θ(t, j) = sign·t·base^(−2j/rd): pairs (j, j + rd/2). */
function expectedRotary(x: Float32Array, B: number, T: number, H: number, D: number, rd: number, base: number, sign: number): Float64Array {
  const y = Float64Array.from(x), half = rd / 2;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      for (let h = 0; h < H; h++) {
        const o = ((b * T + t) * H + h) * D;
        for (let j = 0; j < half; j++) {
          const th = sign * t * Math.pow(base, (-2 * j) / rd);
          y[o + j] = x[o + j] * Math.cos(th) - x[o + j + half] * Math.sin(th);
          y[o + j + half] = x[o + j + half] * Math.cos(th) + x[o + j] * Math.sin(th);
        }
      }
    }
  }
  return y;
}

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(got[i] - want[i]) <= tol * (1 + Math.abs(want[i])))) expect.fail(`${what}[${i}]: ${got[i]} vs ${want[i]}`);
  }
}

describe('rotary with another base', () => {
  test.prop([fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.constantFrom(500, 1e6, 37.5), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 })], { numRuns: 20 })(
    'forward and inverse equal cos/sin of t·base^(−2j/rd) on the half layout',
    (s, base, halfR, extra) => {
      const rng = new Rng(s);
      const [B, T, H] = [1 + rng.int(2), 2 + rng.int(30), 1 + rng.int(2)];
      const rd = 2 * halfR, D = rd + extra - 1; // rd ≤ D; dims rd…D−1 pass through
      const x = randn(rng, B * T * H * D);
      const p = { rotaryDim: rd, base };
      for (const inverse of [false, true]) {
        const want = expectedRotary(x, B, T, H, D, rd, base, inverse ? -1 : 1);
        const y = new Float32Array(x.length);
        rotaryForward(y, x, { B, T, H, D, offset: 0 }, p, inverse);
        expectClose(y, want, 1e-6, `rotaryForward inverse=${inverse}`);
        expectClose(be.ops.rotary(be.upload(x, [B, T, H, D]), p, inverse).store.data, want, 1e-6, `backend inverse=${inverse}`);
      }
    },
  );

  it('distinguishes bases: 500 and 1e6 rotate position 3 by different angles than 10000', () => {
    const x = Float32Array.from({ length: 4 * 8 }, (_, i) => ((i * 7) % 5) - 2); // (1, 4, 1, 8)
    const outs = [500, 1e4, 1e6].map((base) => {
      const y = new Float32Array(x.length);
      rotaryForward(y, x, { B: 1, T: 4, H: 1, D: 8, offset: 0 }, { rotaryDim: 8, base }, false);
      expectClose(y, expectedRotary(x, 1, 4, 1, 8, 8, base, 1), 1e-6, `base ${base}`);
      return Array.from(y.subarray(24));
    });
    expect(outs[0]).not.toEqual(outs[1]);
    expect(outs[2]).not.toEqual(outs[1]);
  });
});

describe('rotary_emb_base in the model', () => {
  const B = 2, T = 6;
  const base = (rotaryBase: number): ModelConfig => tinyConfig({ numLayers: 1, rotaryPct: 1, rotaryBase, vocabSize: 19 });
  const w = initParams(base(1e4), new Rng(21));
  for (const [name, d] of w) if (name.endsWith('key_param_tokens') || name.includes('word_emb')) d.forEach((v, i) => (d[i] = 25 * v));
  const rng = new Rng(2);
  const ids = randInts(rng, B * T, 19), tgt = randInts(rng, B * T, 19);

  async function forward(c: ModelConfig, weights = w) {
    const m = TokenFormer.fromHost(be, c, weights);
    const f = m.forward(be.uploadInt(ids, [B, T]), be.uploadInt(tgt, [B, T]));
    return { m, f, logits: await be.read(f.logits), loss: (await be.read(f.loss!))[0] };
  }

  it('logits follow the config base (500, 1e6) and differ from base 10000', async () => {
    const ref = (await forward(base(1e4))).logits;
    for (const b of [500, 1e6]) {
      const got = (await forward(base(b))).logits;
      const want = naiveForward(base(b), w, ids, tgt, B, T).logits;
      const scale = Math.max(...want.map(Math.abs));
      got.forEach((g, i) => expect(Math.abs(g - want[i])).toBeLessThanOrEqual(1e-4 * scale));
      let moved = 0;
      got.forEach((g, i) => (moved = Math.max(moved, Math.abs(g - ref[i]))));
      expect(moved).toBeGreaterThan(1e-2 * scale);
    }
  });

  it('the gradient with base 500 equals the directional finite difference of the loss', async () => {
    const c = base(500);
    const { m, f } = await forward(c);
    const grads = m.backward(f);
    const dir = new Rng(5);
    const u = new Map([...w].map(([n, d]) => [n, Float64Array.from(d, () => dir.normal() * 0.01)]));
    let dot = 0;
    for (const [n, g] of grads) (await be.read(g)).forEach((gi, i) => (dot += gi * u.get(n)![i]));
    const at = async (h: number) => (await forward(c, new Map([...w].map(([n, d]) => [n, Float32Array.from(d, (v, i) => v + h * u.get(n)![i])])))).loss;
    const central = async (h: number) => ((await at(h)) - (await at(-h))) / (2 * h);
    const fd = (4 * (await central(0.5)) - (await central(1))) / 3; // Richardson: O(h⁴)
    expect(Math.abs(fd - dot)).toBeLessThanOrEqual(1e-3 * Math.abs(dot) + 1e-6);
    expect(Math.abs(dot)).toBeGreaterThan(1e-3);
  });
});
