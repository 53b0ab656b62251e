// One TokenFormer block (pre-norm), forward and backward side by side:
//   h = LN₀(x); q, k, v = Pattention_{q,k,v}(h); rotary(q, k); a = CausalAttn(q, k, v)
//   x = x + Pattention_proj(a);  x = x + Pattention_ffn(LN₀(x))
// Omits: dropout (the official configs use 0) and biases (TokenFormer has none).

import type {
  AttentionGrads, Backend, Handle, NormActParams, PattentionGrads, RotaryParams, Saved,
} from './backend.ts';
import { attention, pattention } from './compose.ts';

/** The parameter handles and settings of one block. */
export interface BlockParams<T> {
  /** key_param_tokens (n, C) and value_param_tokens (n, C) of query, key, value, proj, mlp. */
  k: { q: T; k: T; v: T; proj: T; ffn: T };
  v: { q: T; k: T; v: T; proj: T; ffn: T };
  norm: { q: NormActParams; k: NormActParams; v: NormActParams; proj: NormActParams; ffn: NormActParams };
  rotary: RotaryParams;
  heads: number;
  eps: number;
}

type PSaved<T> = Saved<T, PattentionGrads<T>>;

/** What backward needs, kept by forward. Shapes: N = B·T rows. */
export interface BlockCache<T> {
  x: T; // (N, C) block input
  ln1: { y: T; mean: T; rstd: T }; // y (N, C)
  sq: PSaved<T>; sk: PSaved<T>; sv: PSaved<T>; // Pattention saves
  qr: T; kr: T; v4: T; // (B, T, H, D) rotated q, k and v
  att: Saved<T, AttentionGrads<T>>;
  a: T; // (N, C) merged attention output
  sp: PSaved<T>;
  x1: T; // (N, C) after the attention residual
  ln2: { y: T; mean: T; rstd: T };
  sf: PSaved<T>;
}

export type BlockGrads<T> = BlockParams<T>['k'] extends infer K ? { k: K; v: K } : never;

/** Called with each intermediate as forward makes it (names in spec/conformance.md). The handle
 *  is valid during the call only; keep it with `be.reshape(t, t.shape)` (a counted view). */
export type BlockTrace<T> = (point: string, t: T) => void;

/** x: (N, C) with N = B·T → (N, C). `trace`, if given, sees h, q, k, v, q_rot, k_rot, attn,
 *  proj, x1, ffn_in, ffn_out and out in that order. */
export function blockForward<T extends Handle>(
  be: Backend<T>, x: T, p: BlockParams<T>, B: number, T_: number, trace?: BlockTrace<T>,
): { out: T; cache: BlockCache<T> } {
  const C = x.shape[1];
  const heads4 = [B, T_, p.heads, C / p.heads];
  const ln1 = be.ops.layerNorm(x, null, null, p.eps);
  const q = pattention(be, ln1.y, p.k.q, p.v.q, p.norm.q); // (N, C)
  const k = pattention(be, ln1.y, p.k.k, p.v.k, p.norm.k);
  const v = pattention(be, ln1.y, p.k.v, p.v.v, p.norm.v);
  trace?.('h', ln1.y);
  trace?.('q', q.out);
  trace?.('k', k.out);
  trace?.('v', v.out);
  const q4 = be.reshape(q.out, heads4);
  const k4 = be.reshape(k.out, heads4);
  const v4 = be.reshape(v.out, heads4);
  const qr = be.ops.rotary(q4, p.rotary, false); // (B, T, H, D)
  const kr = be.ops.rotary(k4, p.rotary, false);
  trace?.('q_rot', qr);
  trace?.('k_rot', kr);
  for (const t of [q.out, k.out, v.out, q4, k4]) be.dispose(t);
  const att = attention(be, qr, kr, v4); // (B, T, H, D)
  const a = be.reshape(att.out, [B * T_, C]);
  be.dispose(att.out);
  const proj = pattention(be, a, p.k.proj, p.v.proj, p.norm.proj);
  const x1 = be.ops.add(x, proj.out);
  trace?.('attn', a);
  trace?.('proj', proj.out);
  trace?.('x1', x1);
  be.dispose(proj.out);
  const ln2 = be.ops.layerNorm(x1, null, null, p.eps);
  const ffn = pattention(be, ln2.y, p.k.ffn, p.v.ffn, p.norm.ffn);
  const out = be.ops.add(x1, ffn.out);
  trace?.('ffn_in', ln2.y);
  trace?.('ffn_out', ffn.out);
  trace?.('out', out);
  be.dispose(ffn.out);
  const cache = { x, ln1, sq: q.saved, sk: k.saved, sv: v.saved, qr, kr, v4, att: att.saved, a, sp: proj.saved, x1, ln2, sf: ffn.saved };
  return { out, cache };
}

/** Backward in reverse order of forward. dOut: (N, C) → dX (N, C) and parameter grads.
 *  Frees the cache (but not cache.x, which belongs to the previous block). */
export function blockBackward<T extends Handle>(
  be: Backend<T>, dOut: T, c: BlockCache<T>, p: BlockParams<T>,
): { dX: T; grads: BlockGrads<T> } {
  // x2 = x1 + ffn(LN₀(x1))
  const f = c.sf.backward(dOut);
  const l2 = be.ops.layerNormBackward(f.dX, c.x1, c.ln2.mean, c.ln2.rstd, null);
  for (const t of [f.dX, c.ln2.y, c.ln2.mean, c.ln2.rstd, c.x1]) be.dispose(t);
  const dX1 = be.ops.add(dOut, l2.dX); // (N, C)
  be.dispose(l2.dX);
  // x1 = x + proj(a)
  const pr = c.sp.backward(dX1);
  be.dispose(c.a);
  const dA4 = be.reshape(pr.dX, c.qr.shape);
  be.dispose(pr.dX);
  const at = c.att.backward(dA4);
  be.dispose(dA4);
  // undo the rotary (its backward is the inverse rotation), back to (N, C)
  const N = dOut.shape[0];
  const C = dOut.shape[1];
  const dQr = be.ops.rotary(at.dQ, p.rotary, true);
  const dKr = be.ops.rotary(at.dK, p.rotary, true);
  const dQ = be.reshape(dQr, [N, C]);
  const dK = be.reshape(dKr, [N, C]);
  const dV = be.reshape(at.dV, [N, C]);
  for (const t of [at.dQ, at.dK, at.dV, dQr, dKr, c.qr, c.kr, c.v4]) be.dispose(t);
  const h = c.ln1.y;
  const gq = c.sq.backward(dQ);
  const gk = c.sk.backward(dK);
  const gv = c.sv.backward(dV);
  for (const t of [dQ, dK, dV, h]) be.dispose(t);
  const dH1 = be.ops.add(gq.dX, gk.dX);
  const dH = be.ops.add(dH1, gv.dX);
  for (const t of [dH1, gq.dX, gk.dX, gv.dX]) be.dispose(t);
  // h = LN₀(x); x feeds both the residual and the norm
  const l1 = be.ops.layerNormBackward(dH, c.x, c.ln1.mean, c.ln1.rstd, null);
  for (const t of [dH, c.ln1.mean, c.ln1.rstd]) be.dispose(t);
  const dX = be.ops.add(dX1, l1.dX);
  be.dispose(dX1);
  be.dispose(l1.dX);
  const grads = {
    k: { q: gq.dK, k: gk.dK, v: gv.dK, proj: pr.dK, ffn: f.dK },
    v: { q: gq.dV, k: gk.dV, v: gv.dV, proj: pr.dV, ffn: f.dV },
  };
  return { dX, grads };
}
