// Property tests of op semantics: Pattention symmetry and growth, Θ conventions, rotary
// relativity, causal softmax and attention structure, LayerNorm moments, matmul vs naive.
// Omits: backward checks (vjp.test.ts) and the backend layer (cpu_backend.test.ts).

import { describe, expect, it } from 'vitest';
import { fc, test } from '@fast-check/vitest';
import { VARIANTS, type NormActParams } from '../../src/backend.ts';
import { Rng } from '../../src/rng.ts';
import { attentionForward } from '../../src/ops/attention.ts';
import { causalSoftmaxForward } from '../../src/ops/causal_softmax.ts';
import { gelu } from '../../src/ops/gelu.ts';
import { layerNormForward } from '../../src/ops/layernorm.ts';
import { matmulForward } from '../../src/ops/matmul.ts';
import { normActBackward, normActForward } from '../../src/ops/norm_act.ts';
import { pattentionForward } from '../../src/ops/pattention.ts';
import { rotaryForward } from '../../src/ops/rotary.ts';
import { randn } from './fd.ts';

const seed = fc.integer({ min: 0, max: 2 ** 31 - 1 });
const dim = (max: number) => fc.integer({ min: 1, max });
const variant = fc.constantFrom(...VARIANTS);

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, rtol: number, atol: number, what: string): void {
  expect(got.length, what).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    if (!(d <= atol + rtol * Math.abs(want[i]))) {
      expect.fail(`${what}[${i}]: got ${got[i]}, want ${want[i]}`);
    }
  }
}

function pattention(x: Float32Array, k: Float32Array, v: Float32Array, N: number, dIn: number, n: number, dOut: number, p: NormActParams) {
  const out = new Float32Array(N * dOut);
  pattentionForward(out, x, k, v, { N, dIn, n, dOut }, p);
  return out;
}

describe('Pattention', () => {
  test.prop([seed, dim(4), dim(5), dim(7), dim(4), variant])(
    'jointly permuting the rows of K and V leaves the output unchanged',
    (s, N, dIn, n, dOut, vr) => {
      const rng = new Rng(s);
      const x = randn(rng, N * dIn), k = randn(rng, n * dIn), v = randn(rng, n * dOut);
      const perm = Array.from({ length: n }, (_, i) => i);
      rng.shuffle(perm);
      const kp = new Float32Array(k.length), vp = new Float32Array(v.length);
      perm.forEach((src, dst) => {
        kp.set(k.subarray(src * dIn, src * dIn + dIn), dst * dIn);
        vp.set(v.subarray(src * dOut, src * dOut + dOut), dst * dOut);
      });
      const p = { variant: vr, normN: n };
      // Only the summation order changes: equal up to float64 reassociation + one rounding.
      expectClose(pattention(x, kp, vp, N, dIn, n, dOut, p), pattention(x, k, v, N, dIn, n, dOut, p), 1e-6, 1e-7, 'out');
    },
  );

  test.prop([seed, dim(4), dim(5), dim(6), dim(4), dim(3), fc.constantFrom('l2_norm_gelu', 'gelu_l2_norm' as const)])(
    'appending zero key tokens (any values) with normN fixed leaves the output unchanged',
    (s, N, dIn, n, dOut, extra, vr) => {
      const rng = new Rng(s);
      const x = randn(rng, N * dIn), k = randn(rng, n * dIn), v = randn(rng, n * dOut);
      const kBig = new Float32Array((n + extra) * dIn); // new key rows are 0
      kBig.set(k);
      const vBig = new Float32Array([...v, ...randn(rng, extra * dOut)]);
      const p = { variant: vr, normN: n };
      const want = pattention(x, k, v, N, dIn, n, dOut, p);
      expectClose(pattention(x, kBig, vBig, N, dIn, n + extra, dOut, p), want, 1e-6, 1e-7, 'grown out');
    },
  );
});

