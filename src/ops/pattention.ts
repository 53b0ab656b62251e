// Pattention(X; K, V), the fused CPU reference: token–parameter attention, with backward.
// Omits: any scale on S (the official layer has none), dropout, bias.
//
// Dimension legend: N = rows (tokens, B·T), dIn = input channels, n = parameter tokens,
// dOut = output channels. normN = the layer's normalization token count (spec/ops/norm_act.md).
//   S = X·Kᵀ      (N, n)
//   A = Θ(S)      (N, n)   row-wise
//   out = A·V     (N, dOut)
// Backward, in reverse:  dA = dOut·Vᵀ,  dV = Aᵀ·dOut,  dS = Θ'(S)ᵀdA,  dX = dS·K,  dK = dSᵀ·X.

import type { NormActParams, PattentionSizes } from '../backend.ts';
export type { PattentionSizes };
import { matmulBackward, matmulForward, type MatmulDims } from './matmul.ts';
import { normActBackward, normActForward } from './norm_act.ts';


/** What the backward needs from the forward. */
export interface PattentionCache {
  s: Float32Array; // (N, n) scores X·Kᵀ
  a: Float32Array; // (N, n) Θ(S)
}

function scoreDims(z: PattentionSizes): MatmulDims {
  // S (N, n) = X (N, dIn) · Kᵀ, K stored (n, dIn)
  return { batch: 1, M: z.N, K: z.dIn, N: z.n, transA: false, transB: true, bBatched: false };
}

function mixDims(z: PattentionSizes): MatmulDims {
  // out (N, dOut) = A (N, n) · V (n, dOut)
  return { batch: 1, M: z.N, K: z.n, N: z.dOut, transA: false, transB: false, bBatched: false };
}

/** out (N, dOut) = Θ(X·Kᵀ)·V. x: (N, dIn), k: (n, dIn), v: (n, dOut). */
export function pattentionForward(
  out: Float32Array, x: Float32Array, k: Float32Array, v: Float32Array,
  z: PattentionSizes, p: NormActParams,
): PattentionCache {
  const s = new Float32Array(z.N * z.n); // (N, n)
  const a = new Float32Array(z.N * z.n); // (N, n)
  matmulForward(s, x, k, scoreDims(z));
  normActForward(a, s, z.N, z.n, p);
  matmulForward(out, a, v, mixDims(z));
  return { s, a };
}

/** dX (N, dIn), dK (n, dIn), dV (n, dOut) from dOut (N, dOut); backward in reverse order. */
export function pattentionBackward(
  dX: Float32Array, dK: Float32Array, dV: Float32Array,
  dOut: Float32Array, x: Float32Array, k: Float32Array, v: Float32Array,
  cache: PattentionCache, z: PattentionSizes, p: NormActParams,
): void {
  const dA = new Float32Array(z.N * z.n); // (N, n)
  const dS = new Float32Array(z.N * z.n); // (N, n)
  matmulBackward(dA, dV, dOut, cache.a, v, mixDims(z));
  normActBackward(dS, dA, cache.s, z.N, z.n, p);
  matmulBackward(dX, dK, dS, x, k, scoreDims(z));
}
