// Fused Pattention, forward and backward (spec/ops/pattention.md), as one typed pair:
//   forward:  S = X·Kᵀ (N, n);  st = row stats of S;  out = Θ(S)·V with Θ applied in the
//             matmul's A-load from st — the activation A = Θ(S) is never written. On
//             CPU-emulated adapters (rowcast matmul, no prologue) Θ(S) is materialized by one
//             row kernel instead, which is cheaper there than re-evaluating GELU per load.
//   backward: dV = Θ(S)ᵀ·dOut (Θ again in the load), dA = dOut·Vᵀ, dS = Θ'(S)ᵀdA (row kernel),
//             dX = dS·K, dK = dSᵀ·X. Saved: S and either st or Θ(S), freed by the backward.
// The sizes come checked from FUSED_SPECS.pattention (src/op-specs.ts); nothing here validates.
// Omits: fusing the row stats into the S matmul's epilogue (it would need cross-tile sums).

import type { MatmulDims, RowSizes } from '../../../src/backend.ts';
import type { PattentionPair } from '../../../src/define-backend.ts';
import type { GHandle } from '../buffers.ts';
import type { Env } from './common.ts';
import { hasPrologue, matmulInto } from './matmul.ts';
import { normAct, normActBackward, normActStats } from './normact.ts';

/** What the forward keeps: S (N, n) and its row stats st (N, 2) for the Θ prologue, or Θ(S)
 *  (N, n) itself where the prologue does not apply. */
export type PattentionSaved =
  | { kind: 'stats'; s: GHandle; st: GHandle }
  | { kind: 'materialized'; s: GHandle; a: GHandle };

/** A plain (batch 1) product's dims. */
function mm(M: number, K: number, N: number, transA: boolean, transB: boolean): MatmulDims {
  return { batch: 1, M, K, N, transA, transB, bBatched: false };
}

export function pattentionPair(env: Env): PattentionPair<GHandle, PattentionSaved> {
  const { mem } = env;
  return {
    /** out (N, dOut) = Θ(x·kᵀ)·v. */
    forward(z, x, k, v, p) {
      const { N, dIn, n, dOut } = z;
      const rows: RowSizes = { rows: N, n, out: [N, n] };
      const s = mem.alloc([N, n]); // (N, n) scores
      matmulInto(env, s, x, k, mm(N, dIn, n, false, true));
      const out = mem.alloc(z.out);
      const mix = mm(N, n, dOut, false, false);
      // The prologue needs whole bindings; over the limit Θ(S) is materialized (split matmuls).
      if (!hasPrologue(env) || ![s, v, out].every((t) => mem.fits(t))) {
        const a = normAct(env, rows, s, p); // (N, n) Θ(S), materialized
        matmulInto(env, out, a, v, mix);
        return { out, saved: { kind: 'materialized', s, a } };
      }
      const st = normActStats(env, rows, s, p); // (N, 2)
      matmulInto(env, out, s, v, mix, p.variant, st);
      return { out, saved: { kind: 'stats', s, st } };
    },

    /** dX (N, dIn), dK (n, dIn), dV (n, dOut) from dOut (N, dOut); in reverse order of forward. */
    backward(z, dOut, saved, x, k, v, p) {
      const { N, dIn, n, dOut: dO } = z;
      const { s } = saved;
      const dV = mem.alloc([n, dO]); // Θ(S)ᵀ (n, N) · dOut (N, dO)
      const mixT = mm(n, N, dO, true, false);
      if (saved.kind === 'stats') {
        matmulInto(env, dV, s, dOut, mixT, p.variant, saved.st);
        mem.dispose(saved.st);
      } else {
        matmulInto(env, dV, saved.a, dOut, mixT);
        mem.dispose(saved.a);
      }
      const dA = mem.alloc([N, n]); // dOut (N, dO) · Vᵀ
      matmulInto(env, dA, dOut, v, mm(N, dO, n, false, true));
      const dS = normActBackward(env, { rows: N, n, out: [N, n] }, s, dA, p); // (N, n)
      mem.dispose(dA);
      mem.dispose(s);
      const dX = mem.alloc(x.shape); // dS (N, n) · K (n, dIn)
      matmulInto(env, dX, dS, k, mm(N, n, dIn, false, false));
      const dK = mem.alloc([n, dIn]); // dSᵀ (n, N) · X (N, dIn)
      matmulInto(env, dK, dS, x, mm(n, N, dIn, true, false));
      mem.dispose(dS);
      return { dX, dK, dV };
    },

    release(saved) {
      mem.dispose(saved.s);
      mem.dispose(saved.kind === 'stats' ? saved.st : saved.a);
    },
  };
}
