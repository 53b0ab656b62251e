// Causal attention, forward and backward, with q, k, v, the output and the gradients kept in
// their (B, T, H, D) layout: the subgroup matmul reads and writes head h of batch b as a
// strided (T, D) matrix (batch z = b·H + h), so none of the composition's eight permutes
// (src/compose.ts: q, k, v and the output forward; dOut, dQ, dK, dV backward) is needed.
// Scores and probabilities are (B, H, T, T) as in the composition; the causal softmax kernels
// are the composition's. Saved for the backward: P only (q, k, v come back as arguments).
// Elsewhere — the 'gpu' style, no 8-wide subgroups, T or D not a multiple of 4 — this runs
// the composition itself (its saved state then has the composition's four tensors).
// Omits: a flash-style fused kernel (llvmpipe gains nothing from keeping S in registers).

import type { Saved } from '../../../src/backend.ts';
import { check } from '../../../src/errors.ts';
import type { GHandle } from '../buffers.ts';
import type { Env } from './common.ts';
import { permute0213 } from './elementwise.ts';
import { matmul, subgroupInto, type SgLayout } from './matmul.ts';
import { sgApplies, type Strided } from './matmul_subgroup.ts';
import { causalSoftmax, causalSoftmaxBackward } from './softmax.ts';

interface Dims {
  B: number;
  T: number;
  H: number;
  D: number;
}

function dims(q: GHandle, k: GHandle, v: GHandle): Dims {
  check(q.shape.length === 4, () => `attention: want [B, T, H, D], got [${q.shape}]`);
  for (const t of [k, v]) {
    check(t.shape.length === 4 && t.shape.every((d, i) => d === q.shape[i]), () => `attention: q [${q.shape}], k/v [${t.shape}] differ`);
  }
  const [B, T, H, D] = q.shape;
  return { B, T, H, D };
}

/**
 * Whether the strided path applies (the subgroup kernel on every product). Scores over the
 * binding limit take the composition, whose matmuls and softmax split (matmul_split.ts).
 */
function strided(env: Env, d: Dims): boolean {
  const fits = d.B * d.H * d.T * d.T * 4 <= env.ctx.maxBinding && d.B * d.T * d.H * d.D * 4 <= env.ctx.maxBinding;
  return env.ctx.style === 'cpu' && env.ctx.subgroup8 && d.T % 4 === 0 && d.D % 4 === 0 && d.T > 0 && d.D > 0 && fits;
}

/** Head h of batch b of a (B, T, H, D) tensor, as a (T, D) matrix. */
const heads = (d: Dims): Strided => ({ outer: d.T * d.H * d.D, inner: d.D, ld: d.H * d.D });
/** Matrix (b, h) of a (B, H, T, T) tensor. */
const scores = (d: Dims): Strided => ({ outer: d.H * d.T * d.T, inner: d.T * d.T, ld: d.T });

/** c = op(a)·op(b) per (b, h), every operand laid out as given. */
function product(env: Env, c: GHandle, a: GHandle, b: GHandle, d: Dims, m: [number, number, number], tA: boolean, tB: boolean, lay: Omit<SgLayout, 'zh'>): void {
  const [M, K, N] = m;
  const md = { batch: d.B * d.H, M, K, N, transA: tA, transB: tB, bBatched: true };
  check(sgApplies(md), 'internal: attention product not on the subgroup path');
  subgroupInto(env, c, a, b, md, { zh: d.H, ...lay });
}

export function attention(env: Env, q: GHandle, k: GHandle, v: GHandle): { out: GHandle; saved: Saved<GHandle> } {
  const d = dims(q, k, v);
  const { mem } = env;
  const scale = 1 / Math.sqrt(d.D);
  if (!strided(env, d)) {
    const qh = permute0213(env, q), kh = permute0213(env, k), vh = permute0213(env, v);
    const s = matmul(env, qh, kh, false, true);
    const p = causalSoftmax(env, s, scale);
    mem.dispose(s);
    const oh = matmul(env, p, vh, false, false);
    const out = permute0213(env, oh);
    mem.dispose(oh);
    return { out, saved: { tensors: [qh, kh, vh, p] } };
  }
  const s = mem.alloc([d.B, d.H, d.T, d.T]);
  product(env, s, q, k, d, [d.T, d.D, d.T], false, true, { a: heads(d), b: heads(d), c: scores(d) });
  const p = causalSoftmax(env, s, scale);
  mem.dispose(s);
  const out = mem.alloc(q.shape);
  product(env, out, p, v, d, [d.T, d.T, d.D], false, false, { a: scores(d), b: heads(d), c: heads(d) });
  return { out, saved: { tensors: [p] } };
}

export function attentionBackward(
  env: Env, dOut: GHandle, q: GHandle, k: GHandle, v: GHandle, saved: Saved<GHandle>,
): { dQ: GHandle; dK: GHandle; dV: GHandle } {
  const d = dims(q, k, v);
  check(dOut.shape.length === 4 && dOut.shape.every((x, i) => x === q.shape[i]), () => `attentionBackward: dOut [${dOut.shape}] differs from q [${q.shape}]`);
  const { mem } = env;
  const scale = 1 / Math.sqrt(d.D);
  if (saved.tensors.length === 4) return composedBackward(env, dOut, saved, scale);
  check(saved.tensors.length === 1, () => `attentionBackward: saved state has ${saved.tensors.length} tensors`);
  const [p] = saved.tensors;
  const [hd, sc] = [heads(d), scores(d)];
  const dP = mem.alloc([d.B, d.H, d.T, d.T]); // dOut·Vᵀ
  product(env, dP, dOut, v, d, [d.T, d.D, d.T], false, true, { a: hd, b: hd, c: sc });
  const dV = mem.alloc(q.shape); // Pᵀ·dOut
  product(env, dV, p, dOut, d, [d.T, d.T, d.D], true, false, { a: sc, b: hd, c: hd });
  const dS = causalSoftmaxBackward(env, p, dP, scale);
  mem.dispose(dP);
  mem.dispose(p);
  const dQ = mem.alloc(q.shape); // dS·K
  product(env, dQ, dS, k, d, [d.T, d.T, d.D], false, false, { a: sc, b: hd, c: hd });
  const dK = mem.alloc(q.shape); // dSᵀ·Q
  product(env, dK, dS, q, d, [d.T, d.T, d.D], true, false, { a: sc, b: hd, c: hd });
  mem.dispose(dS);
  return { dQ, dK, dV };
}

/** The composition's backward (src/compose.ts), for state saved by the permute path. */
function composedBackward(env: Env, dOut: GHandle, saved: Saved<GHandle>, scale: number): { dQ: GHandle; dK: GHandle; dV: GHandle } {
  const { mem } = env;
  const [qh, kh, vh, p] = saved.tensors;
  const dOh = permute0213(env, dOut);
  const dP = matmul(env, dOh, vh, false, true);
  const dVh = matmul(env, p, dOh, true, false);
  const dS = causalSoftmaxBackward(env, p, dP, scale);
  for (const t of [dOh, dP, p, vh]) mem.dispose(t);
  const dQh = matmul(env, dS, kh, false, false);
  const dKh = matmul(env, dS, qh, true, false);
  for (const t of [dS, qh, kh]) mem.dispose(t);
  const dQ = permute0213(env, dQh), dK = permute0213(env, dKh), dV = permute0213(env, dVh);
  for (const t of [dQh, dKh, dVh]) mem.dispose(t);
  return { dQ, dK, dV };
}
