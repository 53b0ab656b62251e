// Fused Pattention, forward and backward (spec/ops/pattention.md):
//   forward:  S = X·Kᵀ (N, n);  st = row stats of S;  out = Θ(S)·V with Θ applied in the
//             matmul's A-load from st — the activation A = Θ(S) is never written. On
//             CPU-emulated adapters (rowcast matmul, no prologue) Θ(S) is materialized by one
//             row kernel instead, which is cheaper there than re-evaluating GELU per load.
//   backward: dV = Θ(S)ᵀ·dOut (Θ again in the load), dA = dOut·Vᵀ, dS = Θ'(S)ᵀdA (row kernel),
//             dX = dS·K, dK = dSᵀ·X. Saved: S and st, freed by the backward.
// Omits: fusing the row stats into the S matmul's epilogue (it would need cross-tile sums).

import type { NormActParams, Saved } from '../../../src/backend.ts';
import { check } from '../../../src/errors.ts';
import type { GHandle } from '../buffers.ts';
import type { Env } from './common.ts';
import { hasPrologue, matmulInto } from './matmul.ts';
import { checkNormAct, normAct, normActBackward, normActStats } from './normact.ts';

/** The row-stats tensors saved by the prologue path (vs a materialized Θ(S)). */
const statsHandles = new WeakSet<GHandle>();

/** x: [..., dIn] (N rows), k: [n, dIn], v: [n, dOut]. */
function sizes(x: GHandle, k: GHandle, v: GHandle, p: NormActParams) {
  checkNormAct(p, 'pattention');
  check(x.shape.length >= 1 && k.shape.length === 2 && v.shape.length === 2,
    `pattention: want x [..., d_in], k [n, d_in], v [n, d_out], got [${x.shape}], [${k.shape}], [${v.shape}]`);
  const dIn = x.shape[x.shape.length - 1], [n, kIn] = k.shape, [nv, dOut] = v.shape;
  check(kIn === dIn && nv === n, `pattention: x [${x.shape}], k [${k.shape}], v [${v.shape}] do not fit`);
  return { N: dIn === 0 ? 0 : x.size / dIn, dIn, n, dOut };
}

/** out (N, dOut) = Θ(x·kᵀ)·v. */
export function pattention(
  env: Env, x: GHandle, k: GHandle, v: GHandle, p: NormActParams,
): { out: GHandle; saved: Saved<GHandle> } {
  const { N, dIn, n, dOut } = sizes(x, k, v, p);
  const s = env.mem.alloc([N, n]); // (N, n) scores
  matmulInto(env, s, x, k, { batch: 1, M: N, K: dIn, N: n, transA: false, transB: true, bBatched: false });
  const out = env.mem.alloc([...x.shape.slice(0, -1), dOut]);
  const mix = { batch: 1, M: N, K: n, N: dOut, transA: false, transB: false, bBatched: false };
  // The prologue needs whole bindings; over the limit Θ(S) is materialized (split matmuls).
  if (!hasPrologue(env) || ![s, v, out].every((t) => env.mem.fits(t))) {
    const a = normAct(env, s, p); // (N, n) Θ(S), materialized
    matmulInto(env, out, a, v, mix);
    return { out, saved: { tensors: [s, a] } };
  }
  const st = normActStats(env, s, p); // (N, 2)
  statsHandles.add(st);
  matmulInto(env, out, s, v, mix, p.variant, st);
  return { out, saved: { tensors: [s, st] } };
}

/** dX (N, dIn), dK (n, dIn), dV (n, dOut) from dOut (N, dOut); in reverse order of forward. */
export function pattentionBackward(
  env: Env, dOut: GHandle, x: GHandle, k: GHandle, v: GHandle, saved: Saved<GHandle>, p: NormActParams,
): { dX: GHandle; dK: GHandle; dV: GHandle } {
  const { N, dIn, n, dOut: dO } = sizes(x, k, v, p);
  check(dOut.size === N * dO, `pattentionBackward: dOut [${dOut.shape}] does not match ${N} rows × ${dO}`);
  check(saved.tensors.length === 2, `pattentionBackward: saved state has ${saved.tensors.length} tensors, expected 2`);
  const [s, st] = saved.tensors; // st: row stats of S, or Θ(S) itself when materialized
  const mem = env.mem;
  const dV = mem.alloc([n, dO]); // Θ(S)ᵀ (n, N) · dOut (N, dO)
  const mixT = { batch: 1, M: n, K: N, N: dO, transA: true, transB: false, bBatched: false };
  if (statsHandles.has(st)) matmulInto(env, dV, s, dOut, mixT, p.variant, st);
  else matmulInto(env, dV, st, dOut, mixT);
  mem.dispose(st);
  const dA = mem.alloc([N, n]); // dOut (N, dO) · Vᵀ
  matmulInto(env, dA, dOut, v, { batch: 1, M: N, K: dO, N: n, transA: false, transB: true, bBatched: false });
  const dS = normActBackward(env, s, dA, p); // (N, n)
  mem.dispose(dA);
  mem.dispose(s);
  const dX = mem.alloc(x.shape); // dS (N, n) · K (n, dIn)
  matmulInto(env, dX, dS, k, { batch: 1, M: N, K: n, N: dIn, transA: false, transB: false, bBatched: false });
  const dK = mem.alloc([n, dIn]); // dSᵀ (n, N) · X (N, dIn)
  matmulInto(env, dK, dS, x, { batch: 1, M: n, K: N, N: dIn, transA: true, transB: false, bBatched: false });
  mem.dispose(dS);
  return { dX, dK, dV };
}
