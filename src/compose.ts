// Pattention and causal attention, forward and backward, from the primitive kernels. The
// model calls these; they check the arguments once (FUSED_SPECS, src/op-specs.ts), then run
// the backend's fused kernel when it has one, else the composition below.
// Omits: memory planning beyond freeing each intermediate as soon as backward is done with it.

import type {
  AttentionGrads, Backend, Fused, Handle, NormActParams, PattentionGrads,
} from './backend.ts';
import { savedOnce } from './define-backend.ts';
import { FUSED_SPECS } from './op-specs.ts';

/** out = Θ(x·kᵀ)·v. x: (N, d_in), k: (n, d_in), v: (n, d_out) → (N, d_out). */
export function pattention<T extends Handle>(
  be: Backend<T>, x: T, k: T, v: T, p: NormActParams,
): Fused<T, PattentionGrads<T>> {
  const z = FUSED_SPECS.pattention(x, k, v, p);
  if (be.fused.pattention) return be.fused.pattention(z, x, k, v, p);
  const s = be.ops.matmul(x, k, false, true); // (N, n) scores
  const a = be.ops.normAct(s, p); // (N, n) Θ(scores)
  const out = be.ops.matmul(a, v, false, false); // (N, d_out)
  const release = (): void => {
    be.dispose(s);
    be.dispose(a);
  };
  // Backward, in reverse order; frees what the forward saved.
  const backward = (dOut: T): PattentionGrads<T> => {
    const dV = be.ops.matmul(a, dOut, true, false); // (n, d_out) = aᵀ·dOut
    const dA = be.ops.matmul(dOut, v, false, true); // (N, n) = dOut·vᵀ
    be.dispose(a);
    const dS = be.ops.normActBackward(s, dA, p); // (N, n)
    be.dispose(dA);
    be.dispose(s);
    const dX = be.ops.matmul(dS, k, false, false); // (N, d_in) = dS·k
    const dK = be.ops.matmul(dS, x, true, false); // (n, d_in) = dSᵀ·x
    be.dispose(dS);
    return { dX, dK, dV };
  };
  return { out, saved: savedOnce('pattentionBackward', z.out, [x, k, v], { backward, release }) };
}

/** Causal attention with scale 1/√D. q, k, v: (B, T, H, D) → (B, T, H, D). */
export function attention<T extends Handle>(be: Backend<T>, q: T, k: T, v: T): Fused<T, AttentionGrads<T>> {
  const z = FUSED_SPECS.attention(q, k, v);
  if (be.fused.attention) return be.fused.attention(z, q, k, v);
  const scale = 1 / Math.sqrt(z.D);
  const qh = be.ops.permute0213(q); // (B, H, T, D)
  const kh = be.ops.permute0213(k);
  const vh = be.ops.permute0213(v);
  const s = be.ops.matmul(qh, kh, false, true); // (B, H, T, T)
  const p = be.ops.causalSoftmax(s, scale); // (B, H, T, T)
  be.dispose(s);
  const oh = be.ops.matmul(p, vh, false, false); // (B, H, T, D)
  const out = be.ops.permute0213(oh); // (B, T, H, D)
  be.dispose(oh);
  const release = (): void => {
    for (const t of [qh, kh, vh, p]) be.dispose(t);
  };
  // Backward, in reverse order; frees what the forward saved.
  const backward = (dOut: T): AttentionGrads<T> => {
    const dOh = be.ops.permute0213(dOut); // (B, H, T, D)
    const dP = be.ops.matmul(dOh, vh, false, true); // (B, H, T, T)
    const dVh = be.ops.matmul(p, dOh, true, false); // (B, H, T, D)
    const dS = be.ops.causalSoftmaxBackward(p, dP, scale);
    for (const t of [dOh, dP, p, vh]) be.dispose(t);
    const dQh = be.ops.matmul(dS, kh, false, false); // (B, H, T, D)
    const dKh = be.ops.matmul(dS, qh, true, false); // (B, H, T, D)
    for (const t of [dS, qh, kh]) be.dispose(t);
    const dQ = be.ops.permute0213(dQh);
    const dK = be.ops.permute0213(dKh);
    const dV = be.ops.permute0213(dVh);
    for (const t of [dQh, dKh, dVh]) be.dispose(t);
    return { dQ, dK, dV };
  };
  return { out, saved: savedOnce('attentionBackward', z.out, [q, k, v], { backward, release }) };
}
