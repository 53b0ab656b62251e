// Kernel-level checks of the WebGPU backend against the CPU reference backend on seeded
// random inputs, odd sizes included (tile edges: n = 37, hidden = 48, sizes past 64).
// Skips with a printed reason when no adapter exists, unless TOKENFORMER_REQUIRE names
// webgpu: then the unavailability is a failure. Omits: golden fixtures and the model (the
// shared parity suite in test/parity covers those).

import { describe, expect, it } from 'vitest';
import type { CpuHandle } from '../backends/cpu.ts';
import type { AdamWParams, NormActParams, Shape, Variant } from '../src/backend.ts';
import { UserError } from '../src/errors.ts';
import { pattention } from '../src/compose.ts';
import { required } from './helpers/backends.ts';
import {
  C, G, attentionCase, both, bothInt, cpu, expectClose, gpu, rand, randn, reason, rng, size, useStyle,
} from './helpers/webgpu-pair.ts';

describe('webgpu availability', () => {
  // Runs everywhere (a skip here would be the one skipped test of a CI run): it fails only
  // when TOKENFORMER_REQUIRE names webgpu and no adapter could be opened.
  it('is available, or not required (TOKENFORMER_REQUIRE)', () => {
    if (required('webgpu')) expect(gpu, `webgpu is required but unavailable: ${reason}`).not.toBeNull();
    else if (!gpu) console.warn(`[note] webgpu unavailable and not required: ${reason}`);
  });
});

