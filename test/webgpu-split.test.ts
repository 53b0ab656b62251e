// WebGPU kernels on tensors over the adapter's binding limit: the limit is lowered to 4 KiB,
// so every shape below needs several aligned windows, and each kernel must still match the
// CPU reference (both kernel styles, the kernel suite's comparison at gpu_f32), as must the
// golden models and three training steps. Skips with a printed reason where no adapter exists
// (test/webgpu.test.ts fails then if TOKENFORMER_REQUIRE names webgpu).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdamWParams, Shape } from '../src/backend.ts';
import { attention } from '../src/compose.ts';
import { checkValues } from './helpers/compare.ts';
import { loadFixture, loadManifest, tolerance } from './helpers/golden.ts';
import { caseMismatches, kernelCase, type Gen, type HostTensor, type KernelCase } from './kernels/kernel-case.ts';
import { reference } from './kernels/suite.ts';
import { STYLES, loadWebGPU, useStyle } from './kernels/webgpu-load.ts';
import { hostModel, modelCheck } from './parity/model-check.ts';
import { runSteps } from './parity/train-steps.ts';

const { gpu, reason } = await loadWebGPU();
const tol = tolerance('gpu_f32');

const MATMULS: [string, Shape, Shape, boolean, boolean][] = [
  ['logits NT', [37, 48], [203, 48], false, true],
  ['logits NT, % 4', [36, 48], [200, 48], false, true],
  ['dHead TN', [37, 203], [37, 48], true, false],
  ['dHead TN, % 4', [36, 200], [36, 48], true, false],
  ['dY NN', [37, 203], [203, 49], false, false],
  ['dY NN, % 4', [36, 200], [200, 48], false, false],
  ['TT', [70, 37], [29, 70], true, true],
  ['batched A, shared B', [2, 19, 48], [48, 64], false, false],
  ['batched TN', [3, 44, 20], [3, 44, 36], true, false],
  ['one row over the limit', [3, 1100], [1100, 5], false, false],
];

/** [rows] ids < V with positions 3, 4, 10 all id 5 (a repeated id accumulates). */
function repeated(g: Gen, shape: Shape, V: number): HostTensor {
  const ids = g.ints(shape, V);
  ids.data[3] = ids.data[4] = ids.data[10] = 5;
  return ids;
}

/** Shapes that need several 4 KiB windows (odd sizes: unaligned window starts, edge blocks). */
const SPLIT: KernelCase[] = [
  ...MATMULS.map(([name, as, bs, tA, tB]) => kernelCase(`matmul ${name}: [${as}]·[${bs}]`,
    (g) => ({ a: g.randn(as), b: g.randn(bs) }),
    (be, x) => ({ values: { c: be.ops.matmul(x.a, x.b, tA, tB) } }))),
  ...[[5, 999], [9, 1000]].map((shape) => kernelCase(`add and adamw [${shape}]`,
    (g) => ({ a: g.randn(shape), b: g.randn(shape), m: g.randn(shape, 0.1), v: g.map(g.randn(shape), (x) => x * x) }),
    (be, x) => {
      const y = be.ops.add(x.a, x.b);
      const p: AdamWParams = { lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step: 2, maxGradNorm: 0.5, gradScale: 0.5 };
      be.ops.adamw(x.a, x.b, x.m, x.v, p, be.ops.sumSquares([x.b]));
      return { values: { y, param: x.a, m: x.m, v: x.v } };
    })),
  kernelCase('sumSquares (more partials than one binding)',
    (g) => Object.fromEntries([[37, 48], [1], [5000], [3, 701], [20000], [16]].map((s, i) => [`t${i}`, g.randn(s)])),
    (be, x) => ({ values: { s: be.ops.sumSquares(Object.values(x)) } })),
  ...[[13, 300], [40, 37]].map(([N, V]) => kernelCase(`crossEntropy [${N},${V}], forward and backward`,
    (g) => ({ logits: g.randn([N, V], 3), t: g.ints([N], V) }),
    (be, x) => {
      const f = be.ops.crossEntropy(x.logits, x.t);
      return { values: { loss: f.loss, lse: f.lse }, grads: { dLogits: be.ops.crossEntropyBackward(x.logits, f.lse, x.t, 0.7) } };
    })),
  ...[48, 37].map((C) => kernelCase(`embedding [3,30] over [50,${C}]; backward of [2,9] repeated ids`,
    (g) => ({ table: g.randn([50, C]), many: g.ints([3, 30], 50), ids: repeated(g, [2, 9], 50), d: g.randn([2, 9, C]) }),
    (be, x) => ({ values: { out: be.ops.embedding(x.many, x.table) }, grads: { dTable: be.ops.embeddingBackward(x.ids, x.d, 50) } }))),
  kernelCase('causalSoftmax [2,3,30,30], forward and backward',
    (g) => ({ s: g.randn([2, 3, 30, 30], 3), dP: g.randn([2, 3, 30, 30]) }),
    (be, x) => {
      const p = be.ops.causalSoftmax(x.s, 0.3);
      return { values: { p }, grads: { dS: be.ops.causalSoftmaxBackward(p, x.dP, 0.3) } };
    }),
  // Scores (B, H, T, T) over the limit, q/k/v within it.
  ...[[1, 40, 2, 8], [2, 20, 3, 4], [1, 37, 2, 6]].map((shape) => kernelCase(`attention [${shape}], forward and backward`,
    (g) => ({ q: g.randn(shape), k: g.randn(shape), v: g.randn(shape), d: g.randn(shape) }),
    (be, x) => {
      const f = attention(be, x.q, x.k, x.v);
      const d = f.saved.backward(x.d);
      return { values: { out: f.out }, grads: { dQ: d.dQ, dK: d.dK, dV: d.dV } };
    })),
];

