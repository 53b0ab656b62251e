// Kernel-level checks of the WebGPU backend against the CPU reference backend on seeded
// random inputs, odd sizes included (tile edges: n = 37, hidden = 48, sizes past 64).
// Skips with a printed reason when no adapter exists, unless TOKENFORMER_REQUIRE names
// webgpu: then the unavailability is a failure. Omits: golden fixtures and the model (the
// shared parity suite in test/parity covers those).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCpuBackend, type CpuHandle } from '../backends/cpu.ts';
import { BackendUnavailable } from '../backends/index.ts';
import type { AdamWParams, Backend, Handle, NormActParams, Shape, Variant } from '../src/backend.ts';
import { attention, attentionBackward } from '../src/compose.ts';
import { UserError } from '../src/errors.ts';
import { readConfigFile } from '../src/config-parse.ts';
import { TokenFormer } from '../src/model.ts';
import { Rng } from '../src/rng.ts';
import { required } from './helpers/backends.ts';
import { checkGrads, checkValues } from './helpers/compare.ts';
import { goldenPath, loadFixture, loadManifest, need, type ModelFixture } from './helpers/golden.ts';
import { runSteps } from './parity/train-steps.ts';

const VALUES = { rtol: 1e-3, atol: 1e-4 };
const GRADS = { rel: 1e-2, maxRel: 1e-4 };

type WG = Awaited<ReturnType<typeof import('../backends/webgpu/index.ts')['createWebGPUBackend']>>;

async function load(): Promise<{ gpu: WG | null; reason: string }> {
  try {
    const { createWebGPUBackend } = await import('../backends/webgpu/index.ts');
    return { gpu: await createWebGPUBackend(), reason: '' };
  } catch (e) {
    if (!(e instanceof BackendUnavailable)) throw e;
    console.warn(`[skip] webgpu kernel tests: ${e.message}`);
    return { gpu: null, reason: e.message };
  }
}

const { gpu, reason } = await load();
const cpu = createCpuBackend();
const rng = new Rng(20240611);

describe('webgpu availability', () => {
  // Runs everywhere (a skip here would be the one skipped test of a CI run): it fails only
  // when TOKENFORMER_REQUIRE names webgpu and no adapter could be opened.
  it('is available, or not required (TOKENFORMER_REQUIRE)', () => {
    if (required('webgpu')) expect(gpu, `webgpu is required but unavailable: ${reason}`).not.toBeNull();
    else if (!gpu) console.warn(`[note] webgpu unavailable and not required: ${reason}`);
  });
});

function randn(n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * scale;
  return a;
}
function size(shape: Shape): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** The same data on both backends. */
function both(data: Float32Array, shape: Shape): [Handle, CpuHandle] {
  return [gpu!.upload(data, shape), cpu.upload(data, shape)];
}
function bothInt(data: Int32Array, shape: Shape): [Handle, CpuHandle] {
  return [gpu!.uploadInt(data, shape), cpu.uploadInt(data, shape)];
}
function rand(shape: Shape, scale = 1): [Handle, CpuHandle] {
  return both(randn(size(shape), scale), shape);
}

async function expectClose(name: string, g: Handle, c: CpuHandle, grads = false): Promise<void> {
  expect(g.shape).toEqual(c.shape);
  const got = await gpu!.read(g as never), want = await cpu.read(c);
  const err = grads ? checkGrads(name, got, want, GRADS) : checkValues(name, got, want, VALUES);
  expect(err).toBeNull();
}

const G = () => gpu as unknown as Backend<Handle>;
const C = () => cpu as unknown as Backend<Handle>;

