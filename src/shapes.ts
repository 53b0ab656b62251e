// Argument checks every backend shares: live handles, dtypes, shapes, and the sizes each op
// derives from them, each failure one UserError with the same message on every backend.
// Omits: value checks (ids are checked where their values are known: see ops/embedding.ts).

import { Handle, VARIANTS, numel, type NormActParams, type RotaryParams, type Shape } from './backend.ts';
import { check } from './errors.ts';

type AnyHandle = Handle<unknown>;

export function live(t: AnyHandle, what: string): void {
  check(t instanceof Handle, `${what}: not a tensor handle`);
  check(!t.disposed, `${what}: tensor [${t.shape}] was already disposed`);
}

/** Checks that t is a live tensor of the given dtype; returns it. */
export function ofType<T extends AnyHandle>(t: T, dtype: 'f32' | 'i32', what: string): T {
  live(t, what);
  check(t.dtype === dtype, `${what}: expected an ${dtype} tensor, got ${t.dtype}`);
  return t;
}

/** ofType(t, 'f32', what). */
export function f32<T extends AnyHandle>(t: T, what: string): T {
  return ofType(t, 'f32', what);
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function expectShape(t: AnyHandle, shape: Shape, what: string): void {
  check(sameShape(t.shape, shape), `${what}: expected shape [${shape}], got [${t.shape}]`);
}

export function expectRank(t: AnyHandle, rank: number, what: string): void {
  check(t.shape.length === rank, `${what}: expected a ${rank}-D tensor, got [${t.shape}]`);
}

export function last(t: AnyHandle, what: string): number {
  check(t.shape.length >= 1, `${what}: expected at least 1 dim, got a scalar`);
  return t.shape[t.shape.length - 1];
}

/** rows × n for a row-wise op over the last dim. */
export function rowsOf(t: AnyHandle, what: string): { rows: number; n: number } {
  const n = last(t, what);
  return { rows: n === 0 ? 0 : t.size / n, n };
}

export function checkNormAct(p: NormActParams, what: string): void {
  check(VARIANTS.includes(p.variant), `${what}: unknown norm activation '${p.variant}'`);
  check(Number.isFinite(p.normN) && p.normN > 0, `${what}: normN must be > 0, got ${p.normN}`);
}

export function checkRotary(p: RotaryParams, D: number): void {
  const rd = p.rotaryDim;
  check(Number.isInteger(rd) && rd >= 0 && rd % 2 === 0 && rd <= D,
    `rotary: rotaryDim must be even and in [0, ${D}], got ${rd}`);
  check(p.base > 0, `rotary: base must be > 0, got ${p.base}`);
}

export interface MatmulShape {
  lead: number[];
  batch: number;
  M: number;
  K: number;
  N: number;
  bBatched: boolean;
}

/** Sizes of op(A)·op(B) per the contract: A [..., M, K], B 2-D or with A's leading dims. */
export function matmulShape(a: AnyHandle, b: AnyHandle, transA: boolean, transB: boolean): MatmulShape {
  f32(a, 'matmul a');
  f32(b, 'matmul b');
  check(a.shape.length >= 2, `matmul: a must be at least 2-D, got [${a.shape}]`);
  const lead = a.shape.slice(0, -2);
  const [a0, a1] = a.shape.slice(-2);
  const [M, K] = transA ? [a1, a0] : [a0, a1];
  const bBatched = b.shape.length > 2;
  check(b.shape.length === 2 || sameShape(b.shape.slice(0, -2), lead),
    `matmul: b [${b.shape}] must be 2-D or share a's leading dims [${lead}]`);
  const [b0, b1] = b.shape.slice(-2);
  const [Kb, N] = transB ? [b1, b0] : [b0, b1];
  check(K === Kb, `matmul: inner dims differ: a [${a.shape}]${transA ? 'ᵀ' : ''} · b [${b.shape}]${transB ? 'ᵀ' : ''}`);
  return { lead, batch: numel(lead), M, K, N, bBatched };
}

/** G groups of T×T for the causal softmax. */
export function causalDims(s: AnyHandle, what: string): { G: number; T: number } {
  f32(s, what);
  check(s.shape.length >= 2, `${what}: expected [..., T, T], got [${s.shape}]`);
  const [r, c] = s.shape.slice(-2);
  check(r === c, `${what}: expected square [..., T, T], got [${s.shape}]`);
  return { G: numel(s.shape.slice(0, -2)), T: r };
}

/** Pattention sizes: x [..., d_in], k [n, d_in], v [n, d_out]. */
export function pattentionSizes(x: AnyHandle, k: AnyHandle, v: AnyHandle) {
  const dIn = last(f32(x, 'pattention x'), 'pattention x');
  expectRank(f32(k, 'pattention k'), 2, 'pattention key tokens [n, d_in]');
  expectRank(f32(v, 'pattention v'), 2, 'pattention value tokens [n, d_out]');
  const [n, kIn] = k.shape;
  check(kIn === dIn, `pattention: x [${x.shape}] has d_in ${dIn}, key tokens [${k.shape}] have ${kIn}`);
  check(v.shape[0] === n, `pattention: ${n} key tokens but ${v.shape[0]} value tokens`);
  return { N: dIn === 0 ? 0 : x.size / dIn, dIn, n, dOut: v.shape[1] };
}
