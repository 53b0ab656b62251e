// Builds a backend's checked face from its raw parts: every kernel call runs the op's entry
// in OP_SPECS first and hands the kernel the derived sizes, each fused pair becomes one
// fused op whose saved state stays typed inside the backend, and uploads, reshapes and reads
// check their handles. Backends write kernels only; they never validate (src/op-specs.ts).
// Omits: value checks (ops/embedding.ts) and device errors (each backend's own).

import {
  numel,
  type AttentionGrads, type AttentionOpSizes, type Backend, type FusedKernels, type Handle, type KernelSigs,
  type Kernels, type NormActParams, type OpName, type OpSizes, type PattentionGrads, type PattentionOpSizes,
  type Saved, type Shape,
} from './backend.ts';
import { check } from './errors.ts';
import { FUSED_SPECS, OP_SPECS, live } from './op-specs.ts';

/** A kernel as a backend writes it: the op's checked sizes, then the op's own arguments. */
export type RawKernels<T> = {
  [K in OpName]: (z: OpSizes[K], ...args: Parameters<KernelSigs<T>[K]>) => ReturnType<KernelSigs<T>[K]>;
};

/**
 * A fused op as a backend writes it: forward and backward together, with the state S the
 * forward keeps for the backward (typed by the backend; nobody else sees it).
 */
export interface FusedPair<T, Z, In extends unknown[], G, S> {
  forward(z: Z, ...args: In): { out: T; saved: S };
  /** Consumes S (frees it) and returns the input gradients. */
  backward(z: Z, dOut: T, saved: S, ...args: In): G;
  /** Frees S when no backward will run (inference). */
  release(saved: S): void;
}
export type PattentionPair<T, S> =
  FusedPair<T, PattentionOpSizes, [x: T, k: T, v: T, p: NormActParams], PattentionGrads<T>, S>;
export type AttentionPair<T, S> = FusedPair<T, AttentionOpSizes, [q: T, k: T, v: T], AttentionGrads<T>, S>;

/** The fused pairs a backend provides (each optional: src/compose.ts composes the rest). */
export interface RawFused<T, PS, AS> {
  pattention?: PattentionPair<T, PS>;
  attention?: AttentionPair<T, AS>;
}

/** The raw parts of a backend: kernels that trust their sizes, and host transfers. */
export interface RawBackend<T extends Handle, PS = unknown, AS = unknown> {
  kernels: RawKernels<T>;
  fused: RawFused<T, PS, AS>;
  /** data.length = numel(shape), checked before the call. */
  upload(data: Float32Array, shape: Shape): T;
  uploadInt(data: Int32Array, shape: Shape): T;
  zeros(shape: Shape): T;
  /** A new handle on t's storage; t is live and numel(shape) = t.size, checked. */
  reshape(t: T, shape: Shape): T;
  /** t is live, checked. */
  read(t: T): Promise<Float32Array>;
}

export type CheckedParts<T extends Handle> = Pick<Backend<T>, 'ops' | 'fused' | 'upload' | 'uploadInt' | 'zeros' | 'reshape' | 'read'>;

/** The checked face of a backend: spread it into the backend object. */
export function defineBackend<T extends Handle, PS, AS>(raw: RawBackend<T, PS, AS>): CheckedParts<T> {
  return {
    ops: defineKernels(raw.kernels),
    fused: defineFused(raw.fused),
    upload: (data, shape) => raw.upload(data, uploadShape(data.length, shape, 'upload')),
    uploadInt: (data, shape) => raw.uploadInt(data, uploadShape(data.length, shape, 'uploadInt')),
    zeros: (shape) => raw.zeros(uploadShape(null, shape, 'zeros')),
    reshape: (t, shape) => {
      live(t, 'reshape');
      check(numel(shape) === t.size, `reshape: [${t.shape}] has ${t.size} elements, not ${numel(shape)} ([${shape}])`);
      return raw.reshape(t, shape);
    },
    read: (t) => {
      try {
        live(t, 'read');
      } catch (e) {
        return Promise.reject(e);
      }
      return raw.read(t);
    },
  };
}

/** Dims are integers ≥ 0 and, for an upload, match the data's length. */
function uploadShape(length: number | null, shape: Shape, what: string): Shape {
  check(shape.every((d) => Number.isSafeInteger(d) && d >= 0), `${what}: dims must be integers ≥ 0, got [${shape}]`);
  if (length !== null) {
    check(length === numel(shape), `tensor data has ${length} elements, shape [${shape}] needs ${numel(shape)}`);
  }
  return shape;
}

