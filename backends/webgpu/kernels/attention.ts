// Causal attention, forward and backward, as one typed pair, with q, k, v, the output and the
// gradients kept in their (B, T, H, D) layout: the subgroup matmul reads and writes head h of
// batch b as a strided (T, D) matrix (batch z = b·H + h), so none of the composition's eight
// permutes (src/compose.ts: q, k, v and the output forward; dOut, dQ, dK, dV backward) is
// needed. Scores and probabilities are (B, H, T, T) as in the composition; the causal softmax
// kernels are the composition's. Saved for the backward: P only (q, k, v come back as
// arguments). Elsewhere — the 'gpu' style, no 8-wide subgroups, T or D not a multiple of 4 —
// this runs the composition itself (its saved state then names the composition's four tensors).
// The sizes come checked from FUSED_SPECS.attention (src/op-specs.ts); nothing here validates.
// Omits: a flash-style fused kernel (llvmpipe gains nothing from keeping S in registers).

import type { AttentionSizes, CausalSizes, MatmulSizes, PermuteSizes } from '../../../src/backend.ts';
import type { AttentionPair } from '../../../src/define-backend.ts';
import type { GHandle } from '../buffers.ts';
import type { Env } from './common.ts';
import { permute0213 } from './elementwise.ts';
import { matmul, subgroupInto, type SgLayout } from './matmul.ts';
import { sgApplies, type Strided } from './matmul_subgroup.ts';
import { causalSoftmax, causalSoftmaxBackward } from './softmax.ts';

/** What the forward keeps: P (B, H, T, T) on the strided path; the composition's permuted
 *  q, k, v (B, H, T, D) and P otherwise. */
export type AttentionSaved =
  | { kind: 'strided'; p: GHandle }
  | { kind: 'composed'; qh: GHandle; kh: GHandle; vh: GHandle; p: GHandle };

/**
 * Whether the strided path applies (the subgroup kernel on every product). Scores over the
 * binding limit take the composition, whose matmuls and softmax split (matmul_split.ts).
 */
function strided(env: Env, d: AttentionSizes): boolean {
  const fits = d.B * d.H * d.T * d.T * 4 <= env.ctx.maxBinding && d.B * d.T * d.H * d.D * 4 <= env.ctx.maxBinding;
  return env.ctx.style === 'cpu' && env.ctx.subgroup8 && d.T % 4 === 0 && d.D % 4 === 0 && d.T > 0 && d.D > 0 && fits;
}

/** Head h of batch b of a (B, T, H, D) tensor, as a (T, D) matrix. */
const heads = (d: AttentionSizes): Strided => ({ outer: d.T * d.H * d.D, inner: d.D, ld: d.H * d.D });
/** Matrix (b, h) of a (B, H, T, T) tensor. */
const scores = (d: AttentionSizes): Strided => ({ outer: d.H * d.T * d.T, inner: d.T * d.T, ld: d.T });

/** c = op(a)·op(b) per (b, h), every operand laid out as given. */
function product(env: Env, c: GHandle, a: GHandle, b: GHandle, d: AttentionSizes, m: [number, number, number], tA: boolean, tB: boolean, lay: Omit<SgLayout, 'zh'>): void {
  const [M, K, N] = m;
  const md = { batch: d.B * d.H, M, K, N, transA: tA, transB: tB, bBatched: true };
  if (!sgApplies(md)) throw new Error('internal: attention product not on the subgroup path'); // an invariant of strided()
  subgroupInto(env, c, a, b, md, { zh: d.H, ...lay });
}

// ---- the composition's sizes (the op table's, derived from the checked (B, T, H, D)) ----

/** (B, H, M, K)ᵀ? · (B, H, K, N)ᵀ? per (b, h). */
function heads4(d: AttentionSizes, M: number, K: number, N: number, transA: boolean, transB: boolean): MatmulSizes {
  return { batch: d.B * d.H, M, K, N, transA, transB, bBatched: true, lead: [d.B, d.H], out: [d.B, d.H, M, N] };
}
/** (B, T, H, D) → (B, H, T, D). */
const toHeads = (d: AttentionSizes): PermuteSizes => ({ a: d.B, b: d.T, c: d.H, d: d.D, out: [d.B, d.H, d.T, d.D] });
/** (B, H, T, D) → (B, T, H, D). */
const fromHeads = (d: AttentionSizes): PermuteSizes => ({ a: d.B, b: d.H, c: d.T, d: d.D, out: [d.B, d.T, d.H, d.D] });
const causal = (d: AttentionSizes): CausalSizes => ({ G: d.B * d.H, T: d.T, out: [d.B, d.H, d.T, d.T] });

