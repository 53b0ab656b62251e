// backends/cpu.ts: every kernel agrees with the raw src/ops function it maps to, fused
// kernels agree with the primitive chain, fused and composed attention equal a naive causal
// attention (values and gradients), handles behave, and bad input throws UserError.
// Omits: numerical accuracy of the other ops (vjp/properties tests, golden parity).

import { describe, expect, it } from 'vitest';
import { fc, test } from '@fast-check/vitest';
import { VARIANTS, type AdamWParams } from '../../src/backend.ts';
import { UserError } from '../../src/errors.ts';
import { Rng } from '../../src/rng.ts';
import { createCpuBackend, type CpuHandle } from '../../backends/cpu.ts';
import { adamwStep } from '../../src/ops/adamw.ts';
import { causalSoftmaxBackward, causalSoftmaxForward } from '../../src/ops/causal_softmax.ts';
import { crossEntropyBackward, crossEntropyForward } from '../../src/ops/cross_entropy.ts';
import { embeddingBackward, embeddingForward } from '../../src/ops/embedding.ts';
import { layerNormBackward, layerNormForward } from '../../src/ops/layernorm.ts';
import { matmulForward } from '../../src/ops/matmul.ts';
import { normActBackward, normActForward } from '../../src/ops/norm_act.ts';
import { rotaryForward } from '../../src/ops/rotary.ts';
import { permute0213Forward } from '../../src/ops/permute.ts';
import { attention, pattention } from '../../src/compose.ts';
import { randInts, randn } from './fd.ts';

const be = createCpuBackend();
const up = (d: Float32Array, shape: number[]) => be.upload(d, shape);
const data = (t: CpuHandle | null) => Array.from(t!.store.data);
const seed = fc.integer({ min: 0, max: 2 ** 31 - 1 });

