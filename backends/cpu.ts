// The CPU reference backend: maps the kernel contract (src/backend.ts) onto src/ops/*.
// Omits: threads, SIMD and memory pooling; this backend is the oracle, not the fast path.
// Shapes are validated here once (UserError); the ops in src/ops trust their sizes.

import {
  Handle, Store, numel, releaseHandle, reshapeHandle,
  type AdamWParams, type Backend, type FusedKernels, type Kernels, type NormActParams,
  type RotaryParams, type Saved, type Shape,
} from '../src/backend.ts';
import { check } from '../src/errors.ts';
import {
  causalDims, checkNormAct, checkRotary, expectRank, expectShape, last, live, matmulShape, ofType, sameShape,
} from '../src/shapes.ts';
import { adamwStep, sumSquares } from '../src/ops/adamw.ts';
import { addForward } from '../src/ops/add.ts';
import { attentionBackward, attentionForward, type AttentionSizes } from '../src/ops/attention.ts';
import { causalSoftmaxBackward, causalSoftmaxForward } from '../src/ops/causal_softmax.ts';
import { crossEntropyBackward, crossEntropyForward } from '../src/ops/cross_entropy.ts';
import { embeddingBackward, embeddingForward } from '../src/ops/embedding.ts';
import { layerNormBackward, layerNormForward } from '../src/ops/layernorm.ts';
import { matmulForward } from '../src/ops/matmul.ts';
import { normActBackward, normActForward } from '../src/ops/norm_act.ts';
import { pattentionBackward, pattentionForward, type PattentionSizes } from '../src/ops/pattention.ts';
import { permute0213Forward } from '../src/ops/permute.ts';
import { rotaryForward } from '../src/ops/rotary.ts';

export type CpuData = Float32Array | Int32Array;
export type CpuHandle = Handle<CpuData>;

// ---- handle helpers (the checks themselves are shared: src/shapes.ts) ----

/** The f32 data of t (throws on an i32 or disposed tensor). */
function f32(t: CpuHandle, what: string): Float32Array {
  return ofType(t, 'f32', what).store.data as Float32Array;
}

/** The i32 data of t (throws on an f32 or disposed tensor). */
function i32(t: CpuHandle, what: string): Int32Array {
  return ofType(t, 'i32', what).store.data as Int32Array;
}

function wrap(data: CpuData, shape: Shape): CpuHandle {
  check(data.length === numel(shape), `tensor data has ${data.length} elements, shape [${shape}] needs ${numel(shape)}`);
  return new Handle([...shape], data instanceof Int32Array ? 'i32' : 'f32', new Store<CpuData>(data, data.length));
}

function scalarValue(t: CpuHandle, what: string): number {
  const d = f32(t, what);
  check(d.length === 1, `${what}: expected a scalar, got [${t.shape}]`);
  return d[0];
}

// ---- kernels ----

function matmul(a: CpuHandle, b: CpuHandle, transA: boolean, transB: boolean): CpuHandle {
  const { lead, batch, M, K, N, bBatched } = matmulShape(a, b, transA, transB);
  const c = new Float32Array(batch * M * N);
  matmulForward(c, f32(a, 'matmul a'), f32(b, 'matmul b'), { batch, M, K, N, transA, transB, bBatched });
  return wrap(c, [...lead, M, N]);
}

function add(a: CpuHandle, b: CpuHandle): CpuHandle {
  const ad = f32(a, 'add a'), bd = f32(b, 'add b');
  check(sameShape(a.shape, b.shape), `add: shapes differ: [${a.shape}] vs [${b.shape}]`);
  const out = new Float32Array(ad.length);
  addForward(out, ad, bd);
  return wrap(out, a.shape);
}

function normAct(s: CpuHandle, p: NormActParams): CpuHandle {
  const sd = f32(s, 'normAct s'), n = last(s, 'normAct s');
  checkNormAct(p, 'normAct');
  const a = new Float32Array(sd.length);
  normActForward(a, sd, n === 0 ? 0 : sd.length / n, n, p);
  return wrap(a, s.shape);
}

