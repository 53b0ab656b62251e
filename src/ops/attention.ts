// Fused causal multi-head attention reference, built on permute, matmul and causal softmax.
// Omits: rotary (applied by the caller before), dropout, KV caches, flash-style tiling.
//
// Dimension legend: B = batch, T = time, H = heads, D = head dim; scale = 1/√D.
//   q, k, v (B, T, H, D) → qh, kh, vh (B, H, T, D)
//   S = qh·khᵀ (B·H, T, T),  P = causalSoftmax(scale·S),  oh = P·vh (B, H, T, D)
//   out = oh → (B, T, H, D)
// Backward, in reverse: dP = doh·vhᵀ, dvh = Pᵀ·doh, dS = softmax', dqh = dS·kh, dkh = dSᵀ·qh.

import type { AttentionSizes } from '../backend.ts';
export type { AttentionSizes };
import { causalSoftmaxBackward, causalSoftmaxForward } from './causal_softmax.ts';
import { matmulBackward, matmulForward, type MatmulDims } from './matmul.ts';
import { permute0213Forward } from './permute.ts';


export interface AttentionCache {
  p: Float32Array; // (B, H, T, T) attention probabilities
}

function scoreDims(z: AttentionSizes): MatmulDims {
  // S (BH, T, T) = qh (BH, T, D) · khᵀ
  return { batch: z.B * z.H, M: z.T, K: z.D, N: z.T, transA: false, transB: true, bBatched: true };
}

function mixDims(z: AttentionSizes): MatmulDims {
  // oh (BH, T, D) = P (BH, T, T) · vh (BH, T, D)
  return { batch: z.B * z.H, M: z.T, K: z.T, N: z.D, transA: false, transB: false, bBatched: true };
}

/** (B, T, H, D) → (B, H, T, D). */
function toHeads(x: Float32Array, z: AttentionSizes): Float32Array {
  const out = new Float32Array(x.length);
  permute0213Forward(out, x, z.B, z.T, z.H, z.D);
  return out;
}

/** (B, H, T, D) → out (B, T, H, D). */
function fromHeads(out: Float32Array, xh: Float32Array, z: AttentionSizes): void {
  permute0213Forward(out, xh, z.B, z.H, z.T, z.D);
}

/** out (B, T, H, D) = causal attention of q, k, v (B, T, H, D). */
export function attentionForward(
  out: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array, z: AttentionSizes,
): AttentionCache {
  const G = z.B * z.H;
  const s = new Float32Array(G * z.T * z.T); // (BH, T, T)
  const p = new Float32Array(G * z.T * z.T); // (BH, T, T)
  const oh = new Float32Array(out.length); // (B, H, T, D)
  matmulForward(s, toHeads(q, z), toHeads(k, z), scoreDims(z));
  causalSoftmaxForward(p, s, G, z.T, 1 / Math.sqrt(z.D));
  matmulForward(oh, p, toHeads(v, z), mixDims(z));
  fromHeads(out, oh, z);
  return { p };
}

/** dQ, dK, dV (B, T, H, D) from dOut (B, T, H, D); backward in reverse order. */
export function attentionBackward(
  dQ: Float32Array, dK: Float32Array, dV: Float32Array,
  dOut: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array,
  cache: AttentionCache, z: AttentionSizes,
): void {
  const G = z.B * z.H;
  const dP = new Float32Array(G * z.T * z.T); // (BH, T, T)
  const dS = new Float32Array(G * z.T * z.T); // (BH, T, T)
  const dqh = new Float32Array(q.length), dkh = new Float32Array(k.length); // (B, H, T, D)
  const dvh = new Float32Array(v.length); // (B, H, T, D)
  matmulBackward(dP, dvh, toHeads(dOut, z), cache.p, toHeads(v, z), mixDims(z));
  causalSoftmaxBackward(dS, dP, cache.p, G, z.T, 1 / Math.sqrt(z.D));
  matmulBackward(dqh, dkh, dS, toHeads(q, z), toHeads(k, z), scoreDims(z));
  fromHeads(dQ, dqh, z);
  fromHeads(dK, dkh, z);
  fromHeads(dV, dvh, z);
}
