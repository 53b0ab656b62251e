// The op table: for every op of the backend contract, the one statement of what it accepts
// (liveness, dtypes, ranks, shapes, parameters) and the sizes it derives. `defineBackend`
// (src/define-backend.ts) runs the entry before every kernel call, so kernels receive
// checked sizes and validate nothing themselves, and every backend fails with the same
// UserError message by construction. spec/ops/*.md give each op's math; this file its rules.
// Omits: value checks (token ids are checked where their values are known: ops/embedding.ts),
// and the model-level rules (config.ts).
//
// Dimension legend: N = rows, n = parameter tokens (or the last dim of a row-wise op),
// B, T, H, D = batch, time, heads, head dim; V = vocab; C = channels.

import {
  Handle, VARIANTS, numel,
  type AdamWParams, type AttentionOpSizes, type CausalSizes, type CrossEntropySizes, type KernelSigs,
  type NormActParams, type OpName, type OpSizes, type PattentionOpSizes, type RotaryParams, type RowSizes,
  type Shape,
} from './backend.ts';
import { check } from './errors.ts';

/** An op's entry: takes the op's own arguments, throws one UserError or returns its sizes. */
export type OpSpec<K extends OpName> = (...args: Parameters<KernelSigs<Handle>[K]>) => OpSizes[K];

// ---- handle checks ----

type H = Handle<unknown>;

export function live(t: H, what: string): void {
  check(t instanceof Handle, `${what}: not a tensor handle`);
  check(!t.disposed, `${what}: tensor [${t.shape}] was already disposed`);
}

/** A live f32 tensor. */
function f32(t: H, what: string): void {
  live(t, what);
  check(t.dtype === 'f32', `${what}: expected an f32 tensor, got ${t.dtype}`);
}

/** A live i32 tensor (token ids, targets). */
function i32(t: H, what: string): void {
  live(t, what);
  check(t.dtype === 'i32', `${what}: expected an i32 tensor, got ${t.dtype}`);
}

function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function expectShape(t: H, shape: Shape, what: string): void {
  check(sameShape(t.shape, shape), `${what}: expected shape [${shape}], got [${t.shape}]`);
}

function expectRank(t: H, rank: number, what: string): void {
  check(t.shape.length === rank, `${what}: expected a ${rank}-D tensor, got [${t.shape}]`);
}

function last(t: H, what: string): number {
  check(t.shape.length >= 1, `${what}: expected at least 1 dim, got a scalar`);
  return t.shape[t.shape.length - 1];
}

/** rows × n over the last dim of t (rank ≥ 1). */
function rows(t: H, what: string): RowSizes {
  const n = last(t, what);
  return { rows: n === 0 ? 0 : t.size / n, n, out: t.shape };
}

function normActParams(p: NormActParams, what: string): void {
  check(VARIANTS.includes(p.variant), `${what}: unknown norm activation '${p.variant}'`);
  check(Number.isFinite(p.normN) && p.normN > 0, `${what}: normN must be > 0, got ${p.normN}`);
}

/** G groups of a square [..., T, T]. */
function causal(s: H, what: string): CausalSizes {
  f32(s, what);
  check(s.shape.length >= 2, `${what}: expected [..., T, T], got [${s.shape}]`);
  const [r, c] = s.shape.slice(-2);
  check(r === c, `${what}: expected square [..., T, T], got [${s.shape}]`);
  return { G: numel(s.shape.slice(0, -2)), T: r, out: s.shape };
}

function crossEntropyDims(logits: H, targets: H, what: string): CrossEntropySizes {
  f32(logits, `${what} logits`);
  i32(targets, `${what} targets`);
  const V = last(logits, `${what} logits`);
  const N = V === 0 ? 0 : logits.size / V;
  check(targets.size === N, `${what}: ${N} logit rows but ${targets.size} targets ([${targets.shape}])`);
  return { N, V };
}

function layerNormDims(x: H, w: H | null, what: string): RowSizes {
  f32(x, `${what} x`);
  const z = rows(x, `${what} x`);
  if (w) {
    f32(w, `${what} weight`);
    expectShape(w, [z.n], `${what} weight`);
  }
  return z;
}

function attentionDims(q: H, k: H, v: H, what: string): AttentionOpSizes {
  for (const [t, name] of [[q, 'q'], [k, 'k'], [v, 'v']] as const) f32(t, `${what} ${name}`);
  expectRank(q, 4, `${what} q [B, T, H, D]`);
  expectShape(k, q.shape, `${what} k`);
  expectShape(v, q.shape, `${what} v`);
  const [B, T, Hh, D] = q.shape;
  return { B, T, H: Hh, D, out: q.shape };
}