describe('Θ (norm_act)', () => {
  function theta(s: number[], p: NormActParams): Float32Array {
    const a = new Float32Array(s.length);
    normActForward(a, Float32Array.from(s), 1, s.length, p);
    return a;
  }

  test.prop([seed, dim(9), fc.integer({ min: 1, max: 50 })])('matches the defining formulas with normN, not n', (s, n, normN) => {
    const rng = new Rng(s);
    const x = Array.from(randn(rng, n, 3));
    const norm = (r: number[]) => Math.sqrt(r.reduce((a, b) => a + b * b, 0));
    const l2 = x.map((xi) => gelu((xi / norm(x)) * Math.sqrt(normN)));
    const g = x.map(gelu);
    const gl = g.map((gi) => (gi / norm(g)) * Math.sqrt(normN));
    const mx = Math.max(...x), z = x.reduce((a, b) => a + Math.exp(b - mx), 0);
    const sm = x.map((xi) => (normN * Math.exp(xi - mx)) / z);
    expectClose(theta(x, { variant: 'l2_norm_gelu', normN }), l2, 1e-6, 1e-7, 'l2_norm_gelu');
    expectClose(theta(x, { variant: 'gelu_l2_norm', normN }), gl, 1e-6, 1e-7, 'gelu_l2_norm');
    expectClose(theta(x, { variant: 'softmax', normN }), sm, 1e-6, 1e-7, 'softmax');
  });

  it('a zero-norm row maps to 0 with zero gradient (l2 variants); softmax is uniform', () => {
    for (const vr of ['l2_norm_gelu', 'gelu_l2_norm'] as const) {
      const p = { variant: vr, normN: 4 };
      expect(Array.from(theta([0, 0, 0, 0], p))).toEqual([0, 0, 0, 0]);
      const dS = new Float32Array(4);
      normActBackward(dS, Float32Array.of(1, -2, 3, 4), new Float32Array(4), 1, 4, p);
      expect(Array.from(dS)).toEqual([0, 0, 0, 0]);
    }
    // gelu underflows to exactly 0 for very negative scores: PyTorch gives NaN, we give 0.
    expect(theta([-60, -70], { variant: 'gelu_l2_norm', normN: 2 }).every((a) => a === 0)).toBe(true);
    expectClose(theta([0, 0, 0, 0], { variant: 'softmax', normN: 6 }), [1.5, 1.5, 1.5, 1.5], 1e-7, 0, 'softmax');
  });

  test.prop([seed, dim(9), fc.integer({ min: 1, max: 50 })])('softmax rows sum to normN and stay finite for huge scores', (s, n, normN) => {
    const rng = new Rng(s);
    const x = Array.from(randn(rng, n, 1e4));
    const a = theta(x, { variant: 'softmax', normN });
    expect(a.every(Number.isFinite)).toBe(true);
    expect(Math.abs(a.reduce((t, b) => t + b, 0) - normN)).toBeLessThan(1e-5 * normN);
  });

  test.prop([seed, dim(9), fc.integer({ min: 1, max: 50 })])('gelu_l2_norm rows have L2 norm √normN', (s, n, normN) => {
    const a = theta(Array.from(randn(new Rng(s), n, 2)), { variant: 'gelu_l2_norm', normN });
    const nrm = Math.sqrt(a.reduce((t, b) => t + b * b, 0));
    if (nrm > 0) expect(Math.abs(nrm - Math.sqrt(normN))).toBeLessThan(1e-5 * Math.sqrt(normN));
  });
});

describe('rotary', () => {
  /** Rotates vector x (H·D) as if it sat at position t, returns the rotated copy. */
  function rotAt(x: Float32Array, t: number, H: number, D: number, rotaryDim: number): Float32Array {
    const T = t + 1, inp = new Float32Array(T * H * D), out = new Float32Array(T * H * D);
    inp.set(x, t * H * D);
    rotaryForward(out, inp, { B: 1, T, H, D, offset: 0 }, { rotaryDim, base: 10000 }, false);
    return out.subarray(t * H * D);
  }

  test.prop([seed, dim(3), fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 8 }), fc.nat(40), fc.nat(40), fc.nat(40)])(
    '⟨rot(q, t+s), rot(k, u+s)⟩ = ⟨rot(q, t), rot(k, u)⟩ per head; other dims pass through',
    (sd, H, halfD, halfR, t, u, sh) => {
      const rng = new Rng(sd);
      const D = 2 * halfD, rd = 2 * Math.min(halfR, halfD);
      const q = randn(rng, H * D), k = randn(rng, H * D);
      const [q0, k0, q1, k1] = [rotAt(q, t, H, D, rd), rotAt(k, u, H, D, rd), rotAt(q, t + sh, H, D, rd), rotAt(k, u + sh, H, D, rd)];
      for (let h = 0; h < H; h++) {
        let d0 = 0, d1 = 0, scale = 0;
        for (let j = h * D; j < h * D + rd; j++) {
          d0 += q0[j] * k0[j];
          d1 += q1[j] * k1[j];
          scale += Math.abs(q[j] * k[j]);
        }
        expect(Math.abs(d1 - d0), `head ${h}`).toBeLessThanOrEqual(1e-5 * scale + 1e-6);
        for (let j = h * D + rd; j < h * D + D; j++) expect(q1[j]).toBe(q[j]);
      }
    },
  );

  it('matches x·cos + rotate_half(x)·sin at a known angle', () => {
    // D = 4, rotaryDim = 4, base 10000: inv_freq = [1, 1/100]; position 1.
    const y = rotAt(Float32Array.of(1, 2, 3, 4), 1, 1, 4, 4);
    const [c0, s0, c1, s1] = [Math.cos(1), Math.sin(1), Math.cos(0.01), Math.sin(0.01)];
    expectClose(y, [1 * c0 - 3 * s0, 2 * c1 - 4 * s1, 3 * c0 + 1 * s0, 4 * c1 + 2 * s1], 1e-6, 1e-7, 'y');
  });
});

