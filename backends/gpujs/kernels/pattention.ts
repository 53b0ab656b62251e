// Fused Pattention for GPU.js, forward and backward: the composed math of src/compose.ts,
// but saving Θ's row statistic so the backward skips recomputing it.
// Omits: a single-kernel Pattention. GPU.js kernels have no shared memory and write one
// value per thread, so each row reduction of Θ must be its own launch; computing Θ inside
// the A·V loop instead would evaluate one GELU per multiply-add (dOut times the work).
//
// Dimension legend: N = rows, dIn, n = parameter tokens, dOut (src/ops/pattention.ts).
//   S = X·Kᵀ (N, n),  st = Θ's row statistic (N),  A = Θ(S) (N, n),  out = A·V (N, dOut)
// Backward, in reverse:  dA = dOut·Vᵀ,  dV = Aᵀ·dOut,  dS = Θ'(S; st)ᵀdA,  dX = dS·K,
// dK = dSᵀ·X. Saved: [S, A, st]; the backward disposes them, like the composed fallback.

import type { NormActParams, Saved } from '../../../src/backend.ts';
import { check } from '../../../src/errors.ts';
import type { GHandle, Runtime } from '../runtime.ts';
import { checkNormAct, expectShape, pattentionSizes } from '../shapes.ts';
import { matmul } from './linalg.ts';
import { normActApply, normActGrad, normActStat } from './normact.ts';

/** A 2-D [rows, cols] view of t (its own handle; dispose it). */
function view2(rt: Runtime, t: GHandle, rows: number, cols: number): GHandle {
  return rt.reshape(t, [rows, cols]);
}

export function pattention(rt: Runtime, x: GHandle, k: GHandle, v: GHandle, p: NormActParams) {
  const z = pattentionSizes(x, k, v);
  checkNormAct(p, 'pattention');
  const outShape = [...x.shape.slice(0, -1), z.dOut];
  const x2 = view2(rt, x, z.N, z.dIn);
  const s = matmul(rt, x2, k, false, true); // (N, n)
  rt.dispose(x2);
  const st = normActStat(rt, s, z.N, z.n, p); // (N)
  const a = normActApply(rt, s, st, z.n, p); // (N, n)
  const out2 = matmul(rt, a, v, false, false); // (N, dOut)
  const out = rt.reshape(out2, outShape);
  rt.dispose(out2);
  const saved: Saved<GHandle> = { tensors: [s, a, st] };
  return { out, saved };
}

export function pattentionBackward(
  rt: Runtime, dOut: GHandle, x: GHandle, k: GHandle, v: GHandle, saved: Saved<GHandle>,
  p: NormActParams,
) {
  const z = pattentionSizes(x, k, v);
  checkNormAct(p, 'pattentionBackward');
  expectShape(dOut, [...x.shape.slice(0, -1), z.dOut], 'pattentionBackward dOut');
  check(saved.tensors.length === 3, `pattentionBackward: saved state has ${saved.tensors.length} tensors, expected 3`);
  const [s, a, st] = saved.tensors;
  const d2 = view2(rt, dOut, z.N, z.dOut), x2 = view2(rt, x, z.N, z.dIn);
  const dA = matmul(rt, d2, v, false, true); // (N, n) = dOut·Vᵀ
  const dV = matmul(rt, a, d2, true, false); // (n, dOut) = Aᵀ·dOut
  rt.dispose(a);
  rt.dispose(d2);
  const dS = normActGrad(rt, s, dA, st, z.N, z.n, p); // (N, n)
  for (const t of [dA, s, st]) rt.dispose(t);
  const dX2 = matmul(rt, dS, k, false, false); // (N, dIn) = dS·K
  const dK = matmul(rt, dS, x2, true, false); // (n, dIn) = dSᵀ·X
  rt.dispose(dS);
  rt.dispose(x2);
  const dX = rt.reshape(dX2, x.shape);
  rt.dispose(dX2);
  return { dX, dK, dV };
}
