// Whole-model properties on the CPU reference: the gradient is the derivative of the loss
// (directional finite differences), causality, batch independence, fused = composed.

import { describe, expect } from 'vitest';
import { fc, test } from '@fast-check/vitest';
import { createCpuBackend, type CpuHandle } from '../../backends/cpu.ts';
import type { Backend } from '../../src/backend.ts';
import type { ModelConfig } from '../../src/config.ts';
import { TokenFormer } from '../../src/model.ts';
import { initParams } from '../../src/params.ts';
import { Rng } from '../../src/rng.ts';
import { arbConfig, arbConfigWith, tinyConfig } from '../helpers/tiny.ts';

const be = createCpuBackend();

/** Official init with keys scaled up so Θ is far from linear. NOTE: softmax gets a gentler
 *  scale: n·softmax of std-0.5 keys is so peaked that the loss is too curved for any
 *  float32 finite-difference step. */
function weights(c: ModelConfig, seed: number): Map<string, Float32Array> {
  const w = initParams(c, new Rng(seed));
  const keyScale = c.variant === 'softmax' ? 5 : 25;
  for (const [name, data] of w) {
    if (name.endsWith('key_param_tokens')) for (let i = 0; i < data.length; i++) data[i] *= keyScale;
    if (name.endsWith('value_param_tokens')) for (let i = 0; i < data.length; i++) data[i] *= 5;
  }
  return w;
}

function ids(rng: Rng, B: number, T: number, V: number): Int32Array {
  return Int32Array.from({ length: B * T }, () => rng.int(V));
}

async function lossOf(back: Backend<CpuHandle>, c: ModelConfig, w: Map<string, Float32Array>, x: Int32Array, y: Int32Array, B: number, T: number) {
  const m = TokenFormer.fromHost(back, c, w);
  const f = m.forward(back.uploadInt(x, [B, T]), back.uploadInt(y, [B, T]));
  return (await back.read(f.loss!))[0];
}

describe('model gradient', () => {
  // NOTE: ≥ 12 tokens per layer: with few, a row of gelu_l2_norm scores can be all negative,
  // so ‖gelu(S)‖ ≈ 0 and the loss is too curved for any finite-difference step.
  test.prop([arbConfigWith(12), fc.integer({ min: 0, max: 1e6 })], { numRuns: 12 })(
    'equals the directional finite difference of the loss',
    async (c, seed) => {
      const rng = new Rng(seed);
      const B = 2;
      const T = 5;
      const w = weights(c, seed);
      const x = ids(rng, B, T, c.vocabSize);
      const y = ids(rng, B, T, c.vocabSize);
      const m = TokenFormer.fromHost(be, c, w);
      const f = m.forward(be.uploadInt(x, [B, T]), be.uploadInt(y, [B, T]));
      const grads = m.backward(f);
      // direction u ~ N(0, rms(w)²) per tensor, so each step is relative to the weights' own
      // scale (LN₀ of 0.02-scale embeddings is strongly curved); ⟨g, u⟩ vs (L(w+hu) − L(w−hu)) / 2h
      let dot = 0;
      const dirs = new Map<string, Float64Array>();
      for (const [name, data] of w) {
        const g = await be.read(grads.get(name)!);
        const scale = Math.max(Math.sqrt(data.reduce((a, v) => a + v * v, 0) / data.length), 0.02);
        const u = Float64Array.from(data, () => scale * rng.normal());
        u.forEach((ui, i) => (dot += g[i] * ui));
        dirs.set(name, u);
      }
      const at = (h: number) => lossOf(be, c, new Map([...w].map(([n, d]) => [n, Float32Array.from(d, (v, i) => v + h * dirs.get(n)![i])])), x, y, B, T);
      const central = async (h: number) => ((await at(h)) - (await at(-h))) / (2 * h);
      // Richardson extrapolation cancels the h² term of the central difference. A strongly
      // curved random model may need a smaller step (down to float32's noise floor): a wrong
      // gradient matches at no step, a right one at the step where the difference converged.
      const tol = 2e-2 * Math.abs(dot) + 2e-3;
      let err = Infinity;
      for (const h of [1e-3, 2.5e-4, 1e-4]) {
        const fd = (4 * (await central(h)) - (await central(2 * h))) / 3;
        err = Math.min(err, Math.abs(fd - dot));
        if (err <= tol) break;
      }
      expect(err).toBeLessThanOrEqual(tol);
    },
  );
});