// Both kernel styles run on any adapter: 'gpu' (tiled matmul with the Θ prologue, a
// workgroup per row) and 'cpu' (rowcast matmul, Θ materialized, an invocation per row).
describe.skipIf(!gpu).each(['gpu', 'cpu'] as const)('webgpu kernels (%s style) vs the CPU reference', (style) => {
  useStyle(style);

  it('reports its adapter', () => {
    console.log(`webgpu adapter: ${gpu!.adapter}`);
    expect(gpu!.name).toBe('webgpu');
  });

  const mmCases: [string, Shape, Shape, boolean, boolean][] = [
    ['odd NN', [37, 48], [48, 29], false, false],
    ['odd NT', [37, 48], [29, 48], false, true],
    ['odd TN', [48, 37], [48, 29], true, false],
    ['odd TT', [48, 37], [29, 48], true, true],
    ['past the tile', [130, 70], [70, 200], false, false],
    ['K = 1, M = 1', [1, 1], [1, 67], false, false],
    ['batched A, shared B', [2, 3, 37, 48], [48, 29], false, false],
    ['batched A and B, NT', [2, 3, 65, 16], [2, 3, 65, 16], false, true],
    ['batched TN', [5, 33, 9], [5, 33, 70], true, false],
    // N % 4 = 0: the vec4 kernels (a transposed B is transposed first in the cpu style)
    ['NT, N % 4 = 0', [37, 48], [64, 48], false, true],
    ['batched A and B, NT, N % 4 = 0', [2, 3, 20, 16], [2, 3, 36, 16], false, true],
    ['batched A, shared B, NT, N % 4 = 0', [2, 19, 16], [12, 16], false, true],
    ['TN, N % 4 = 0', [48, 37], [48, 32], true, false],
    ['batched A, shared B, N % 4 = 0', [3, 17, 24], [24, 44], false, false],
    ['TT, N % 4 = 0', [48, 37], [32, 48], true, true],
    // N and K % 4 = 0: the subgroup kernel in the cpu style (8-wide subgroups), edges in M and N
    ['NN, N and K % 4 = 0, wide', [21, 32], [32, 200], false, false],
    ['NT, N and K % 4 = 0, M = 5', [5, 8], [12, 8], false, true],
    ['batched TN, N and K % 4 = 0', [3, 44, 19], [3, 44, 36], true, false],
    ['K % 4 ≠ 0, N % 4 = 0', [9, 7], [7, 12], false, false],
  ];
  for (const [name, as, bs, tA, tB] of mmCases) {
    it(`matmul ${name}`, async () => {
      const [ag, ac] = rand(as), [bg, bc] = rand(bs);
      await expectClose('matmul', G().ops.matmul(ag, bg, tA, tB), C().ops.matmul(ac, bc, tA, tB) as CpuHandle);
    });
  }

  it('matmul with K = 0 gives zeros', async () => {
    const [ag, ac] = rand([3, 0]), [bg, bc] = rand([0, 5]);
    await expectClose('matmul', G().ops.matmul(ag, bg, false, false), C().ops.matmul(ac, bc, false, false) as CpuHandle);
  });

  for (const shape of [[7, 48], [5, 999], [9, 1000]] as Shape[]) it(`add [${shape}]`, async () => {
    const [ag, ac] = rand(shape), [bg, bc] = rand(shape);
    await expectClose('add', G().ops.add(ag, bg), C().ops.add(ac, bc) as CpuHandle);
  });

  for (const variant of ['l2_norm_gelu', 'gelu_l2_norm', 'softmax'] as Variant[]) {
    for (const [rows, n] of [[13, 37], [4, 300]]) {
      it(`normAct ${variant} [${rows}, ${n}] forward and backward`, async () => {
        const p: NormActParams = { variant, normN: n + 3 };
        const s = randn(rows * n, 2);
        s.fill(0, 0, n); // a zero row: a = 0, dS = 0 on both
        const [sg, sc] = both(s, [rows, n]), [dg, dc] = rand([rows, n]);
        await expectClose('normAct', G().ops.normAct(sg, p), C().ops.normAct(sc, p) as CpuHandle);
        await expectClose('dS', G().ops.normActBackward(sg, dg, p), C().ops.normActBackward(sc, dc, p) as CpuHandle, true);
      });
    }
  }

  for (const [rows, Cn] of [[7, 48], [3, 300], [5, 37], [70, 44]]) {
    for (const affine of [false, true]) {
      it(`layerNorm ${affine ? 'affine' : 'LN₀'} [${rows}, ${Cn}] forward and backward`, async () => {
        const [xg, xc] = both(randn(rows * Cn, 3).map((v) => v + 1.5), [rows, Cn]);
        const [wg, wc] = affine ? rand([Cn]) : [null, null];
        const [bg, bc] = affine ? rand([Cn]) : [null, null];
        const fg = G().ops.layerNorm(xg, wg, bg, 1e-5), fc = C().ops.layerNorm(xc, wc, bc, 1e-5);
        await expectClose('y', fg.y, fc.y as CpuHandle);
        await expectClose('mean', fg.mean, fc.mean as CpuHandle);
        await expectClose('rstd', fg.rstd, fc.rstd as CpuHandle);
        const [dg, dc] = rand([rows, Cn]);
        const bgr = G().ops.layerNormBackward(dg, xg, fg.mean, fg.rstd, wg);
        const bcr = C().ops.layerNormBackward(dc, xc, fc.mean, fc.rstd, wc);
        await expectClose('dX', bgr.dX, bcr.dX as CpuHandle, true);
        expect(bgr.dW === null).toBe(!affine);
        if (affine) {
          await expectClose('dW', bgr.dW!, bcr.dW as CpuHandle, true);
          await expectClose('dB', bgr.dB!, bcr.dB as CpuHandle, true);
        }
      });
    }
  }

  for (const rotaryDim of [0, 4, 12]) {
    it(`rotary rotaryDim ${rotaryDim}, forward and inverse`, async () => {
      const [xg, xc] = rand([2, 9, 3, 12]);
      for (const inverse of [false, true]) {
        const p = { rotaryDim, base: 10000 };
        await expectClose('rotary', G().ops.rotary(xg, p, inverse), C().ops.rotary(xc, p, inverse) as CpuHandle);
      }
    });
  }

  it('permute0213', async () => {
    const [xg, xc] = rand([2, 5, 3, 7]);
    await expectClose('permute', G().ops.permute0213(xg), C().ops.permute0213(xc) as CpuHandle);
  });

  for (const T of [7, 130]) {
    it(`causalSoftmax T = ${T}, forward and backward`, async () => {
      const [sg, sc] = rand([2, 3, T, T], 3), [dg, dc] = rand([2, 3, T, T]);
      const pg = G().ops.causalSoftmax(sg, 0.3), pc = C().ops.causalSoftmax(sc, 0.3);
      await expectClose('P', pg, pc as CpuHandle);
      await expectClose('dS', G().ops.causalSoftmaxBackward(pg, dg, 0.3), C().ops.causalSoftmaxBackward(pc, dc, 0.3) as CpuHandle, true);
    });
  }

  for (const Cn of [48, 37]) it(`embedding forward, scatter-add backward, and an out-of-range id (C ${Cn})`, async () => {
    const V = 11;
    const ids = Int32Array.from({ length: 2 * 9 }, () => rng.int(V));
    ids[3] = ids[4] = ids[10] = 5; // repeated ids accumulate
    const [ig, ic] = bothInt(ids, [2, 9]), [tg, tc] = rand([V, Cn]);
    await expectClose('embedding', G().ops.embedding(ig, tg), C().ops.embedding(ic, tc) as CpuHandle);
    const [dg, dc] = rand([2, 9, Cn]);
    await expectClose('dTable', G().ops.embeddingBackward(ig, dg, V), C().ops.embeddingBackward(ic, dc, V) as CpuHandle, true);
    const bad = G().uploadInt(Int32Array.of(1, V), [1, 2]);
    expect(() => G().ops.embedding(bad, tg)).toThrow(UserError);
    expect(await gpu!.read(ig as never)).toEqual(Float32Array.from(ids));
  });

  for (const V of [300, 37]) it(`crossEntropy forward and backward (V ${V})`, async () => {
    const N = 13;
    const tgt = Int32Array.from({ length: N }, () => rng.int(V));
    const [lg, lc] = rand([N, V], 3), [tg, tc] = bothInt(tgt, [N]);
    const fg = G().ops.crossEntropy(lg, tg), fc = C().ops.crossEntropy(lc, tc);
    await expectClose('loss', fg.loss, fc.loss as CpuHandle);
    await expectClose('lse', fg.lse, fc.lse as CpuHandle);
    await expectClose('dLogits', G().ops.crossEntropyBackward(lg, fg.lse, tg, 0.7),
      C().ops.crossEntropyBackward(lc, fc.lse, tc, 0.7) as CpuHandle, true);
    expect(() => G().ops.crossEntropy(lg, G().uploadInt(new Int32Array(N).fill(V), [N]))).toThrow(UserError);
  });

  it('sumSquares over a list with odd and large sizes', async () => {
    const shapes: Shape[] = [[37, 48], [1], [5000], [3, 700]];
    const pairs = shapes.map((s) => rand(s));
    await expectClose('Σx²', G().ops.sumSquares(pairs.map((p) => p[0])), C().ops.sumSquares(pairs.map((p) => p[1])) as CpuHandle);
  });

  it('sumSquares over more tensors than one multi-tensor dispatch binds', async () => {
    const shapes: Shape[] = [[4], [12, 4], [3], [2048], [4100], [8, 8], [7], [16], [64, 33], [20], [24], [28], [9000], [5, 4], [1]];
    const pairs = shapes.map((s) => rand(s));
    await expectClose('Σx²', G().ops.sumSquares(pairs.map((p) => p[0])), C().ops.sumSquares(pairs.map((p) => p[1])) as CpuHandle);
  });

  for (const [maxGradNorm, shape] of [[0, [37, 48]], [0.5, [37, 48]], [0.5, [5, 999]], [0, [9, 1000]]] as [number, Shape][]) {
    it(`adamw, three steps, maxGradNorm ${maxGradNorm}, [${shape}]`, async () => {
      const [pg, pc] = rand(shape), [mg, mc] = both(new Float32Array(size(shape)), shape);
      const [vg, vc] = both(new Float32Array(size(shape)), shape);
      for (let step = 1; step <= 3; step++) {
        const [gg, gc] = rand(shape, 0.1);
        const p: AdamWParams = { lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step, maxGradNorm, gradScale: 0.5 };
        const ng = maxGradNorm > 0 ? G().ops.sumSquares([gg]) : null;
        const nc = maxGradNorm > 0 ? C().ops.sumSquares([gc]) : null;
        G().ops.adamw(pg, gg, mg, vg, p, ng);
        C().ops.adamw(pc, gc, mc, vc, p, nc);
      }
      await expectClose('param', pg, pc);
      await expectClose('m', mg, mc);
      await expectClose('v', vg, vc);
    });
  }

  for (const variant of ['l2_norm_gelu', 'gelu_l2_norm', 'softmax'] as Variant[]) {
    it(`fused pattention ${variant} (N 13, d_in 48, n 37, d_out 29), forward and backward`, async () => {
      const p: NormActParams = { variant, normN: 37 };
      const [xg, xc] = rand([13, 48]), [kg, kc] = rand([37, 48], 0.3), [vg, vc] = rand([37, 29]);
      const fg = pattention(gpu!, xg as never, kg as never, vg as never, p);
      const fc = pattention(cpu, xc, kc, vc, p);
      await expectClose('out', fg.out, fc.out);
      const [dg, dc] = rand([13, 29]);
      const bg = fg.saved.backward(dg as never);
      const bc = fc.saved.backward(dc);
      await expectClose('dX', bg.dX, bc.dX, true);
      await expectClose('dK', bg.dK, bc.dK, true);
      await expectClose('dV', bg.dV, bc.dV, true);
    });
  }

  // [B, T, H, D]: T and D % 4 = 0 take the strided path in the cpu style; the others, and
  // the gpu style, the permute composition inside the fused kernel.
  for (const shape of [[2, 8, 3, 4], [1, 12, 2, 8], [2, 5, 3, 6]] as Shape[]) {
    it(`fused attention [${shape}] forward and backward`, () => attentionCase(shape));
  }

  it('pools buffers: a disposed tensor is reused, reshape keeps storage alive', async () => {
    const [ag] = rand([64, 64]);
    const r = G().reshape(ag, [4096]);
    G().dispose(ag);
    expect(await G().read(r)).toHaveLength(4096);
    const buf = r.store.data;
    G().dispose(r);
    const z = G().zeros([4096]);
    expect(z.store.data).toBe(buf);
    expect((await G().read(z)).every((v) => v === 0)).toBe(true);
  });

  it('rejects shape mismatches with a UserError', () => {
    const [ag] = rand([3, 4]), [bg] = rand([5, 6]);
    expect(() => G().ops.matmul(ag, bg, false, false)).toThrow(UserError);
    expect(() => G().ops.add(ag, bg)).toThrow(UserError);
  });
});
