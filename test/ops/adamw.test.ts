// AdamW step and sum of squares: closed forms, torch's arrangement, clipping and gradScale.
// Omits: a finite-difference check (an optimizer step has no backward).

import { describe, expect, it } from 'vitest';
import { fc, test } from '@fast-check/vitest';
import type { AdamWParams } from '../../src/backend.ts';
import { UserError } from '../../src/errors.ts';
import { Rng } from '../../src/rng.ts';
import { adamwStep, clipCoef, sumSquares } from '../../src/ops/adamw.ts';
import { randn } from './fd.ts';
import { createCpuBackend } from '../../backends/cpu.ts';

const base: AdamWParams = {
  lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step: 1, maxGradNorm: 0, gradScale: 1,
};

function run(param: Float32Array, grads: Float32Array[], p: AdamWParams, norms?: number[]) {
  const w = param.slice(), m = new Float32Array(w.length), v = new Float32Array(w.length);
  grads.forEach((g, i) => adamwStep(w, m, v, g, { ...p, step: i + 1 }, norms ? norms[i] : null));
  return { w, m, v };
}

/** torch.optim.AdamW's arrangement (single tensor, no amsgrad), in float64. */
function torchLike(param: Float32Array, grads: Float32Array[], p: AdamWParams): Float64Array {
  const w = Float64Array.from(param), m = new Float64Array(w.length), v = new Float64Array(w.length);
  grads.forEach((g, s) => {
    const step = s + 1;
    const bc1 = 1 - p.beta1 ** step, bc2 = 1 - p.beta2 ** step;
    for (let i = 0; i < w.length; i++) {
      w[i] *= 1 - p.lr * p.weightDecay;
      m[i] += (g[i] - m[i]) * (1 - p.beta1); // exp_avg.lerp_(grad, 1 − β1)
      v[i] = v[i] * p.beta2 + (1 - p.beta2) * g[i] * g[i];
      const denom = Math.sqrt(v[i]) / Math.sqrt(bc2) + p.eps;
      w[i] -= (p.lr / bc1) * (m[i] / denom);
    }
  });
  return w;
}

describe('adamw', () => {
  it('first step from zero state moves each weight by ≈ lr·sign(g) after decay', () => {
    const w0 = Float32Array.of(1, -2, 0.5, 3), g = Float32Array.of(0.3, -0.01, 2, -5);
    const { w, m, v } = run(w0, [g], base);
    for (let i = 0; i < 4; i++) {
      const want = w0[i] * (1 - base.lr * base.weightDecay) - (base.lr * g[i]) / (Math.abs(g[i]) + base.eps);
      expect(Math.abs(w[i] - want)).toBeLessThan(1e-7);
      expect(m[i]).toBeCloseTo((1 - base.beta1) * g[i], 7);
      expect(v[i]).toBeCloseTo((1 - base.beta2) * g[i] * g[i], 7);
    }
  });

  test.prop([fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 5 })])(
    'several steps match torch.optim.AdamW\'s arrangement of the same update',
    (s, n, steps) => {
      const rng = new Rng(s);
      const w0 = randn(rng, n), grads = Array.from({ length: steps }, () => randn(rng, n));
      const { w } = run(w0, grads, base);
      const want = torchLike(w0, grads, base);
      for (let i = 0; i < n; i++) expect(Math.abs(w[i] - want[i])).toBeLessThan(1e-6 * (1 + Math.abs(want[i])));
    },
  );

  it('clipping scales g by min(1, max/(√gradNormSq + 1e-6)), and gradScale applies first', () => {
    const rng = new Rng(7);
    const w0 = randn(rng, 6), g = randn(rng, 6);
    const normSq = 16; // ‖g‖ = 4, as the caller measured it
    const coef = 1 / (4 + 1e-6);
    const clipped = run(w0, [g], { ...base, maxGradNorm: 1 }, [normSq]);
    const manual = run(w0, [g.map((x) => x * coef)], base);
    for (let i = 0; i < 6; i++) expect(clipped.m[i]).toBeCloseTo(manual.m[i], 7);
    const scaled = run(w0, [g], { ...base, gradScale: 0.25 });
    const pre = run(w0, [g.map((x) => x * 0.25)], base);
    expect(Array.from(scaled.m)).toEqual(Array.from(pre.m));
    expect(clipCoef({ ...base, maxGradNorm: 1 }, 0.25)).toBe(1); // ‖g‖ < max: no clip
    expect(clipCoef(base, null)).toBe(1); // clipping off
  });

  it('zero gradient leaves only the decoupled weight decay', () => {
    const { w } = run(Float32Array.of(2, -4), [new Float32Array(2)], base);
    expect(w[0]).toBe(Math.fround(2 * (1 - base.lr * base.weightDecay)));
    expect(w[1]).toBe(Math.fround(-4 * (1 - base.lr * base.weightDecay)));
  });

  it('its op-table entry rejects a missing gradNormSq when clipping, and a bad step', () => {
    const be = createCpuBackend();
    const z = () => be.zeros([2]);
    expect(() => be.ops.adamw(z(), z(), z(), z(), { ...base, maxGradNorm: 1 }, null)).toThrow(/gradNormSq is required/);
    expect(() => be.ops.adamw(z(), z(), z(), z(), { ...base, step: 0 }, null)).toThrow(/step must be an integer ≥ 1, got 0/);
    expect(() => be.ops.adamw(z(), z(), z(), z(), { ...base, step: 1.5 }, null)).toThrow(UserError);
    const w = z();
    expect(() => be.ops.adamw(w, z(), w, z(), base, null)).toThrow(/param, grad, m and v must be distinct tensors/);
    expect(() => be.ops.adamw(w, be.reshape(w, [2]), z(), z(), base, null)).toThrow(/distinct/); // a view shares storage
  });

  it('sumSquares sums every element of every buffer in float64', () => {
    expect(sumSquares([Float32Array.of(1, 2), Float32Array.of(3), new Float32Array(0)])).toBe(14);
    // 4097² + 1 = 16785410 needs 25 bits: a float32 accumulator would round it.
    expect(sumSquares([Float32Array.of(4097, 1)])).toBe(16785410);
  });
});