/** Every op behind its OP_SPECS entry, written out so the compiler checks each line. */
export function defineKernels<T extends Handle>(raw: RawKernels<T>): Kernels<T> {
  const S = OP_SPECS;
  return {
    matmul: (a, b, tA, tB) => raw.matmul(S.matmul(a, b, tA, tB), a, b, tA, tB),
    add: (a, b) => raw.add(S.add(a, b), a, b),
    normAct: (s, p) => raw.normAct(S.normAct(s, p), s, p),
    normActBackward: (s, dA, p) => raw.normActBackward(S.normActBackward(s, dA, p), s, dA, p),
    layerNorm: (x, w, b, eps) => raw.layerNorm(S.layerNorm(x, w, b, eps), x, w, b, eps),
    layerNormBackward: (dY, x, mean, rstd, w) =>
      raw.layerNormBackward(S.layerNormBackward(dY, x, mean, rstd, w), dY, x, mean, rstd, w),
    rotary: (x, p, inverse) => raw.rotary(S.rotary(x, p, inverse), x, p, inverse),
    permute0213: (x) => raw.permute0213(S.permute0213(x), x),
    causalSoftmax: (s, scale) => raw.causalSoftmax(S.causalSoftmax(s, scale), s, scale),
    causalSoftmaxBackward: (p, dP, scale) =>
      raw.causalSoftmaxBackward(S.causalSoftmaxBackward(p, dP, scale), p, dP, scale),
    embedding: (ids, table) => raw.embedding(S.embedding(ids, table), ids, table),
    embeddingBackward: (ids, dOut, vocab) =>
      raw.embeddingBackward(S.embeddingBackward(ids, dOut, vocab), ids, dOut, vocab),
    crossEntropy: (logits, targets) => raw.crossEntropy(S.crossEntropy(logits, targets), logits, targets),
    crossEntropyBackward: (logits, lse, targets, dLoss) =>
      raw.crossEntropyBackward(S.crossEntropyBackward(logits, lse, targets, dLoss), logits, lse, targets, dLoss),
    sumSquares: (ts) => raw.sumSquares(S.sumSquares(ts), ts),
    adamw: (param, grad, m, v, p, gns) => raw.adamw(S.adamw(param, grad, m, v, p, gns), param, grad, m, v, p, gns),
  };
}

function defineFused<T extends Handle, PS, AS>(raw: RawFused<T, PS, AS>): Partial<FusedKernels<T>> {
  const fused: Partial<FusedKernels<T>> = {};
  const pa = raw.pattention, at = raw.attention;
  if (pa) {
    fused.pattention = (z, x, k, v, p) => {
      const f = pa.forward(z, x, k, v, p);
      return {
        out: f.out,
        saved: savedOnce('pattentionBackward', z.out, [x, k, v], {
          backward: (dOut) => pa.backward(z, dOut, f.saved, x, k, v, p),
          release: () => pa.release(f.saved),
        }),
      };
    };
  }
  if (at) {
    fused.attention = (z, q, k, v) => {
      const f = at.forward(z, q, k, v);
      return {
        out: f.out,
        saved: savedOnce('attentionBackward', z.out, [q, k, v], {
          backward: (dOut) => at.backward(z, dOut, f.saved, q, k, v),
          release: () => at.release(f.saved),
        }),
      };
    };
  }
  return fused;
}

/**
 * Saved state that can be used once: the backward checks its upstream gradient against the
 * forward's output shape and that the forward's inputs are still live; a second use throws.
 * The fused kernels and the composition in src/compose.ts both go through it.
 */
export function savedOnce<T extends Handle, G>(
  what: string, outShape: Shape, inputs: readonly T[], inner: Saved<T, G>,
): Saved<T, G> {
  let used = false;
  const take = (): void => {
    check(!used, `${what}: its saved state was already used (a backward runs once)`);
    used = true;
  };
  return {
    backward(dOut) {
      FUSED_SPECS.gradient(dOut, outShape, what);
      inputs.forEach((t, i) => live(t, `${what} input ${i}`));
      take();
      return inner.backward(dOut);
    },
    release() {
      if (used) return;
      used = true;
      inner.release();
    },
  };
}