describe('model invariances', () => {
  test.prop([arbConfig, fc.integer({ min: 0, max: 1e6 }), fc.integer({ min: 0, max: 5 })], { numRuns: 15 })(
    'causality: changing tokens after t leaves logits at ≤ t unchanged',
    async (c, seed, t) => {
      const rng = new Rng(seed);
      const T = 6;
      const w = weights(c, seed);
      const a = ids(rng, 1, T, c.vocabSize);
      const b = a.slice();
      for (let j = t + 1; j < T; j++) b[j] = rng.int(c.vocabSize);
      const m = TokenFormer.fromHost(be, c, w);
      const la = await be.read(m.forward(be.uploadInt(a, [1, T]), null).logits);
      const lb = await be.read(m.forward(be.uploadInt(b, [1, T]), null).logits);
      const upTo = (t + 1) * c.vocabSize;
      expect(Array.from(lb.subarray(0, upTo))).toEqual(Array.from(la.subarray(0, upTo)));
    },
  );

  test.prop([arbConfig, fc.integer({ min: 0, max: 1e6 })], { numRuns: 15 })(
    'batch rows are independent',
    async (c, seed) => {
      const rng = new Rng(seed);
      const T = 4;
      const w = weights(c, seed);
      const x = ids(rng, 3, T, c.vocabSize);
      const m = TokenFormer.fromHost(be, c, w);
      const all = await be.read(m.forward(be.uploadInt(x, [3, T]), null).logits);
      const row = await be.read(m.forward(be.uploadInt(x.slice(T, 2 * T), [1, T]), null).logits);
      const n = T * c.vocabSize;
      expect(Array.from(all.subarray(n, 2 * n))).toEqual(Array.from(row));
    },
  );

  for (const variant of ['l2_norm_gelu', 'gelu_l2_norm', 'softmax'] as const) {
    test(`the composed fallback equals the fused CPU kernels (${variant}): logits, loss and every gradient`, async () => {
      const c = tinyConfig({ variant, tied: variant !== 'softmax' });
      const unfused: Backend<CpuHandle> = { ...be, fused: {} };
      const rng = new Rng(7);
      const x = ids(rng, 2, 5, c.vocabSize);
      const y = ids(rng, 2, 5, c.vocabSize);
      const w = weights(c, 3);
      const run = async (back: Backend<CpuHandle>) => {
        const m = TokenFormer.fromHost(back, c, w);
        const f = m.forward(back.uploadInt(x, [2, 5]), back.uploadInt(y, [2, 5]));
        const logits = await back.read(f.logits);
        const loss = (await back.read(f.loss!))[0];
        const g = new Map<string, Float32Array>();
        for (const [name, t] of m.backward(f)) g.set(name, await back.read(t));
        return { logits, loss, g };
      };
      const a = await run(be);
      const b = await run(unfused);
      const close = (p: Float32Array, q: Float32Array, what: string) => {
        const scale = Math.max(...p.map(Math.abs));
        expect(scale, `${what} is not all zero`).toBeGreaterThan(0);
        p.forEach((v, i) => expect(Math.abs(v - q[i]), `${what}[${i}]`).toBeLessThanOrEqual(1e-5 * Math.abs(v) + 1e-6 * scale));
      };
      close(a.logits, b.logits, 'logits');
      expect(Math.abs(a.loss - b.loss)).toBeLessThan(1e-6 * Math.abs(a.loss));
      expect([...b.g.keys()].sort()).toEqual([...a.g.keys()].sort());
      expect(a.g.size).toBe(1 + 2 * 5 * c.numLayers + 2 + (c.tied ? 0 : 1));
      for (const [name, ga] of a.g) close(ga, b.g.get(name)!, `grad ${name}`);
    });
  }
});