// ---- the table: one entry per op of src/backend.ts KernelSigs ----

export const OP_SPECS: { [K in OpName]: OpSpec<K> } = {
  /** A: [..., M, K] ([..., K, M] if transA, rank ≥ 2); B: [K, N] ([N, K] if transB), 2-D or
   *  with A's leading dims. */
  matmul(a, b, transA, transB) {
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
    return { lead, batch: numel(lead), M, K, N, transA, transB, bBatched, out: [...lead, M, N] };
  },
  /** a, b: the same shape, any rank. */
  add(a, b) {
    f32(a, 'add a');
    f32(b, 'add b');
    check(sameShape(a.shape, b.shape), `add: shapes differ: [${a.shape}] vs [${b.shape}]`);
    return { size: a.size, out: a.shape };
  },
  /** s: [..., n], rank ≥ 1. */
  normAct(s, p) {
    f32(s, 'normAct s');
    const z = rows(s, 'normAct s');
    normActParams(p, 'normAct');
    return z;
  },
  /** s, dA: [..., n], the same shape. */
  normActBackward(s, dA, p) {
    f32(s, 'normActBackward s');
    f32(dA, 'normActBackward dA');
    expectShape(dA, s.shape, 'normActBackward dA');
    normActParams(p, 'normActBackward');
    return rows(s, 'normActBackward s');
  },
  /** x: [..., C], rank ≥ 1; w, b: [C] or null; eps ≥ 0. */
  layerNorm(x, w, b, eps) {
    const z = layerNormDims(x, w, 'layerNorm');
    if (b) {
      f32(b, 'layerNorm bias');
      expectShape(b, [z.n], 'layerNorm bias');
    }
    check(eps >= 0, `layerNorm: eps must be ≥ 0, got ${eps}`);
    return z;
  },
  /** dY, x: [..., C]; mean, rstd: [rows]; w: [C] or null. */
  layerNormBackward(dY, x, mean, rstd, w) {
    const z = layerNormDims(x, w, 'layerNormBackward');
    f32(dY, 'layerNormBackward dY');
    expectShape(dY, x.shape, 'layerNormBackward dY');
    f32(mean, 'layerNormBackward mean');
    expectShape(mean, [z.rows], 'layerNormBackward mean');
    f32(rstd, 'layerNormBackward rstd');
    expectShape(rstd, [z.rows], 'layerNormBackward rstd');
    return z;
  },
  /** x: [B, T, H, D]; rotaryDim even in [0, D]; base > 0; offset an integer ≥ 0. */
  rotary(x, p) {
    f32(x, 'rotary x');
    expectRank(x, 4, 'rotary x [B, T, H, D]');
    const [B, T, Hh, D] = x.shape;
    const rd = p.rotaryDim;
    check(Number.isInteger(rd) && rd >= 0 && rd % 2 === 0 && rd <= D,
      `rotary: rotaryDim must be even and in [0, ${D}], got ${rd}`);
    check(p.base > 0, `rotary: base must be > 0, got ${p.base}`);
    return { B, T, H: Hh, D, offset: rotaryOffset(p), out: x.shape };
  },
  /** x: [a, b, c, d]. */
  permute0213(x) {
    f32(x, 'permute0213 x');
    expectRank(x, 4, 'permute0213 x');
    const [a, b, c, d] = x.shape;
    return { a, b, c, d, out: [a, c, b, d] };
  },
  /** s: [..., T, T], rank ≥ 2. */
  causalSoftmax(s) {
    return causal(s, 'causalSoftmax s');
  },
  /** p, dP: [..., T, T], the same shape. */
  causalSoftmaxBackward(p, dP) {
    const z = causal(p, 'causalSoftmaxBackward p');
    f32(dP, 'causalSoftmaxBackward dP');
    expectShape(dP, p.shape, 'causalSoftmaxBackward dP');
    return z;
  },
  /** ids: i32, any shape; table: [V, C]. */
  embedding(ids, table) {
    i32(ids, 'embedding ids');
    f32(table, 'embedding table');
    expectRank(table, 2, 'embedding table [V, C]');
    const [V, C] = table.shape;
    return { rows: ids.size, V, C, out: [...ids.shape, C] };
  },
  /** ids: i32, any shape; dOut: [...ids.shape, C]; vocab a positive integer. */
  embeddingBackward(ids, dOut, vocab) {
    i32(ids, 'embeddingBackward ids');
    f32(dOut, 'embeddingBackward dOut');
    const C = last(dOut, 'embeddingBackward dOut');
    expectShape(dOut, [...ids.shape, C], 'embeddingBackward dOut');
    check(Number.isInteger(vocab) && vocab > 0, `embeddingBackward: vocab must be a positive integer, got ${vocab}`);
    return { rows: ids.size, V: vocab, C, out: [vocab, C] };
  },
  /** logits: [..., V] (N rows, N > 0); targets: i32 with N elements. */
  crossEntropy(logits, targets) {
    const z = crossEntropyDims(logits, targets, 'crossEntropy');
    check(z.N > 0, 'crossEntropy: no rows');
    return z;
  },
  /** logits: [..., V]; lse: [N]; targets: i32 with N elements. */
  crossEntropyBackward(logits, lse, targets) {
    const z = crossEntropyDims(logits, targets, 'crossEntropyBackward');
    f32(lse, 'crossEntropyBackward lse');
    expectShape(lse, [z.N], 'crossEntropyBackward lse');
    return z;
  },
  /** Any number of f32 tensors of any shapes. */
  sumSquares(ts) {
    ts.forEach((t, i) => f32(t, `sumSquares [${i}]`));
    return { sizes: ts.map((t) => t.size) };
  },
  /** grad, m, v: param's shape, four distinct tensors (no shared storage); step an integer
   *  ≥ 1; gradNormSq a 1-element f32 tensor, required when maxGradNorm > 0. */
  adamw(param, grad, m, v, p, gradNormSq) {
    f32(param, 'adamw param');
    for (const [t, what] of [[grad, 'grad'], [m, 'm'], [v, 'v']] as const) {
      f32(t, `adamw ${what}`);
      expectShape(t, param.shape, `adamw ${what}`);
    }
    // In place: an update through one tensor must not change another's input mid-step.
    check(new Set([param.store, grad.store, m.store, v.store]).size === 4,
      'adamw: param, grad, m and v must be distinct tensors');
    adamwParams(p);
    if (gradNormSq) {
      f32(gradNormSq, 'adamw gradNormSq');
      check(gradNormSq.size === 1, `adamw gradNormSq: expected a scalar, got [${gradNormSq.shape}]`);
    }
    check(!(p.maxGradNorm > 0) || gradNormSq !== null, 'adamw: gradNormSq is required when maxGradNorm > 0');
    return { size: param.size };
  },
};