describe('cpu backend agrees with src/ops', () => {
  test.prop([seed, fc.constantFrom(...VARIANTS)], { numRuns: 10 })('every kernel, on random shapes', (s, variant) => {
    const rng = new Rng(s);
    const [B, T, H, D, V] = [1 + rng.int(2), 1 + rng.int(4), 1 + rng.int(2), 2 * (1 + rng.int(3)), 2 + rng.int(5)];
    const C = H * D, N = B * T;
    // matmul, batched A · shared Bᵀ
    const a = randn(rng, N * C), w = randn(rng, V * C);
    const c = new Float32Array(N * V);
    matmulForward(c, a, w, { batch: B, M: T, K: C, N: V, transA: false, transB: true, bBatched: false });
    expect(data(be.ops.matmul(up(a, [B, T, C]), up(w, [V, C]), false, true))).toEqual(Array.from(c));
    // normAct and its backward
    const p = { variant, normN: 3 + rng.int(5) }, dA = randn(rng, N * V);
    const th = new Float32Array(N * V), dS = new Float32Array(N * V);
    normActForward(th, c, N, V, p);
    normActBackward(dS, dA, c, N, V, p);
    expect(data(be.ops.normAct(up(c, [N, V]), p))).toEqual(Array.from(th));
    expect(data(be.ops.normActBackward(up(c, [N, V]), up(dA, [N, V]), p))).toEqual(Array.from(dS));
    // affine layerNorm and its backward
    const lw = randn(rng, C), lb = randn(rng, C), dY = randn(rng, N * C);
    const y = new Float32Array(N * C), dX = new Float32Array(N * C), dW = new Float32Array(C), dB = new Float32Array(C);
    const cache = layerNormForward(y, a, lw, lb, N, C, 1e-5);
    layerNormBackward(dX, dW, dB, dY, a, cache, lw, N, C);
    const ln = be.ops.layerNorm(up(a, [B, T, C]), up(lw, [C]), up(lb, [C]), 1e-5);
    expect(data(ln.y)).toEqual(Array.from(y));
    const lnB = be.ops.layerNormBackward(up(dY, [B, T, C]), up(a, [B, T, C]), ln.mean, ln.rstd, up(lw, [C]));
    expect([data(lnB.dX), data(lnB.dW), data(lnB.dB)]).toEqual([dX, dW, dB].map((t) => Array.from(t)));
    // rotary and permute
    const rp = { rotaryDim: D, base: 10000 }, rot = new Float32Array(N * C), perm = new Float32Array(N * C);
    rotaryForward(rot, a, { B, T, H, D, offset: 0 }, rp, true);
    permute0213Forward(perm, a, B, T, H, D);
    expect(data(be.ops.rotary(up(a, [B, T, H, D]), rp, true))).toEqual(Array.from(rot));
    expect(data(be.ops.permute0213(up(a, [B, T, H, D])))).toEqual(Array.from(perm));
    // causal softmax and its backward
    const sc = randn(rng, B * T * T), dP = randn(rng, B * T * T);
    const pr = new Float32Array(B * T * T), dSc = new Float32Array(B * T * T);
    causalSoftmaxForward(pr, sc, B, T, 0.5);
    causalSoftmaxBackward(dSc, dP, pr, B, T, 0.5);
    const pH = be.ops.causalSoftmax(up(sc, [B, T, T]), 0.5);
    expect(data(pH)).toEqual(Array.from(pr));
    expect(data(be.ops.causalSoftmaxBackward(pH, up(dP, [B, T, T]), 0.5))).toEqual(Array.from(dSc));
    // embedding, cross entropy
    const ids = randInts(rng, N, V), emb = new Float32Array(N * C), dT = new Float32Array(V * C);
    embeddingForward(emb, ids, w, V, C);
    embeddingBackward(dT, dY, ids, V, C);
    const idsH = be.uploadInt(ids, [B, T]);
    expect(data(be.ops.embedding(idsH, up(w, [V, C])))).toEqual(Array.from(emb));
    expect(data(be.ops.embeddingBackward(idsH, up(dY, [B, T, C]), V))).toEqual(Array.from(dT));
    const ce = crossEntropyForward(c, ids, N, V), dL = new Float32Array(N * V);
    crossEntropyBackward(dL, 0.7, c, ids, ce.cache, N, V);
    const ceH = be.ops.crossEntropy(up(c, [N, V]), be.uploadInt(ids, [N]));
    expect(data(ceH.loss)).toEqual([Math.fround(ce.loss)]);
    expect(data(be.ops.crossEntropyBackward(up(c, [N, V]), ceH.lse, be.uploadInt(ids, [N]), 0.7))).toEqual(Array.from(dL));
  });

  it('adamw updates param, m, v in place like adamwStep; sumSquares reduces every tensor', () => {
    const rng = new Rng(3);
    const w = randn(rng, 5), g = randn(rng, 5), m = randn(rng, 5), v = randn(rng, 5).map(Math.abs);
    const p: AdamWParams = { lr: 0.1, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step: 3, maxGradNorm: 1, gradScale: 0.5 };
    const [wH, gH, mH, vH] = [w, g, m, v].map((d) => up(d, [5]));
    const normSq = be.ops.sumSquares([gH, up(Float32Array.of(2), [1])]);
    expect(data(normSq)).toEqual([Math.fround(g.reduce((s, x) => s + x * x, 0) + 4)]);
    be.ops.adamw(wH, gH, mH, vH, p, normSq);
    adamwStep(w, m, v, g, p, normSq.store.data[0]);
    expect([data(wH), data(mH), data(vH)]).toEqual([w, m, v].map((t) => Array.from(t)));
  });
});