// Both kernel styles run on any adapter: 'gpu' (tiled matmul with the Θ prologue, a
// workgroup per row) and 'cpu' (rowcast matmul, Θ materialized, an invocation per row).
describe.skipIf(!gpu).each(['gpu', 'cpu'] as const)('webgpu kernels (%s style) vs the CPU reference', (style) => {
  let prev: typeof style = style;
  beforeAll(() => {
    prev = gpu!.style;
    gpu!.style = style;
  });
  afterAll(() => {
    gpu!.style = prev;
  });

  it('reports its adapter', () => {
    console.log(`webgpu adapter: ${gpu!.adapter} (default style ${prev})`);
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
      const fg = gpu!.fused.pattention!(xg as never, kg as never, vg as never, p);
      const fc = cpu.fused.pattention!(xc, kc, vc, p);
      await expectClose('out', fg.out, fc.out);
      const [dg, dc] = rand([13, 29]);
      const bg = gpu!.fused.pattentionBackward!(dg as never, xg as never, kg as never, vg as never, fg.saved, p);
      const bc = cpu.fused.pattentionBackward!(dc, xc, kc, vc, fc.saved, p);
      await expectClose('dX', bg.dX, bc.dX, true);
      await expectClose('dK', bg.dK, bc.dK, true);
      await expectClose('dV', bg.dV, bc.dV, true);
    });
  }

  // [B, T, H, D]: T and D % 4 = 0 take the strided path in the cpu style; the others, and
  // the gpu style, the permute composition inside the fused kernel.
  for (const shape of [[2, 8, 3, 4], [1, 12, 2, 8], [2, 5, 3, 6]] as Shape[]) {
    it(`fused attention [${shape}] forward and backward`, async () => {
      const [qg, qc] = rand(shape), [kg, kc] = rand(shape), [vg, vc] = rand(shape);
      const fg = attention(G(), qg, kg, vg), fc = attention(C(), qc, kc, vc);
      await expectClose('out', fg.out, fc.out as CpuHandle);
      const [dg, dc] = rand(shape);
      const bg = attentionBackward(G(), dg, qg, kg, vg, fg.saved), bc = attentionBackward(C(), dc, qc, kc, vc, fc.saved);
      await expectClose('dQ', bg.dQ, bc.dQ as CpuHandle, true);
      await expectClose('dK', bg.dK, bc.dK as CpuHandle, true);
      await expectClose('dV', bg.dV, bc.dV as CpuHandle, true);
    });
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
      it(`fused attention [${shape}] forward and backward`, async () => {
        const [qg, qc] = rand(shape), [kg, kc] = rand(shape), [vg, vc] = rand(shape);
        const fg = attention(G(), qg, kg, vg), fc = attention(C(), qc, kc, vc);
        await expectClose('out', fg.out, fc.out as CpuHandle);
        const [dg, dc] = rand(shape);
        const bg = attentionBackward(G(), dg, qg, kg, vg, fg.saved), bc = attentionBackward(C(), dc, qc, kc, vc, fc.saved);
        await expectClose('dQ', bg.dQ, bc.dQ as CpuHandle, true);
        await expectClose('dK', bg.dK, bc.dK as CpuHandle, true);
        await expectClose('dV', bg.dV, bc.dV as CpuHandle, true);
      });
    }

    // The tiny golden models at this limit: embedding tables, logits, their gradients and
    // AdamW state split (each is over 4 KiB); the other tensors still fit.
    const manifest = loadManifest();
    for (const m of manifest.models) it(`model ${m.name}: logits, loss, every gradient against the golden`, async () => {
      const tol = manifest.tolerances.gpu_f32;
      const fx = loadFixture(m.file);
      const { config, weights } = hostModel(fx, m);
      const model = TokenFormer.fromHost(G(), config, weights);
      const ids = need(fx, 'input_ids'), tg = need(fx, 'targets');
      const fwd = model.forward(G().uploadInt(ids.data as Int32Array, ids.shape), G().uploadInt(tg.data as Int32Array, tg.shape));
      const errors: (string | null)[] = [];
      errors.push(checkValues('logits', await G().read(fwd.logits), need(fx, 'logits').data, tol.values));
      errors.push(checkValues('loss', await G().read(fwd.loss!), need(fx, 'loss').data, tol.values));
      for (const [name, g] of model.backward(fwd)) {
        errors.push(checkGrads(`grad ${name}`, await G().read(g), need(fx, `grad.${name}`).data, tol.grads));
      }
      model.dispose();
      expect(errors.filter((e) => e !== null)).toEqual([]);
    });

    it('three training steps match the CPU backend', async () => {
      const m = manifest.models[0];
      const fx = loadFixture(m.file);
      const { config, weights } = hostModel(fx, m);
      const mine = await runSteps(G(), config, weights, fx, [1e-2, 1e-2, 1e-2]);
      const ref = await runSteps(C(), config, weights, fx, [1e-2, 1e-2, 1e-2]);
      expect(checkValues('losses', mine.losses, ref.losses, manifest.tolerances.gpu_f32.values)).toBeNull();
    });

    function hostModel(fx: ReturnType<typeof loadFixture>, m: ModelFixture) {
      const weights = new Map<string, Float32Array>();
      for (const [name, t] of fx) if (name.startsWith('sequential.') && t.data instanceof Float32Array) weights.set(name, t.data);
      return { config: readConfigFile(goldenPath(m.config), {}), weights };
    }

    it('a kernel that does not split, or a logit row over the limit, names the limit', () => {
      const [xg] = rand([40, 37]);
      expect(() => G().ops.layerNorm(xg, null, null, 1e-5)).toThrow(/maxStorageBufferBindingSize \(4096\)/);
      const [lg] = rand([6, 1100]), [tg] = bothInt(new Int32Array(6), [6]);
      expect(() => G().ops.crossEntropy(lg, tg)).toThrow(/a row of the logits needs a \d+-byte binding/);
    });
  });

  it('rejects shape mismatches with a UserError', () => {
    const [ag] = rand([3, 4]), [bg] = rand([5, 6]);
    expect(() => G().ops.matmul(ag, bg, false, false)).toThrow(UserError);
    expect(() => G().ops.add(ag, bg)).toThrow(UserError);
  });
});
