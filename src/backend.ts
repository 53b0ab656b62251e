// The backend contract: the small set of kernels every backend must provide, checked by
// the compiler, and the sizes each kernel receives. The model, growth and training code are
// written only against this file. What each op accepts is stated once, in src/op-specs.ts;
// src/define-backend.ts puts those checks in front of every backend.
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

// ---- the sizes OP_SPECS (src/op-specs.ts) derives: what a kernel receives first ----

export interface MatmulDims {
  /** Number of batches (1 for plain 2-D). */
  batch: number;
  M: number;
  K: number;
  N: number;
  /** A is stored (K, M) and used transposed. */
  transA: boolean;
  /** B is stored (N, K) and used transposed. */
  transB: boolean;
  /** B has its own matrix per batch (else one (K,N) matrix shared by all). */
  bBatched: boolean;
}

export interface PattentionSizes {
  N: number;
  dIn: number;
  n: number;
  dOut: number;
}

export interface AttentionSizes {
  B: number;
  T: number;
  H: number;
  D: number;
}

export interface RotarySizes {
  B: number;
  T: number;
  H: number;
  D: number;
  /** Position of the first row (src/op-specs.ts checks it is an integer ≥ 0). */
  offset: number;
}

/** C = op(A)·op(B): `lead` are A's leading dims, `out` = [...lead, M, N]. */
export interface MatmulSizes extends MatmulDims {
  lead: readonly number[];
  out: Shape;
}
/** An elementwise op: `size` elements of shape `out`. */
export interface ElementwiseSizes {
  size: number;
  out: Shape;
}
/** A row-wise op over the last dim: `rows` rows of `n` (normAct, layerNorm's C). */
export interface RowSizes {
  rows: number;
  n: number;
  out: Shape;
}
/** Rotary on [B, T, H, D] at positions offset…offset+T−1. */
export interface RotaryOpSizes extends RotarySizes {
  out: Shape;
}
/** [a, b, c, d] → [a, c, b, d]. */
export interface PermuteSizes {
  a: number;
  b: number;
  c: number;
  d: number;
  out: Shape;
}
/** G groups of T × T scores. */
export interface CausalSizes {
  G: number;
  T: number;
  out: Shape;
}
/** `rows` ids into a [V, C] table; `out` = [...ids.shape, C] (or [V, C] for the backward). */
export interface EmbeddingSizes {
  rows: number;
  V: number;
  C: number;
  out: Shape;
}
/** N rows of V logits. */
export interface CrossEntropySizes {
  N: number;
  V: number;
}
/** The element count of each tensor. */
export interface SumSquaresSizes {
  sizes: readonly number[];
}
/** The element count of param (= grad = m = v). */
export interface AdamWSizes {
  size: number;
}
/** out = [...x.shape without its last dim, dOut]. */
export interface PattentionOpSizes extends PattentionSizes {
  out: Shape;
}
/** q, k, v, out: [B, T, H, D]. */
export interface AttentionOpSizes extends AttentionSizes {
  out: Shape;
}

/** The sizes of every op, keyed by op name. */
export interface OpSizes {
  matmul: MatmulSizes;
  add: ElementwiseSizes;
  normAct: RowSizes;
  normActBackward: RowSizes;
  layerNorm: RowSizes;
  layerNormBackward: RowSizes;
  rotary: RotaryOpSizes;
  permute0213: PermuteSizes;
  causalSoftmax: CausalSizes;
  causalSoftmaxBackward: CausalSizes;
  embedding: EmbeddingSizes;
  embeddingBackward: EmbeddingSizes;
  crossEntropy: CrossEntropySizes;
  crossEntropyBackward: CrossEntropySizes;
  sumSquares: SumSquaresSizes;
  adamw: AdamWSizes;
}

/**
 * The required kernels. Every op allocates and returns new tensors, except `adamw`, which
 * updates its param/m/v in place. What each op accepts (dtypes, ranks, shapes, parameters) is
 * stated once, in its entry of OP_SPECS (src/op-specs.ts), which runs before every kernel.
 */