describe.skipIf(!gpu).each(STYLES)(`webgpu (%s style) split over the binding limit${gpu ? '' : ` (skipped: ${reason})`}`, (style) => {
  useStyle(gpu, style);
  describe('split over a 4 KiB binding limit', () => {
    let prevLimit = 0;
    beforeAll(() => {
      prevLimit = gpu!.maxBinding;
      gpu!.maxBinding = 4096;
    });
    afterAll(() => {
      gpu!.maxBinding = prevLimit;
    });

    it('clamps the limit', () => {
      expect(gpu!.maxBinding).toBe(4096);
      expect(prevLimit).toBeGreaterThan(4096);
    });

    it.each(SPLIT.map((c) => [c.name, c] as const))('%s', async (_n, c) => {
      expect(await caseMismatches(gpu!, reference, c, tol)).toEqual([]);
    });

    // The tiny golden models at this limit: embedding tables, logits, their gradients and
    // AdamW state split (each is over 4 KiB); the other tensors still fit.
    const manifest = loadManifest();
    for (const m of manifest.models) it(`model ${m.name}: logits, loss, every gradient against the golden`, async () => {
      expect(await modelCheck(gpu!, m, 'gpu_f32')).toEqual([]);
    });

    it('three training steps match the CPU backend', async () => {
      const m = manifest.models[0];
      const fx = loadFixture(m.file);
      const { config, weights } = hostModel(fx, m);
      const mine = await runSteps(gpu!, config, weights, fx, [1e-2, 1e-2, 1e-2]);
      const ref = await runSteps(reference, config, weights, fx, [1e-2, 1e-2, 1e-2]);
      expect(checkValues('losses', mine.losses, ref.losses, tol.values)).toBeNull();
    });

    it('a kernel that does not split, or a logit row over the limit, names the limit', () => {
      const be = gpu!;
      const x = be.upload(new Float32Array(40 * 37), [40, 37]);
      expect(() => be.ops.layerNorm(x, null, null, 1e-5)).toThrow(/maxStorageBufferBindingSize \(4096\)/);
      const logits = be.upload(new Float32Array(6 * 1100), [6, 1100]), t = be.uploadInt(new Int32Array(6), [6]);
      expect(() => be.ops.crossEntropy(logits, t)).toThrow(/a row of the logits needs a \d+-byte binding/);
    });
  });
});
