// Fused Pattention for GPU.js, forward and backward: the composed math of src/compose.ts,
// but saving Θ's row statistic so the backward skips recomputing it. Its sizes come checked
// (FUSED_SPECS.pattention, src/op-specs.ts); nothing here validates.
// Omits: a single-kernel Pattention. GPU.js kernels have no shared memory and write one
// value per thread, so each row reduction of Θ must be its own launch; computing Θ inside
// the A·V loop instead would evaluate one GELU per multiply-add (dOut times the work).
//
// Dimension legend: N = rows, dIn, n = parameter tokens, dOut (src/ops/pattention.ts).
//   S = X·Kᵀ (N, n),  st = Θ's row statistic (N),  A = Θ(S) (N, n),  out = A·V (N, dOut)
// Backward, in reverse:  dA = dOut·Vᵀ,  dV = Aᵀ·dOut,  dS = Θ'(S; st)ᵀdA,  dX = dS·K,
// dK = dSᵀ·X. Saved: { s, a, st }; the backward disposes them, like the composed fallback.
// Every tensor is one flat value (../runtime.ts), so x and dOut are read as (N, ·) matrices
// as they are, with no reshaped views.

import type { PattentionPair } from '../../../src/define-backend.ts';
import type { GHandle, Runtime } from '../runtime.ts';
import { matmul, matmul2d } from './linalg.ts';
import { normActApply, normActGrad, normActStat } from './normact.ts';

/** What the forward keeps for the backward. */
export interface PattentionSaved {
  /** S = X·Kᵀ, the scores. (N, n) */
  s: GHandle;
  /** A = Θ(S). (N, n) */
  a: GHandle;
  /** Θ's row statistic of S: c for the L2 variants, lse for softmax. (N) */
  st: GHandle;
}

export function pattentionPair(rt: Runtime): PattentionPair<GHandle, PattentionSaved> {
  return {
    forward(z, x, k, v, p) {
      const s = matmul(rt, matmul2d(z.N, z.dIn, z.n, false, true), x, k); // (N, n)
      const st = normActStat(rt, s, z.N, z.n, p); // (N)
      const a = normActApply(rt, s, st, z.n, p); // (N, n)
      const out = matmul(rt, { ...matmul2d(z.N, z.n, z.dOut, false, false), out: z.out }, a, v); // (..., dOut)
      return { out, saved: { s, a, st } };
    },
    backward(z, dOut, { s, a, st }, x, k, v, p) {
      const dA = matmul(rt, matmul2d(z.N, z.dOut, z.n, false, true), dOut, v); // (N, n) = dOut·Vᵀ
      const dV = matmul(rt, matmul2d(z.n, z.N, z.dOut, true, false), a, dOut); // (n, dOut) = Aᵀ·dOut
      rt.dispose(a);
      const dS = normActGrad(rt, s, dA, st, z.N, z.n, p); // (N, n)
      for (const t of [dA, s, st]) rt.dispose(t);
      const dX = matmul(rt, { ...matmul2d(z.N, z.n, z.dIn, false, false), out: x.shape }, dS, k); // (..., dIn) = dS·K
      const dK = matmul(rt, matmul2d(z.n, z.N, z.dIn, true, false), dS, x); // (n, dIn) = dSᵀ·X
      rt.dispose(dS);
      return { dX, dK, dV };
    },
    release({ s, a, st }) {
      for (const t of [s, a, st]) rt.dispose(t);
    },
  };
}