export interface KernelSigs<T> {
  /** C = op(A)·op(B); B is shared by every batch when 2-D. */
  matmul(a: T, b: T, transA: boolean, transB: boolean): T;
  /** Elementwise a + b. */
  add(a: T, b: T): T;
  /** Θ row-wise over the last dim of s. */
  normAct(s: T, p: NormActParams): T;
  /** dS from dA, given the scores s (spec/ops/norm_act.md). */
  normActBackward(s: T, dA: T, p: NormActParams): T;
  /** LayerNorm over the last dim. w, b null = the non-parametric LN₀. mean, rstd: [rows]. */
  layerNorm(x: T, w: T | null, b: T | null, eps: number): { y: T; mean: T; rstd: T };
  layerNormBackward(
    dY: T, x: T, mean: T, rstd: T, w: T | null,
  ): { dX: T; dW: T | null; dB: T | null };
  /** x: [B, T, H, D] at positions p.offset + t. inverse = rotate by −θ (the backward). */
  rotary(x: T, p: RotaryParams, inverse: boolean): T;
  /** [a, b, c, d] → [a, c, b, d]. Its own backward (apply to the [a, c, b, d] gradient). */
  permute0213(x: T): T;
  /** P = softmax(scale·s) over the last dim, masked to columns ≤ row. */
  causalSoftmax(s: T, scale: number): T;
  /** dS (w.r.t. the unscaled s) from P and dP. */
  causalSoftmaxBackward(p: T, dP: T, scale: number): T;
  /** Rows of table at ids. Throws on an out-of-range id. */
  embedding(ids: T, table: T): T;
  /** dTable: [vocab, C], the scatter-add of dOut rows at their ids. */
  embeddingBackward(ids: T, dOut: T, vocab: number): T;
  /** loss: [] (mean over rows), lse: [N] (log-sum-exp per row). */
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

/**
 * What a forward keeps for its backward, closed over by the code that made it (a backend's
 * fused kernel, or the composition in src/compose.ts), so its contents stay typed there and
 * opaque here. Use it once: `backward` consumes and frees it; `release` frees it unused.
 */
export interface Saved<T, G> {
  backward(dOut: T): G;
  release(): void;
}

export interface PattentionGrads<T> {
  dX: T;
  dK: T;
  dV: T;
}
export interface AttentionGrads<T> {
  dQ: T;
  dK: T;
  dV: T;
}

/** A fused op's result: its output, and what its backward needs. */
export interface Fused<T, G> {
  out: T;
  saved: Saved<T, G>;
}

/**
 * Optional fused kernels, each one forward/backward pair (src/define-backend.ts builds them
 * from a backend's typed pair, so a backend provides both halves or neither). src/compose.ts
 * checks the arguments (FUSED_SPECS) and falls back to the primitives when one is absent.
 */
export interface FusedKernels<T> {
  /** out = Θ(x·kᵀ)·v (FUSED_SPECS.pattention states the shapes). */
  pattention(z: PattentionOpSizes, x: T, k: T, v: T, p: NormActParams): Fused<T, PattentionGrads<T>>;
  /** Causal attention, scale 1/√D (FUSED_SPECS.attention). */
  attention(z: AttentionOpSizes, q: T, k: T, v: T): Fused<T, AttentionGrads<T>>;
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
  /** Bytes of tensor storage alive now and at most since the backend was made (or the last
   *  resetPeak), counted where the backend allocates, so a fused op's saved state counts too.
   *  Not pools, staging buffers or driver overhead. Absent where a backend does not count. */
  memory?(): MemoryStats;
}

export interface MemoryStats {
  liveBytes: number;
  peakBytes: number;
  /** Starts a new peak from the bytes alive now. */
  resetPeak(): void;
}

/** A live/peak byte counter a backend keeps at its allocator (see Backend.memory). */
export class ByteCounter implements MemoryStats {
  liveBytes = 0;
  peakBytes = 0;
  add(bytes: number): void {
    this.liveBytes += bytes;
    if (this.liveBytes > this.peakBytes) this.peakBytes = this.liveBytes;
  }
  sub(bytes: number): void {
    this.liveBytes -= bytes;
  }
  resetPeak(): void {
    this.peakBytes = this.liveBytes;
  }
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