function normActBwd(s: CpuHandle, dA: CpuHandle, p: NormActParams): CpuHandle {
  const sd = f32(s, 'normActBackward s'), dAd = f32(dA, 'normActBackward dA');
  expectShape(dA, s.shape, 'normActBackward dA');
  checkNormAct(p, 'normActBackward');
  const n = last(s, 'normActBackward s');
  const dS = new Float32Array(sd.length);
  normActBackward(dS, dAd, sd, n === 0 ? 0 : sd.length / n, n, p);
  return wrap(dS, s.shape);
}

function layerNorm(x: CpuHandle, w: CpuHandle | null, b: CpuHandle | null, eps: number) {
  const xd = f32(x, 'layerNorm x'), C = last(x, 'layerNorm x');
  if (w) expectShape(w, [C], 'layerNorm weight');
  if (b) expectShape(b, [C], 'layerNorm bias');
  check(eps >= 0, `layerNorm: eps must be ≥ 0, got ${eps}`);
  const rows = C === 0 ? 0 : xd.length / C;
  const y = new Float32Array(xd.length);
  const cache = layerNormForward(y, xd, w && f32(w, 'layerNorm weight'), b && f32(b, 'layerNorm bias'), rows, C, eps);
  return { y: wrap(y, x.shape), mean: wrap(cache.mean, [rows]), rstd: wrap(cache.rstd, [rows]) };
}

function layerNormBwd(dY: CpuHandle, x: CpuHandle, mean: CpuHandle, rstd: CpuHandle, w: CpuHandle | null) {
  const xd = f32(x, 'layerNormBackward x'), C = last(x, 'layerNormBackward x');
  expectShape(dY, x.shape, 'layerNormBackward dY');
  const rows = C === 0 ? 0 : xd.length / C;
  expectShape(mean, [rows], 'layerNormBackward mean');
  expectShape(rstd, [rows], 'layerNormBackward rstd');
  if (w) expectShape(w, [C], 'layerNormBackward weight');
  const dX = new Float32Array(xd.length);
  const dW = w ? new Float32Array(C) : null, dB = w ? new Float32Array(C) : null;
  const cache = { mean: f32(mean, 'layerNormBackward mean'), rstd: f32(rstd, 'layerNormBackward rstd') };
  layerNormBackward(dX, dW, dB, f32(dY, 'layerNormBackward dY'), xd, cache, w && f32(w, 'layerNorm weight'), rows, C);
  return { dX: wrap(dX, x.shape), dW: dW && wrap(dW, [C]), dB: dB && wrap(dB, [C]) };
}

function rotary(x: CpuHandle, p: RotaryParams, inverse: boolean): CpuHandle {
  const xd = f32(x, 'rotary x');
  expectRank(x, 4, 'rotary x [B, T, H, D]');
  const [B, T, H, D] = x.shape;
  checkRotary(p, D);
  const y = new Float32Array(xd.length);
  rotaryForward(y, xd, { B, T, H, D }, p, inverse);
  return wrap(y, x.shape);
}

function permute0213(x: CpuHandle): CpuHandle {
  const xd = f32(x, 'permute0213 x');
  expectRank(x, 4, 'permute0213 x');
  const [a, b, c, d] = x.shape;
  const out = new Float32Array(xd.length);
  permute0213Forward(out, xd, a, b, c, d);
  return wrap(out, [a, c, b, d]);
}

function causalSoftmax(s: CpuHandle, scale: number): CpuHandle {
  const sd = f32(s, 'causalSoftmax s');
  const { G, T } = causalDims(s, 'causalSoftmax s');
  const p = new Float32Array(sd.length);
  causalSoftmaxForward(p, sd, G, T, scale);
  return wrap(p, s.shape);
}

function causalSoftmaxBwd(p: CpuHandle, dP: CpuHandle, scale: number): CpuHandle {
  const pd = f32(p, 'causalSoftmaxBackward p');
  const { G, T } = causalDims(p, 'causalSoftmaxBackward p');
  expectShape(dP, p.shape, 'causalSoftmaxBackward dP');
  const dS = new Float32Array(pd.length);
  causalSoftmaxBackward(dS, f32(dP, 'causalSoftmaxBackward dP'), pd, G, T, scale);
  return wrap(dS, p.shape);
}

function embedding(ids: CpuHandle, table: CpuHandle): CpuHandle {
  const idd = i32(ids, 'embedding ids'), td = f32(table, 'embedding table');
  expectRank(table, 2, 'embedding table [V, C]');
  const [V, C] = table.shape;
  const out = new Float32Array(idd.length * C);
  embeddingForward(out, idd, td, V, C);
  return wrap(out, [...ids.shape, C]);
}