export function attentionPair(env: Env): AttentionPair<GHandle, AttentionSaved> {
  const { mem } = env;
  return {
    forward(d, q, k, v) {
      const scale = 1 / Math.sqrt(d.D);
      if (!strided(env, d)) {
        const [qh, kh, vh] = [q, k, v].map((t) => permute0213(env, toHeads(d), t)); // (B, H, T, D)
        const s = matmul(env, heads4(d, d.T, d.D, d.T, false, true), qh, kh); // (B, H, T, T)
        const p = causalSoftmax(env, causal(d), s, scale);
        mem.dispose(s);
        const oh = matmul(env, heads4(d, d.T, d.T, d.D, false, false), p, vh); // (B, H, T, D)
        const out = permute0213(env, fromHeads(d), oh);
        mem.dispose(oh);
        return { out, saved: { kind: 'composed', qh, kh, vh, p } };
      }
      const s = mem.alloc([d.B, d.H, d.T, d.T]);
      product(env, s, q, k, d, [d.T, d.D, d.T], false, true, { a: heads(d), b: heads(d), c: scores(d) });
      const p = causalSoftmax(env, causal(d), s, scale);
      mem.dispose(s);
      const out = mem.alloc(d.out);
      product(env, out, p, v, d, [d.T, d.T, d.D], false, false, { a: scores(d), b: heads(d), c: heads(d) });
      return { out, saved: { kind: 'strided', p } };
    },

    /** In reverse order of forward; frees what the forward saved. */
    backward(d, dOut, saved, q, k, v) {
      const scale = 1 / Math.sqrt(d.D);
      if (saved.kind === 'composed') return composedBackward(env, d, dOut, saved, scale);
      const { p } = saved;
      const [hd, sc] = [heads(d), scores(d)];
      const dP = mem.alloc([d.B, d.H, d.T, d.T]); // dOut·Vᵀ
      product(env, dP, dOut, v, d, [d.T, d.D, d.T], false, true, { a: hd, b: hd, c: sc });
      const dV = mem.alloc(d.out); // Pᵀ·dOut
      product(env, dV, p, dOut, d, [d.T, d.T, d.D], true, false, { a: sc, b: hd, c: hd });
      const dS = causalSoftmaxBackward(env, causal(d), p, dP, scale);
      mem.dispose(dP);
      mem.dispose(p);
      const dQ = mem.alloc(d.out); // dS·K
      product(env, dQ, dS, k, d, [d.T, d.T, d.D], false, false, { a: sc, b: hd, c: hd });
      const dK = mem.alloc(d.out); // dSᵀ·Q
      product(env, dK, dS, q, d, [d.T, d.T, d.D], true, false, { a: sc, b: hd, c: hd });
      mem.dispose(dS);
      return { dQ, dK, dV };
    },

    release(saved) {
      const ts = saved.kind === 'strided' ? [saved.p] : [saved.qh, saved.kh, saved.vh, saved.p];
      for (const t of ts) mem.dispose(t);
    },
  };
}

/** The composition's backward (src/compose.ts), for state saved by the permute path. */
function composedBackward(
  env: Env, d: AttentionSizes, dOut: GHandle, saved: Extract<AttentionSaved, { kind: 'composed' }>, scale: number,
): { dQ: GHandle; dK: GHandle; dV: GHandle } {
  const { mem } = env;
  const { qh, kh, vh, p } = saved;
  const dOh = permute0213(env, toHeads(d), dOut); // (B, H, T, D)
  const dP = matmul(env, heads4(d, d.T, d.D, d.T, false, true), dOh, vh); // (B, H, T, T)
  const dVh = matmul(env, heads4(d, d.T, d.T, d.D, true, false), p, dOh); // (B, H, T, D)
  const dS = causalSoftmaxBackward(env, causal(d), p, dP, scale);
  for (const t of [dOh, dP, p, vh]) mem.dispose(t);
  const dQh = matmul(env, heads4(d, d.T, d.T, d.D, false, false), dS, kh);
  const dKh = matmul(env, heads4(d, d.T, d.T, d.D, true, false), dS, qh);
  for (const t of [dS, qh, kh]) mem.dispose(t);
  const [dQ, dK, dV] = [dQh, dKh, dVh].map((t) => permute0213(env, fromHeads(d), t));
  for (const t of [dQh, dKh, dVh]) mem.dispose(t);
  return { dQ, dK, dV };
}
