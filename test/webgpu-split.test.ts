// WebGPU kernels on tensors over the adapter's binding limit: the limit is lowered to 4 KiB,
// so every shape below needs several aligned windows, and each kernel must still match the
// CPU reference (both kernel styles), as must the golden models and three training steps.
// Skips with a printed reason where no adapter exists (test/webgpu.test.ts fails then if
// TOKENFORMER_REQUIRE names webgpu).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CpuHandle } from '../backends/cpu.ts';
import type { AdamWParams, Shape } from '../src/backend.ts';
import { checkValues } from './helpers/compare.ts';
import { loadFixture, loadManifest } from './helpers/golden.ts';
import {
  C, G, attentionCase, both, bothInt, expectClose, gpu, rand, randn, rng, size, useStyle,
} from './helpers/webgpu-pair.ts';
import { hostModel, modelCheck } from './parity/model-check.ts';
import { runSteps } from './parity/train-steps.ts';

describe.skipIf(!gpu).each(['gpu', 'cpu'] as const)('webgpu (%s style) split over the binding limit', (style) => {
  useStyle(style);
  // Tensors over the binding limit: a 4 KiB limit (1024 floats) splits every shape below
  // into several windows (odd sizes: unaligned window starts, edge blocks).
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

    const big: [string, Shape, Shape, boolean, boolean][] = [
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
    for (const [name, as, bs, tA, tB] of big) {
      it(`matmul ${name}`, async () => {
        const [ag, ac] = rand(as), [bg, bc] = rand(bs);
        await expectClose('matmul', G().ops.matmul(ag, bg, tA, tB), C().ops.matmul(ac, bc, tA, tB) as CpuHandle);
      });
    }

    for (const shape of [[5, 999], [9, 1000]] as Shape[]) it(`add and adamw [${shape}]`, async () => {
      const [ag, ac] = rand(shape), [bg, bc] = rand(shape);
      await expectClose('add', G().ops.add(ag, bg), C().ops.add(ac, bc) as CpuHandle);
      const [mg, mc] = rand(shape, 0.1), [vg, vc] = both(randn(size(shape)).map((x) => x * x), shape);
      const p: AdamWParams = { lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step: 2, maxGradNorm: 0.5, gradScale: 0.5 };
      G().ops.adamw(ag, bg, mg, vg, p, G().ops.sumSquares([bg]));
      C().ops.adamw(ac, bc, mc, vc, p, C().ops.sumSquares([bc]));
      await expectClose('param', ag, ac);
      await expectClose('m', mg, mc);
      await expectClose('v', vg, vc);
    });

    it('sumSquares (more partials than one binding)', async () => {
      const shapes: Shape[] = [[37, 48], [1], [5000], [3, 701], [20000], [16]];
      const pairs = shapes.map((s) => rand(s));
      await expectClose('Σx²', G().ops.sumSquares(pairs.map((p) => p[0])), C().ops.sumSquares(pairs.map((p) => p[1])) as CpuHandle);
    });

    for (const [N, V] of [[13, 300], [40, 37]]) it(`crossEntropy forward and backward (N ${N}, V ${V})`, async () => {
      const tgt = Int32Array.from({ length: N }, () => rng.int(V));
      const [lg, lc] = rand([N, V], 3), [tg, tc] = bothInt(tgt, [N]);
      const fg = G().ops.crossEntropy(lg, tg), fc = C().ops.crossEntropy(lc, tc);
      await expectClose('loss', fg.loss, fc.loss as CpuHandle);
      await expectClose('lse', fg.lse, fc.lse as CpuHandle);
      await expectClose('dLogits', G().ops.crossEntropyBackward(lg, fg.lse, tg, 0.7),
        C().ops.crossEntropyBackward(lc, fc.lse, tc, 0.7) as CpuHandle, true);
    });

    for (const Cn of [48, 37]) it(`embedding forward and backward (V 50, C ${Cn})`, async () => {
      const V = 50;
      const [tg, tc] = rand([V, Cn]);
      const many = Int32Array.from({ length: 3 * 30 }, () => rng.int(V));
      const [mg, mc] = bothInt(many, [3, 30]);
      await expectClose('embedding', G().ops.embedding(mg, tg), C().ops.embedding(mc, tc) as CpuHandle);
      const ids = Int32Array.from({ length: 2 * 9 }, () => rng.int(V));
      ids[3] = ids[4] = ids[10] = 5;
      const [ig, ic] = bothInt(ids, [2, 9]), [dg, dc] = rand([2, 9, Cn]);
      await expectClose('dTable', G().ops.embeddingBackward(ig, dg, V), C().ops.embeddingBackward(ic, dc, V) as CpuHandle, true);
    });

    it('causalSoftmax [2, 3, 30, 30] forward and backward', async () => {
      const [sg, sc] = rand([2, 3, 30, 30], 3), [dg, dc] = rand([2, 3, 30, 30]);
      const pg = G().ops.causalSoftmax(sg, 0.3), pc = C().ops.causalSoftmax(sc, 0.3);
      await expectClose('P', pg, pc as CpuHandle);
      await expectClose('dS', G().ops.causalSoftmaxBackward(pg, dg, 0.3), C().ops.causalSoftmaxBackward(pc, dc, 0.3) as CpuHandle, true);
    });

    // Scores (B, H, T, T) over the limit, q/k/v within it.
    for (const shape of [[1, 40, 2, 8], [2, 20, 3, 4], [1, 37, 2, 6]] as Shape[]) {
      it(`fused attention [${shape}] forward and backward`, () => attentionCase(shape));
    }

    // The tiny golden models at this limit: embedding tables, logits, their gradients and
    // AdamW state split (each is over 4 KiB); the other tensors still fit.
    const manifest = loadManifest();
    for (const m of manifest.models) it(`model ${m.name}: logits, loss, every gradient against the golden`, async () => {
      expect(await modelCheck(G(), m, 'gpu_f32')).toEqual([]);
    });

    it('three training steps match the CPU backend', async () => {
      const m = manifest.models[0];
      const fx = loadFixture(m.file);
      const { config, weights } = hostModel(fx, m);
      const mine = await runSteps(G(), config, weights, fx, [1e-2, 1e-2, 1e-2]);
      const ref = await runSteps(C(), config, weights, fx, [1e-2, 1e-2, 1e-2]);
      expect(checkValues('losses', mine.losses, ref.losses, manifest.tolerances.gpu_f32.values)).toBeNull();
    });

    it('a kernel that does not split, or a logit row over the limit, names the limit', () => {
      const [xg] = rand([40, 37]);
      expect(() => G().ops.layerNorm(xg, null, null, 1e-5)).toThrow(/maxStorageBufferBindingSize \(4096\)/);
      const [lg] = rand([6, 1100]), [tg] = bothInt(new Int32Array(6), [6]);
      expect(() => G().ops.crossEntropy(lg, tg)).toThrow(/a row of the logits needs a \d+-byte binding/);
    });
  });
});
