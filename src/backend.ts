// The backend contract: the small set of kernels every backend must provide, checked by
// the compiler. The model, growth and training code are written only against this file.
// Omits: autodiff (each op's backward is its own kernel, hand-derived in spec/ops/),
// dtypes beyond f32 data and i32 token ids, and broadcasting beyond what the model needs.
//
// Dimension legend used in shape comments:
//   B = batch, T = time (sequence), C = hidden channels, H = heads, D = head dim,
//   N = rows (B·T), n = parameter-token count of a Pattention layer, V = vocab.

export type Shape = readonly number[];
export type DType = 'f32' | 'i32';

/** Backend-owned storage. `refs` counts the handles that view it (see `reshape`). */
export class Store<S> {
  refs = 1;
  constructor(public data: S, readonly size: number) {}
}

/** A tensor handle. Its storage lives on the backend; read it back with `backend.read`. */
export class Handle<S = unknown> {
  disposed = false;
  constructor(
    readonly shape: Shape,
    readonly dtype: DType,
    readonly store: Store<S>,
  ) {}
  get size(): number {
    return numel(this.shape);
  }
}

export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export type Variant = 'l2_norm_gelu' | 'gelu_l2_norm' | 'softmax';
export const VARIANTS: readonly Variant[] = ['l2_norm_gelu', 'gelu_l2_norm', 'softmax'];

/** Θ, the modified softmax of a Pattention layer (spec/ops/norm_act.md). */
export interface NormActParams {
  variant: Variant;
  /** The layer's normalization token count: the n inside √n (or n·softmax). */
  normN: number;
}

/** Partial rotary embedding on x: [B, T, H, D] (spec/ops/rotary.md). */
export interface RotaryParams {
  /** Number of leading dims of each head that rotate; even, ≤ D. */
  rotaryDim: number;
  base: number;
  /** Position of x's first row: rows are positions offset…offset+T−1. An integer ≥ 0;
   *  absent = 0 (training). The KV-cache decode path passes the cache length (spec/decode.md). */
  offset?: number;
}

export interface AdamWParams {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 1-based step count, for bias correction. */
  step: number;
  /** Global-norm clipping threshold; 0 disables clipping. */
  maxGradNorm: number;
  /** Multiplies the gradient before anything else (e.g. 1/accumulation steps). */
  gradScale: number;
}

/**
 * The required kernels. Every op allocates and returns new tensors, except `adamw`,
 * which updates its param/m/v in place. Sizes come from the input shapes.
 */
export interface KernelSigs<T> {
  /** C = op(A)·op(B). A: [..., M, K] ([..., K, M] if transA); B: [K, N] ([N, K] if transB),
   *  either 2-D (shared by every batch) or with the same leading dims as A. C: [..., M, N]. */
  matmul(a: T, b: T, transA: boolean, transB: boolean): T;
  /** Elementwise a + b, equal shapes. */
  add(a: T, b: T): T;
  /** Θ row-wise over the last dim of s: [..., n]. */
  normAct(s: T, p: NormActParams): T;
  /** dS from dA, given the scores s (spec/ops/norm_act.md). */
  normActBackward(s: T, dA: T, p: NormActParams): T;
  /** LayerNorm over the last dim. w, b null = the non-parametric LN₀. mean, rstd: [rows]. */
  layerNorm(x: T, w: T | null, b: T | null, eps: number): { y: T; mean: T; rstd: T };
  layerNormBackward(
    dY: T, x: T, mean: T, rstd: T, w: T | null,
  ): { dX: T; dW: T | null; dB: T | null };
  /** x: [B, T, H, D] at positions p.offset + t, t = 0…T−1. inverse = rotate by −θ (the backward). */
  rotary(x: T, p: RotaryParams, inverse: boolean): T;
  /** [a, b, c, d] → [a, c, b, d]. Its own backward (apply to the [a, c, b, d] gradient). */
  permute0213(x: T): T;
  /** s: [..., T, T] → P = softmax(scale·s) over the last dim, masked to columns ≤ row. */
  causalSoftmax(s: T, scale: number): T;
  /** dS (w.r.t. the unscaled s) from P and dP. */
  causalSoftmaxBackward(p: T, dP: T, scale: number): T;
  /** ids: i32 [B, T]; table: [V, C] → [B, T, C]. Throws on an out-of-range id. */
  embedding(ids: T, table: T): T;
  /** dTable: [V, C], the scatter-add of dOut rows at their ids. */
  embeddingBackward(ids: T, dOut: T, vocab: number): T;
  /** logits: [N, V], targets: i32 [N] → loss: [] (mean), lse: [N] (log-sum-exp per row). */
  crossEntropy(logits: T, targets: T): { loss: T; lse: T };
  /** dLogits = dLoss · (softmax(logits) − onehot) / N. */
  crossEntropyBackward(logits: T, lse: T, targets: T, dLoss: number): T;
  /** Σ x² over every element of every tensor → [] (for the global gradient norm). */
  sumSquares(ts: readonly T[]): T;
  /** In-place AdamW (decoupled decay) on param, m, v. gradNormSq: [] from `sumSquares`,
   *  or null when p.maxGradNorm is 0. Clip coef = min(1, max / (√gradNormSq + 1e-6)). */
  adamw(param: T, grad: T, m: T, v: T, p: AdamWParams, gradNormSq: T | null): void;
}