describe('fused kernels agree with the primitive chain', () => {
  test.prop([seed, fc.constantFrom(...VARIANTS)], { numRuns: 10 })('pattention forward and backward', (s, variant) => {
    const rng = new Rng(s);
    const [N, dIn, n, dOut] = [1 + rng.int(5), 1 + rng.int(5), 2 + rng.int(6), 1 + rng.int(4)];
    const p = { variant, normN: n + rng.int(3) };
    const [x, k, v, dO] = [up(randn(rng, N * dIn), [N, dIn]), up(randn(rng, n * dIn), [n, dIn]), up(randn(rng, n * dOut), [n, dOut]), up(randn(rng, N * dOut), [N, dOut])];
    expect(be.fused.pattention).toBeDefined(); // so pattention() below runs the fused pair
    const f = pattention(be, x, k, v, p);
    const sc = be.ops.matmul(x, k, false, true), a = be.ops.normAct(sc, p);
    expect(data(f.out)).toEqual(data(be.ops.matmul(a, v, false, false)));
    const g = f.saved.backward(dO);
    const dA = be.ops.matmul(dO, v, false, true), dS = be.ops.normActBackward(sc, dA, p);
    expect(data(g.dV)).toEqual(data(be.ops.matmul(a, dO, true, false)));
    expect(data(g.dX)).toEqual(data(be.ops.matmul(dS, k, false, false)));
    expect(data(g.dK)).toEqual(data(be.ops.matmul(dS, x, true, false)));
  });

  // Naive causal attention in float64, per (b, h): S = q·kᵀ/√D (j ≤ i), P = softmax(S),
  // out = P·v; backward dV = Pᵀ·dO, dP = dO·vᵀ, dS = P∘(dP − Σⱼ P∘dP), dQ = dS·k/√D, dK = dSᵀ·q/√D.
  function naiveAttention(q: Float32Array, k: Float32Array, v: Float32Array, dO: Float32Array, B: number, T: number, H: number, D: number) {
    const [out, dQ, dK, dV] = [0, 1, 2, 3].map(() => new Float64Array(q.length));
    const at = (b: number, t: number, h: number) => ((b * T + t) * H + h) * D; // (B, T, H, D) offset
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < H; h++) {
        for (let i = 0; i < T; i++) {
          const s = Array.from({ length: i + 1 }, (_, j) => {
            let d = 0;
            for (let e = 0; e < D; e++) d += q[at(b, i, h) + e] * k[at(b, j, h) + e];
            return d / Math.sqrt(D);
          });
          const mx = Math.max(...s), ex = s.map((x) => Math.exp(x - mx)), z = ex.reduce((a, x) => a + x, 0);
          const P = ex.map((x) => x / z);
          const dP = P.map((_, j) => {
            let d = 0;
            for (let e = 0; e < D; e++) d += dO[at(b, i, h) + e] * v[at(b, j, h) + e];
            return d;
          });
          const dot = P.reduce((a, pj, j) => a + pj * dP[j], 0);
          P.forEach((pj, j) => {
            const dS = (pj * (dP[j] - dot)) / Math.sqrt(D);
            for (let e = 0; e < D; e++) {
              out[at(b, i, h) + e] += pj * v[at(b, j, h) + e];
              dV[at(b, j, h) + e] += pj * dO[at(b, i, h) + e];
              dQ[at(b, i, h) + e] += dS * k[at(b, j, h) + e];
              dK[at(b, j, h) + e] += dS * q[at(b, i, h) + e];
            }
          });
        }
      }
    }
    return { out, dQ, dK, dV };
  }

  it('attention forward and backward, fused and composed, equal a naive causal attention', () => {
    const rng = new Rng(11);
    const [B, T, H, D] = [2, 5, 2, 3];
    const shape = [B, T, H, D];
    const raw = [0, 1, 2, 3].map(() => randn(rng, B * T * H * D, 1.5));
    const want = naiveAttention(raw[0], raw[1], raw[2], raw[3], B, T, H, D);
    const unfused = { ...be, fused: {} };
    for (const [label, back] of [['fused', be], ['composed', unfused]] as const) {
      const [q, k, v, dO] = raw.map((d) => up(d, shape));
      const f = attention(back, q, k, v);
      const g = f.saved.backward(dO);
      const got = { out: f.out, dQ: g.dQ, dK: g.dK, dV: g.dV };
      for (const key of ['out', 'dQ', 'dK', 'dV'] as const) {
        expect(got[key].shape, `${label} ${key}`).toEqual(shape);
        const d = got[key].store.data;
        want[key].forEach((x, i) => expect(Math.abs(d[i] - x), `${label} ${key}[${i}]`).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(x))));
      }
    }
    // A check of the oracle itself: causal, so the output at t = 0 is v at t = 0.
    for (let h = 0; h < H; h++) for (let e = 0; e < D; e++) expect(want.out[h * D + e]).toBeCloseTo(raw[2][h * D + e], 12);
  });
});

describe('handles', () => {
  it('reshape shares storage, dispose frees on the last handle, read copies', async () => {
    const t = up(Float32Array.of(1, 2, 3, 4, 5, 6), [2, 3]);
    const r = be.reshape(t, [3, 2]);
    expect(r.store).toBe(t.store);
    be.dispose(t);
    expect(Array.from(await be.read(r))).toEqual([1, 2, 3, 4, 5, 6]);
    be.dispose(r);
    await expect(be.read(r)).rejects.toThrow(UserError);
    const ints = be.uploadInt(Int32Array.of(3, -1), [2]);
    const back = await be.read(ints);
    expect(back).toBeInstanceOf(Float32Array);
    expect(Array.from(back)).toEqual([3, -1]);
    expect(Array.from(await be.read(be.zeros([2, 2])))).toEqual([0, 0, 0, 0]);
  });

  it('upload copies its input', async () => {
    const src = Float32Array.of(1, 2);
    const t = up(src, [2]);
    src[0] = 9;
    expect(Array.from(await be.read(t))).toEqual([1, 2]);
  });
});

