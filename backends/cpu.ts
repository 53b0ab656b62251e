// The CPU reference backend: maps the kernel contract (src/backend.ts) onto src/ops/*.
// Omits: threads, SIMD and memory pooling; this backend is the oracle, not the fast path.
// It validates nothing: defineBackend runs each op's OP_SPECS entry (src/op-specs.ts) and
// hands every kernel its checked sizes; the ops in src/ops trust them.

import { ByteCounter, Handle, Store, numel, releaseHandle, reshapeHandle, type Backend, type Shape } from '../src/backend.ts';
import { defineBackend, type AttentionPair, type PattentionPair, type RawKernels } from '../src/define-backend.ts';
import { adamwStep, sumSquares } from '../src/ops/adamw.ts';
import { addForward } from '../src/ops/add.ts';
import { attentionBackward, attentionForward } from '../src/ops/attention.ts';
import { causalSoftmaxBackward, causalSoftmaxForward } from '../src/ops/causal_softmax.ts';
import { crossEntropyBackward, crossEntropyForward } from '../src/ops/cross_entropy.ts';
import { embeddingBackward, embeddingForward } from '../src/ops/embedding.ts';
import { layerNormBackward, layerNormForward } from '../src/ops/layernorm.ts';
import { matmulForward } from '../src/ops/matmul.ts';
import { normActBackward, normActForward } from '../src/ops/norm_act.ts';
import { pattentionBackward, pattentionForward } from '../src/ops/pattention.ts';
import { permute0213Forward } from '../src/ops/permute.ts';
import { rotaryForward } from '../src/ops/rotary.ts';

export type CpuData = Float32Array | Int32Array;
export type CpuHandle = Handle<CpuData>;

// ---- storage ----

/** The f32 data of t (its dtype was checked by the op table). */
function f32(t: CpuHandle): Float32Array {
  return t.store.data as Float32Array;
}

/** The i32 data of t (its dtype was checked by the op table). */
function i32(t: CpuHandle): Int32Array {
  return t.store.data as Int32Array;
}

/** Bytes of every CPU tensor's storage (all backends made here share it: host memory). */
const bytes = new ByteCounter();

function wrap(data: CpuData, shape: Shape): CpuHandle {
  bytes.add(data.byteLength);
  return new Handle([...shape], data instanceof Int32Array ? 'i32' : 'f32', new Store<CpuData>(data, data.length));
}

// ---- kernels: each receives its checked sizes z (src/op-specs.ts) ----

const kernels: RawKernels<CpuHandle> = {
  matmul(z, a, b) {
    const c = new Float32Array(z.batch * z.M * z.N);
    matmulForward(c, f32(a), f32(b), z);
    return wrap(c, z.out);
  },
  add(z, a, b) {
    const out = new Float32Array(z.size);
    addForward(out, f32(a), f32(b));
    return wrap(out, z.out);
  },
  normAct(z, s, p) {
    const a = new Float32Array(s.size);
    normActForward(a, f32(s), z.rows, z.n, p);
    return wrap(a, z.out);
  },
  normActBackward(z, s, dA, p) {
    const dS = new Float32Array(s.size);
    normActBackward(dS, f32(dA), f32(s), z.rows, z.n, p);
    return wrap(dS, z.out);
  },
  layerNorm(z, x, w, b, eps) {
    const y = new Float32Array(x.size);
    const cache = layerNormForward(y, f32(x), w && f32(w), b && f32(b), z.rows, z.n, eps);
    return { y: wrap(y, z.out), mean: wrap(cache.mean, [z.rows]), rstd: wrap(cache.rstd, [z.rows]) };
  },
  layerNormBackward(z, dY, x, mean, rstd, w) {
    const C = z.n;
    const dX = new Float32Array(x.size);
    const dW = w ? new Float32Array(C) : null, dB = w ? new Float32Array(C) : null;
    layerNormBackward(dX, dW, dB, f32(dY), f32(x), { mean: f32(mean), rstd: f32(rstd) }, w && f32(w), z.rows, C);
    return { dX: wrap(dX, z.out), dW: dW && wrap(dW, [C]), dB: dB && wrap(dB, [C]) };
  },
  rotary(z, x, p, inverse) {
    const y = new Float32Array(x.size);
    rotaryForward(y, f32(x), z, p, inverse);
    return wrap(y, z.out);
  },
  permute0213(z, x) {
    const out = new Float32Array(x.size);
    permute0213Forward(out, f32(x), z.a, z.b, z.c, z.d);
    return wrap(out, z.out);
  },
  causalSoftmax(z, s, scale) {
    const p = new Float32Array(s.size);
    causalSoftmaxForward(p, f32(s), z.G, z.T, scale);
    return wrap(p, z.out);
  },
  causalSoftmaxBackward(z, p, dP, scale) {
    const dS = new Float32Array(p.size);
    causalSoftmaxBackward(dS, f32(dP), f32(p), z.G, z.T, scale);
    return wrap(dS, z.out);
  },
  embedding(z, ids, table) {
    const out = new Float32Array(z.rows * z.C);
    embeddingForward(out, i32(ids), f32(table), z.V, z.C);
    return wrap(out, z.out);
  },
  embeddingBackward(z, ids, dOut) {
    const dTable = new Float32Array(z.V * z.C);
    embeddingBackward(dTable, f32(dOut), i32(ids), z.V, z.C);
    return wrap(dTable, z.out);
  },
  crossEntropy(z, logits, targets) {
    const { loss, cache } = crossEntropyForward(f32(logits), i32(targets), z.N, z.V);
    return { loss: wrap(Float32Array.of(loss), []), lse: wrap(cache.lse, [z.N]) };
  },
  crossEntropyBackward(z, logits, lse, targets, dLoss) {
    const dLogits = new Float32Array(logits.size);
    crossEntropyBackward(dLogits, dLoss, f32(logits), i32(targets), { lse: f32(lse) }, z.N, z.V);
    return wrap(dLogits, logits.shape);
  },
  sumSquares(_z, ts) {
    return wrap(Float32Array.of(sumSquares(ts.map(f32))), []);
  },
  adamw(_z, param, grad, m, v, p, gradNormSq) {
    const gns = gradNormSq ? f32(gradNormSq)[0] : null;
    adamwStep(f32(param), f32(m), f32(v), f32(grad), p, gns);
  },
};