function embeddingBwd(ids: CpuHandle, dOut: CpuHandle, vocab: number): CpuHandle {
  const idd = i32(ids, 'embeddingBackward ids'), dd = f32(dOut, 'embeddingBackward dOut');
  const C = last(dOut, 'embeddingBackward dOut');
  expectShape(dOut, [...ids.shape, C], 'embeddingBackward dOut');
  check(Number.isInteger(vocab) && vocab > 0, `embeddingBackward: vocab must be a positive integer, got ${vocab}`);
  const dTable = new Float32Array(vocab * C);
  embeddingBackward(dTable, dd, idd, vocab, C);
  return wrap(dTable, [vocab, C]);
}

function ceDims(logits: CpuHandle, targets: CpuHandle, what: string): { N: number; V: number } {
  const V = last(logits, `${what} logits`);
  const N = V === 0 ? 0 : logits.size / V;
  check(targets.size === N, `${what}: ${N} logit rows but ${targets.size} targets ([${targets.shape}])`);
  return { N, V };
}

function crossEntropy(logits: CpuHandle, targets: CpuHandle) {
  const ld = f32(logits, 'crossEntropy logits'), td = i32(targets, 'crossEntropy targets');
  const { N, V } = ceDims(logits, targets, 'crossEntropy');
  check(N > 0, 'crossEntropy: no rows');
  const { loss, cache } = crossEntropyForward(ld, td, N, V);
  return { loss: wrap(Float32Array.of(loss), []), lse: wrap(cache.lse, [N]) };
}

function crossEntropyBwd(logits: CpuHandle, lse: CpuHandle, targets: CpuHandle, dLoss: number): CpuHandle {
  const ld = f32(logits, 'crossEntropyBackward logits'), td = i32(targets, 'crossEntropyBackward targets');
  const { N, V } = ceDims(logits, targets, 'crossEntropyBackward');
  expectShape(lse, [N], 'crossEntropyBackward lse');
  const dLogits = new Float32Array(ld.length);
  crossEntropyBackward(dLogits, dLoss, ld, td, { lse: f32(lse, 'crossEntropyBackward lse') }, N, V);
  return wrap(dLogits, logits.shape);
}

function sumSq(ts: readonly CpuHandle[]): CpuHandle {
  return wrap(Float32Array.of(sumSquares(ts.map((t, i) => f32(t, `sumSquares [${i}]`)))), []);
}

function adamw(param: CpuHandle, grad: CpuHandle, m: CpuHandle, v: CpuHandle, p: AdamWParams, gradNormSq: CpuHandle | null): void {
  const pd = f32(param, 'adamw param');
  for (const [t, what] of [[grad, 'grad'], [m, 'm'], [v, 'v']] as const) {
    expectShape(t, param.shape, `adamw ${what}`);
  }
  const gns = gradNormSq ? scalarValue(gradNormSq, 'adamw gradNormSq') : null;
  adamwStep(pd, f32(m, 'adamw m'), f32(v, 'adamw v'), f32(grad, 'adamw grad'), p, gns);
}

export const cpuKernels: Kernels<CpuHandle> = {
  matmul, add, normAct, normActBackward: normActBwd, layerNorm, layerNormBackward: layerNormBwd,
  rotary, permute0213, causalSoftmax, causalSoftmaxBackward: causalSoftmaxBwd,
  embedding, embeddingBackward: embeddingBwd, crossEntropy, crossEntropyBackward: crossEntropyBwd,
  sumSquares: sumSq, adamw,
};

// ---- fused kernels ----

function pattentionSizes(x: CpuHandle, k: CpuHandle, v: CpuHandle): PattentionSizes {
  const dIn = last(x, 'pattention x');
  expectRank(k, 2, 'pattention key tokens [n, d_in]');
  expectRank(v, 2, 'pattention value tokens [n, d_out]');
  const [n, kIn] = k.shape;
  check(kIn === dIn, `pattention: x [${x.shape}] has d_in ${dIn}, key tokens [${k.shape}] have ${kIn}`);
  check(v.shape[0] === n, `pattention: ${n} key tokens but ${v.shape[0]} value tokens`);
  return { N: dIn === 0 ? 0 : x.size / dIn, dIn, n, dOut: v.shape[1] };
}