describe('causal softmax and attention', () => {
  test.prop([seed, dim(3), dim(7), fc.double({ min: 0.01, max: 100, noNaN: true })])(
    'rows sum to 1 over j ≤ i and are exactly 0 above the diagonal',
    (s, G, T, scale) => {
      const x = randn(new Rng(s), G * T * T, 10);
      const p = new Float32Array(x.length);
      causalSoftmaxForward(p, x, G, T, scale);
      for (let r = 0; r < G * T; r++) {
        const i = r % T;
        let sum = 0;
        for (let j = 0; j < T; j++) {
          if (j > i) expect(p[r * T + j]).toBe(0);
          else sum += p[r * T + j];
        }
        expect(Math.abs(sum - 1)).toBeLessThan(1e-6);
      }
    },
  );

  test.prop([seed, dim(2), fc.integer({ min: 2, max: 6 }), dim(2), dim(4)])(
    'output at ≤ t ignores q, k, v after t; position 0 copies v',
    (s, B, T, H, D) => {
      const rng = new Rng(s);
      const len = B * T * H * D, q = randn(rng, len), k = randn(rng, len), v = randn(rng, len);
      const t = rng.int(T - 1); // change positions t+1…T−1
      const [q2, k2, v2] = [q, k, v].map((a) => a.slice());
      for (let b = 0; b < B; b++) {
        for (let i = ((b * T + t + 1) * H) * D; i < (b + 1) * T * H * D; i++) {
          q2[i] += 1; k2[i] -= 2; v2[i] *= 3;
        }
      }
      const o1 = new Float32Array(len), o2 = new Float32Array(len);
      attentionForward(o1, q, k, v, { B, T, H, D });
      attentionForward(o2, q2, k2, v2, { B, T, H, D });
      for (let b = 0; b < B; b++) {
        const lo = b * T * H * D, hi = lo + (t + 1) * H * D;
        expect(Array.from(o2.subarray(lo, hi))).toEqual(Array.from(o1.subarray(lo, hi)));
        expect(Array.from(o1.subarray(lo, lo + H * D))).toEqual(Array.from(v.subarray(lo, lo + H * D)));
      }
    },
  );
});

describe('layerNorm and matmul', () => {
  test.prop([seed, dim(4), fc.integer({ min: 2, max: 16 })])('LN₀ rows have mean 0 and biased variance var/(var+eps)', (s, rows, C) => {
    const x = randn(new Rng(s), rows * C, 3), y = new Float32Array(rows * C), eps = 1e-5;
    const { mean, rstd } = layerNormForward(y, x, null, null, rows, C, eps);
    for (let r = 0; r < rows; r++) {
      const yr = Array.from(y.subarray(r * C, r * C + C));
      const m = yr.reduce((a, b) => a + b, 0) / C;
      const v = yr.reduce((a, b) => a + b * b, 0) / C;
      const varX = 1 / rstd[r] ** 2 - eps;
      expect(Math.abs(m)).toBeLessThan(1e-6);
      expect(Math.abs(v - varX / (varX + eps))).toBeLessThan(1e-5);
      expect(Math.abs(mean[r] - x.subarray(r * C, r * C + C).reduce((a, b) => a + b, 0) / C)).toBeLessThan(1e-5);
    }
  });

  test.prop([seed, dim(3), dim(6), dim(6), dim(6), fc.boolean(), fc.boolean(), fc.boolean()])(
    'matmul equals the naive triple loop for every transpose',
    (s, batch, M, K, N, transA, transB, bBatched) => {
      const rng = new Rng(s);
      const a = randn(rng, batch * M * K), b = randn(rng, (bBatched ? batch : 1) * K * N);
      const c = new Float32Array(batch * M * N);
      matmulForward(c, a, b, { batch, M, K, N, transA, transB, bBatched });
      const want: number[] = [];
      for (let t = 0; t < batch; t++) {
        const ao = t * M * K, bo = bBatched ? t * K * N : 0;
        for (let i = 0; i < M; i++) {
          for (let j = 0; j < N; j++) {
            let acc = 0;
            for (let kk = 0; kk < K; kk++) {
              acc += a[ao + (transA ? kk * M + i : i * K + kk)] * b[bo + (transB ? j * K + kk : kk * N + j)];
            }
            want.push(Math.fround(acc));
          }
        }
      }
      expect(Array.from(c)).toEqual(want);
    },
  );
});
