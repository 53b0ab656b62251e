// Tensor storage for the WebGPU backend: a size-bucketed buffer pool, handles, uploads and
// staged readback. Int tensors keep a host shadow so ids are validated on the host, exactly
// as the CPU reference does, before any kernel reads them.
// Omits: sub-allocation inside big buffers, memory pressure callbacks.

import { ByteCounter, Handle, Store, numel, releaseHandle, type DType, type Shape } from '../../src/backend.ts';
import { GpuContext, type Binding } from './device.ts';
import { MAP_READ, USAGE } from './usage.ts';

export type GHandle = Handle<GPUBuffer>;

const STORAGE = USAGE.STORAGE | USAGE.COPY_SRC | USAGE.COPY_DST;
/** Free buffers beyond this many bytes are destroyed instead of pooled. */
const POOL_CAP_BYTES = 1 << 30;

/** Rounds a byte size up to a bucket: 256-byte steps, then 1/8-octave steps (≤ 12.5% waste). */
export function bucketBytes(bytes: number): number {
  const b = Math.max(16, Math.ceil(bytes / 4) * 4);
  if (b <= 4096) return Math.ceil(b / 256) * 256;
  const step = 2 ** (Math.floor(Math.log2(b)) - 3);
  return Math.ceil(b / step) * step;
}

/**
 * Free buffers by size bucket. A request takes the bucket's oldest buffer (lowest creation
 * number), not the last one freed: the choice then depends only on which buffers are free,
 * not on the order they were freed in, so a training step that repeats the same allocations
 * gets the same buffers every time, and its bind groups come from the cache (groups.ts).
 * With last-freed-first, 126 of a step's 165 dispatches missed the cache in steady state.
 */
class Pool {
  private readonly free = new Map<number, GPUBuffer[]>(); // each sorted by serial, descending
  private readonly serial = new WeakMap<GPUBuffer, number>();
  private nextSerial = 0;
  private freeBytes = 0;

  constructor(private readonly ctx: GpuContext, private readonly usage: number) {}

  acquire(bytes: number): GPUBuffer {
    const size = bucketBytes(bytes);
    const buf = this.free.get(size)?.pop();
    if (buf) {
      this.freeBytes -= size;
      return buf;
    }
    const b = this.ctx.createBuffer(size, this.usage);
    this.serial.set(b, this.nextSerial++);
    return b;
  }

  release(buf: GPUBuffer): void {
    if (this.freeBytes + buf.size > POOL_CAP_BYTES) {
      this.ctx.flush(); // encoded commands may still name it: submit them before destroying
      buf.destroy();
      return;
    }
    let list = this.free.get(buf.size);
    if (!list) this.free.set(buf.size, (list = []));
    const n = this.serial.get(buf) ?? 0;
    let i = list.length; // keep descending order: pop() returns the oldest
    while (i > 0 && (this.serial.get(list[i - 1]) ?? 0) < n) i--;
    list.splice(i, 0, buf);
    this.freeBytes += buf.size;
  }

  destroyAll(): void {
    for (const list of this.free.values()) for (const b of list) b.destroy();
    this.free.clear();
    this.freeBytes = 0;
  }
}

/** Internal invariant: a kernel binds only live tensors (the op table checked the caller's). */
function live(t: GHandle): void {
  if (t.disposed) throw new Error(`internal: a disposed [${t.shape}] tensor was bound to a kernel`);
}

/** Allocation, upload, readback and disposal of tensor handles. */
export class Mem {
  private readonly pool: Pool;
  private readonly staging: Pool;
  private readonly ints = new WeakMap<Store<GPUBuffer>, Int32Array>();
  /** Bytes of live tensors (not the pool's free buffers or staging): Backend.memory. */
  readonly bytes = new ByteCounter();

  constructor(readonly ctx: GpuContext) {
    this.pool = new Pool(ctx, STORAGE);
    this.staging = new Pool(ctx, USAGE.MAP_READ | USAGE.COPY_DST);
  }

  /** A new uninitialized tensor. */
  alloc(shape: Shape, dtype: DType = 'f32'): GHandle {
    const n = numel(shape);
    const buf = this.pool.acquire(n * 4);
    this.bytes.add(n * 4);
    return new Handle(shape, dtype, new Store(buf, n));
  }

  /** The storage binding of a whole tensor. */
  bind(t: GHandle): Binding {
    live(t);
    const size = t.size * 4;
    this.ctx.checkBinding(size, `a [${t.shape}] tensor`);
    return { buffer: t.store.data, size };
  }