/** p.offset (default 0) as a position; a UserError unless an integer ≥ 0. */
function rotaryOffset(p: RotaryParams): number {
  const off = p.offset ?? 0;
  check(Number.isSafeInteger(off) && off >= 0, () => `rotary: offset must be an integer ≥ 0, got ${off}`);
  return off;
}

function adamwParams(p: AdamWParams): void {
  check(p.step >= 1 && Number.isInteger(p.step), `adamw: step must be an integer ≥ 1, got ${p.step}`);
}

// ---- the fused ops (src/compose.ts runs these before the fused kernel or the composition) ----

export const FUSED_SPECS = {
  /** x: [..., d_in] (N rows), k: [n, d_in], v: [n, d_out]; out: [..., d_out]. */
  pattention(x: H, k: H, v: H, p: NormActParams): PattentionOpSizes {
    f32(x, 'pattention x');
    f32(k, 'pattention k');
    f32(v, 'pattention v');
    const dIn = last(x, 'pattention x');
    expectRank(k, 2, 'pattention key tokens [n, d_in]');
    expectRank(v, 2, 'pattention value tokens [n, d_out]');
    const [n, kIn] = k.shape;
    check(kIn === dIn, `pattention: x [${x.shape}] has d_in ${dIn}, key tokens [${k.shape}] have ${kIn}`);
    check(v.shape[0] === n, `pattention: ${n} key tokens but ${v.shape[0]} value tokens`);
    normActParams(p, 'pattention');
    const dOut = v.shape[1];
    return { N: dIn === 0 ? 0 : x.size / dIn, dIn, n, dOut, out: [...x.shape.slice(0, -1), dOut] };
  },
  /** q, k, v: [B, T, H, D], the same shape; causal, scale 1/√D. */
  attention(q: H, k: H, v: H): AttentionOpSizes {
    return attentionDims(q, k, v, 'attention');
  },
  /** The upstream gradient of a fused op's output: f32, the output's shape. */
  gradient(dOut: H, out: Shape, what: string): void {
    f32(dOut, `${what} dOut`);
    expectShape(dOut, out, `${what} dOut`);
  },
};