export type OpName = keyof KernelSigs<unknown>;
/** Mapped over the op names: a backend missing a kernel fails to compile. */
export type Kernels<T> = { [K in OpName]: KernelSigs<T>[K] };

/** What a fused forward keeps for its backward; opaque to the caller, freed by the backward. */
export interface Saved<T> {
  tensors: T[];
}

/** Optional fused kernels; src/compose.ts falls back to the primitives above. */
export interface FusedKernels<T> {
  /** x: [N, d_in], k: [n, d_in], v: [n, d_out] → out: [N, d_out]. */
  pattention(x: T, k: T, v: T, p: NormActParams): { out: T; saved: Saved<T> };
  pattentionBackward(
    dOut: T, x: T, k: T, v: T, saved: Saved<T>, p: NormActParams,
  ): { dX: T; dK: T; dV: T };
  /** Causal attention, q, k, v: [B, T, H, D] → [B, T, H, D], scale 1/√D. */
  attention(q: T, k: T, v: T): { out: T; saved: Saved<T> };
  attentionBackward(dOut: T, q: T, k: T, v: T, saved: Saved<T>): { dQ: T; dK: T; dV: T };
}

export interface Backend<T extends Handle = Handle> {
  /** e.g. 'cpu', 'webgpu', 'gpujs-headlessgl'. */
  readonly name: string;
  readonly ops: Kernels<T>;
  readonly fused: Partial<FusedKernels<T>>;
  upload(data: Float32Array, shape: Shape): T;
  uploadInt(data: Int32Array, shape: Shape): T;
  zeros(shape: Shape): T;
  /** A new handle on the same storage (no copy). Dispose each handle separately. */
  reshape(t: T, shape: Shape): T;
  /** Copies the tensor back to host memory (i32 tensors come back converted to f32). */
  read(t: T): Promise<Float32Array>;
  /** Drops this handle; storage is freed when its last handle is disposed. */
  dispose(t: T): void;
  /** Releases the device. */
  destroy(): Promise<void>;
}

/** Shared reshape for backends whose Handle is the class above. */
export function reshapeHandle<S>(t: Handle<S>, shape: Shape): Handle<S> {
  if (numel(shape) !== t.size) {
    throw new Error(`reshape: [${t.shape}] has ${t.size} elements, not ${numel(shape)} ([${shape}])`);
  }
  t.store.refs++;
  return new Handle(shape, t.dtype, t.store);
}

/** Shared dispose bookkeeping: returns true when the storage should be freed now. */
export function releaseHandle<S>(t: Handle<S>): boolean {
  if (t.disposed) return false;
  t.disposed = true;
  t.store.refs--;
  return t.store.refs === 0;
}