  /**
   * A binding of elements [lo, hi) of t: it starts at the aligned offset at or below lo
   * (minStorageBufferOffsetAlignment), so the kernel indexes it from `shift` = lo − start.
   */
  window(t: GHandle, lo: number, hi: number): { bind: Binding; shift: number } {
    live(t);
    const align = this.ctx.bindAlign;
    const start = Math.floor((lo * 4) / align) * align;
    const size = Math.max(4, hi * 4 - start);
    this.ctx.checkBinding(size, `elements [${lo}, ${hi}) of a [${t.shape}] tensor`);
    return { bind: { buffer: t.store.data, offset: start, size }, shift: lo - start / 4 };
  }

  /** Whether the whole of t fits one binding. */
  fits(t: GHandle): boolean {
    return t.size * 4 <= this.ctx.maxBinding;
  }

  /**
   * Element ranges [lo, hi) of n elements, each a whole binding that starts aligned: chunks
   * of maxBinding bytes (a multiple of the offset alignment, so every start is aligned).
   */
  ranges(n: number): [number, number][] {
    const align = this.ctx.bindAlign;
    const per = (Math.floor(this.ctx.maxBinding / align) * align) / 4;
    const out: [number, number][] = [];
    for (let lo = 0; lo < n; lo += per) out.push([lo, Math.min(n, lo + per)]);
    if (out.length === 0) out.push([0, 0]);
    return out;
  }

  /**
   * Row ranges [r0, r1) of `rows` rows of `cols` elements whose windows (mem.window, up to
   * one alignment of slack before the first row) each fit one binding; a single range when
   * the whole tensor fits. Throws WebGPUError when one row alone does not fit.
   */
  rowRanges(rows: number, cols: number, what: string): [number, number][] {
    const max = this.ctx.maxBinding;
    if (rows * cols * 4 <= max) return [[0, rows]];
    const per = Math.floor((max - this.ctx.bindAlign + 4) / Math.max(1, cols * 4));
    if (per < 1) this.ctx.checkBinding(cols * 4 + this.ctx.bindAlign - 4, `a row of ${what}`);
    const out: [number, number][] = [];
    for (let r = 0; r < rows; r += per) out.push([r, Math.min(rows, r + per)]);
    return out;
  }

  upload(data: Float32Array | Int32Array, shape: Shape, dtype: DType): GHandle {
    // Internal invariant: defineBackend checked the caller's uploads; the kernels' own match.
    if (data.length !== numel(shape)) throw new Error(`internal: upload of ${data.length} values for shape [${shape}]`);
    // Pooled buffers may still be named by encoded, unsubmitted commands; writeBuffer runs
    // before those on the queue, so submit them first.
    this.ctx.flush();
    const t = this.alloc(shape, dtype);
    if (data.length > 0) this.ctx.queue.writeBuffer(t.store.data, 0, data.buffer, data.byteOffset, data.byteLength);
    if (dtype === 'i32') this.ints.set(t.store, Int32Array.from(data));
    return t;
  }

  /** The host copy of an i32 tensor's ids (every i32 tensor comes from `upload`). */
  hostInts(t: GHandle): Int32Array {
    const ids = this.ints.get(t.store);
    // Internal invariant: the op table checked the dtype, and every i32 tensor is uploaded.
    if (!ids) throw new Error(`internal: no host copy of the ${t.dtype} [${t.shape}] tensor`);
    return ids;
  }

  zeros(shape: Shape): GHandle {
    const t = this.alloc(shape);
    this.ctx.endPass();
    this.ctx.encoder().clearBuffer(t.store.data, 0, t.store.data.size);
    return t;
  }

  async read(t: GHandle): Promise<Float32Array> {
    this.ctx.assertOk(); // t is live: defineBackend's read checked it
    if (t.dtype === 'i32') {
      await this.ctx.sync();
      return Float32Array.from(this.hostInts(t));
    }
    const bytes = t.size * 4;
    if (bytes === 0) return new Float32Array(0);
    const stage = this.staging.acquire(bytes);
    this.ctx.endPass();
    this.ctx.encoder().copyBufferToBuffer(t.store.data, 0, stage, 0, bytes);
    this.ctx.flush();
    try {
      await this.ctx.wait(stage.mapAsync(MAP_READ, 0, bytes));
    } catch (e) {
      await this.ctx.sync(); // prefer the underlying device error if there is one
      throw e;
    }
    const out = new Float32Array(stage.getMappedRange(0, bytes).slice(0));
    stage.unmap();
    this.staging.release(stage);
    await this.ctx.sync(); // any error in the batches that produced it → throw, not a wrong value
    return out;
  }

  dispose(t: GHandle): void {
    if (!releaseHandle(t)) return;
    this.bytes.sub(t.store.size * 4);
    this.pool.release(t.store.data);
  }

  destroy(): void {
    this.pool.destroyAll();
    this.staging.destroyAll();
  }
}