describe('bad input throws UserError', () => {
  const f = (n: number, shape: number[]) => up(new Float32Array(n), shape);
  const cases: [string, () => unknown][] = [
    ['upload with wrong length', () => f(5, [2, 3])],
    ['reshape to a different size', () => be.reshape(f(6, [2, 3]), [4])],
    ['matmul inner dims', () => be.ops.matmul(f(6, [2, 3]), f(8, [4, 2]), false, false)],
    ['matmul 1-D a', () => be.ops.matmul(f(3, [3]), f(3, [3, 1]), false, false)],
    ['matmul leading dims', () => be.ops.matmul(f(12, [2, 2, 3]), f(18, [3, 3, 2]), false, false)],
    ['add shapes', () => be.ops.add(f(6, [2, 3]), f(6, [3, 2]))],
    ['normAct unknown variant', () => be.ops.normAct(f(4, [2, 2]), { variant: 'relu' as never, normN: 2 })],
    ['normAct normN ≤ 0', () => be.ops.normAct(f(4, [2, 2]), { variant: 'softmax', normN: 0 })],
    ['layerNorm weight shape', () => be.ops.layerNorm(f(6, [2, 3]), f(2, [2]), null, 1e-5)],
    ['rotary rank', () => be.ops.rotary(f(6, [2, 3]), { rotaryDim: 2, base: 1e4 }, false)],
    ['rotary odd rotaryDim', () => be.ops.rotary(f(8, [1, 2, 1, 4]), { rotaryDim: 3, base: 1e4 }, false)],
    ['rotary rotaryDim > D', () => be.ops.rotary(f(8, [1, 2, 1, 4]), { rotaryDim: 6, base: 1e4 }, false)],
    ['permute0213 rank', () => be.ops.permute0213(f(6, [2, 3]))],
    ['causalSoftmax not square', () => be.ops.causalSoftmax(f(6, [2, 3]), 1)],
    ['embedding id out of range', () => be.ops.embedding(be.uploadInt(Int32Array.of(0, 4), [1, 2]), f(8, [4, 2]))],
    ['embedding negative id', () => be.ops.embedding(be.uploadInt(Int32Array.of(-1), [1, 1]), f(8, [4, 2]))],
    ['embedding f32 ids', () => be.ops.embedding(f(2, [1, 2]), f(8, [4, 2]))],
    ['embeddingBackward id ≥ vocab', () => be.ops.embeddingBackward(be.uploadInt(Int32Array.of(5), [1, 1]), f(2, [1, 1, 2]), 4)],
    ['crossEntropy target out of range', () => be.ops.crossEntropy(f(6, [2, 3]), be.uploadInt(Int32Array.of(0, 3), [2]))],
    ['crossEntropy row count', () => be.ops.crossEntropy(f(6, [2, 3]), be.uploadInt(Int32Array.of(0), [1]))],
    ['adamw shape', () => be.ops.adamw(f(2, [2]), f(3, [3]), f(2, [2]), f(2, [2]), { lr: 1, beta1: 0.9, beta2: 0.9, eps: 1e-8, weightDecay: 0, step: 1, maxGradNorm: 0, gradScale: 1 }, null)],
    ['pattention d_in', () => pattention(be, f(6, [2, 3]), f(8, [4, 2]), f(8, [4, 2]), { variant: 'softmax', normN: 4 })],
    ['pattention n mismatch', () => pattention(be, f(6, [2, 3]), f(12, [4, 3]), f(6, [3, 2]), { variant: 'softmax', normN: 4 })],
    ['attention shapes', () => attention(be, f(8, [1, 2, 1, 4]), f(8, [1, 2, 1, 4]), f(8, [1, 1, 2, 4]))],
  ];
  for (const [name, fn] of cases) it(name, () => expect(fn).toThrow(UserError));

  it('use after dispose', () => {
    const t = f(4, [2, 2]);
    be.dispose(t);
    expect(() => be.ops.add(t, t)).toThrow(UserError);
  });

  it('out-of-range id message names the id and the range', () => {
    expect(() => be.ops.embedding(be.uploadInt(Int32Array.of(0, 9), [1, 2]), f(8, [4, 2])))
      .toThrow(/token id 9 at position 1 is out of range \[0, 4\)/);
  });
});