function savedPair(saved: Saved<CpuHandle>, count: number, what: string): CpuHandle[] {
  check(saved.tensors.length === count, `${what}: saved state has ${saved.tensors.length} tensors, expected ${count}`);
  return saved.tensors;
}

export const cpuFused: FusedKernels<CpuHandle> = {
  pattention(x, k, v, p) {
    const z = pattentionSizes(x, k, v);
    checkNormAct(p, 'pattention');
    const out = new Float32Array(z.N * z.dOut);
    const c = pattentionForward(out, f32(x, 'pattention x'), f32(k, 'pattention k'), f32(v, 'pattention v'), z, p);
    const outShape = [...x.shape.slice(0, -1), z.dOut];
    return { out: wrap(out, outShape), saved: { tensors: [wrap(c.s, [z.N, z.n]), wrap(c.a, [z.N, z.n])] } };
  },
  pattentionBackward(dOut, x, k, v, saved, p) {
    const z = pattentionSizes(x, k, v);
    checkNormAct(p, 'pattentionBackward');
    expectShape(dOut, [...x.shape.slice(0, -1), z.dOut], 'pattentionBackward dOut');
    const [s, a] = savedPair(saved, 2, 'pattentionBackward');
    const dX = new Float32Array(x.size), dK = new Float32Array(k.size), dV = new Float32Array(v.size);
    const cache = { s: f32(s, 'pattention saved s'), a: f32(a, 'pattention saved a') };
    pattentionBackward(dX, dK, dV, f32(dOut, 'pattentionBackward dOut'), f32(x, 'pattention x'),
      f32(k, 'pattention k'), f32(v, 'pattention v'), cache, z, p);
    return { dX: wrap(dX, x.shape), dK: wrap(dK, k.shape), dV: wrap(dV, v.shape) };
  },
  attention(q, k, v) {
    const z = attentionSizes(q, k, v);
    const out = new Float32Array(q.size);
    const c = attentionForward(out, f32(q, 'attention q'), f32(k, 'attention k'), f32(v, 'attention v'), z);
    return { out: wrap(out, q.shape), saved: { tensors: [wrap(c.p, [z.B, z.H, z.T, z.T])] } };
  },
  attentionBackward(dOut, q, k, v, saved) {
    const z = attentionSizes(q, k, v);
    expectShape(dOut, q.shape, 'attentionBackward dOut');
    const [p] = savedPair(saved, 1, 'attentionBackward');
    const dQ = new Float32Array(q.size), dK = new Float32Array(k.size), dV = new Float32Array(v.size);
    attentionBackward(dQ, dK, dV, f32(dOut, 'attentionBackward dOut'), f32(q, 'attention q'),
      f32(k, 'attention k'), f32(v, 'attention v'), { p: f32(p, 'attention saved p') }, z);
    return { dQ: wrap(dQ, q.shape), dK: wrap(dK, k.shape), dV: wrap(dV, v.shape) };
  },
};

function attentionSizes(q: CpuHandle, k: CpuHandle, v: CpuHandle): AttentionSizes {
  expectRank(q, 4, 'attention q [B, T, H, D]');
  expectShape(k, q.shape, 'attention k');
  expectShape(v, q.shape, 'attention v');
  const [B, T, H, D] = q.shape;
  return { B, T, H, D };
}

// ---- the backend ----

export function createCpuBackend(): Backend<CpuHandle> {
  return {
    name: 'cpu',
    ops: cpuKernels,
    fused: cpuFused,
    upload: (data, shape) => wrap(Float32Array.from(data), shape),
    uploadInt: (data, shape) => wrap(Int32Array.from(data), shape),
    zeros: (shape) => wrap(new Float32Array(numel(shape)), shape),
    reshape: (t, shape) => {
      live(t, 'reshape');
      check(numel(shape) === t.size, `reshape: [${t.shape}] has ${t.size} elements, not ${numel(shape)} ([${shape}])`);
      return reshapeHandle(t, shape);
    },
    read: async (t) => {
      live(t, 'read');
      return Float32Array.from(t.store.data);
    },
    dispose: (t) => {
      if (releaseHandle(t)) t.store.data = new Float32Array(0);
    },
    destroy: async () => {},
  };
}