// ---- fused kernels: forward and backward with their saved state typed ----

/** Pattention saves S (N, n) and A = Θ(S) (N, n). */
const pattention: PattentionPair<CpuHandle, { s: Float32Array; a: Float32Array }> = {
  forward(z, x, k, v, p) {
    const out = new Float32Array(z.N * z.dOut);
    const c = pattentionForward(out, f32(x), f32(k), f32(v), z, p);
    bytes.add(c.s.byteLength + c.a.byteLength);
    return { out: wrap(out, z.out), saved: c };
  },
  backward(z, dOut, saved, x, k, v, p) {
    const dX = new Float32Array(x.size), dK = new Float32Array(k.size), dV = new Float32Array(v.size);
    pattentionBackward(dX, dK, dV, f32(dOut), f32(x), f32(k), f32(v), saved, z, p);
    this.release(saved);
    return { dX: wrap(dX, x.shape), dK: wrap(dK, k.shape), dV: wrap(dV, v.shape) };
  },
  release(saved) {
    bytes.sub(saved.s.byteLength + saved.a.byteLength); // host arrays: the garbage collector frees them
  },
};

/** Attention saves P (B, H, T, T). */
const attention: AttentionPair<CpuHandle, { p: Float32Array }> = {
  forward(z, q, k, v) {
    const out = new Float32Array(q.size);
    const c = attentionForward(out, f32(q), f32(k), f32(v), z);
    bytes.add(c.p.byteLength);
    return { out: wrap(out, z.out), saved: c };
  },
  backward(z, dOut, saved, q, k, v) {
    const dQ = new Float32Array(q.size), dK = new Float32Array(k.size), dV = new Float32Array(v.size);
    attentionBackward(dQ, dK, dV, f32(dOut), f32(q), f32(k), f32(v), saved, z);
    this.release(saved);
    return { dQ: wrap(dQ, q.shape), dK: wrap(dK, k.shape), dV: wrap(dV, v.shape) };
  },
  release(saved) {
    bytes.sub(saved.p.byteLength);
  },
};

// ---- the backend ----

export function createCpuBackend(): Backend<CpuHandle> {
  return {
    name: 'cpu',
    ...defineBackend({
      kernels,
      fused: { pattention, attention },
      upload: (data, shape) => wrap(Float32Array.from(data), shape),
      uploadInt: (data, shape) => wrap(Int32Array.from(data), shape),
      zeros: (shape) => wrap(new Float32Array(numel(shape)), shape),
      reshape: (t, shape) => reshapeHandle(t, shape),
      read: async (t) => Float32Array.from(t.store.data),
    }),
    dispose: (t) => {
      if (!releaseHandle(t)) return;
      bytes.sub(t.store.data.byteLength);
      t.store.data = new Float32Array(0);
    },
    destroy: async () => {},
    memory: () => bytes,
  };
}
