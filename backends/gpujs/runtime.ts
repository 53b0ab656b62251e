// The GPU.js runtime under the backend: tensor slots, the kernel cache, ordered execution,
// upload/read/free. Kernels live in ./kernels/*; this file knows nothing about any op, and
// checks no op's arguments (the op table does, src/op-specs.ts); it guards only its storage.
// Omits: memory pooling (GPU.js recycles a kernel's own output texture), multi-output
// kernels (kernel maps are GL-only in GPU.js, so every output is its own launch).
//
// Storage: every tensor, whatever its shape, is ONE flat 1-D GPU.js value of `size` floats
// (a GL texture, a WebGPU buffer, or a Float32Array in the cpu/webasm modes), so reshape is
// free and every kernel indexes a[i] with a flat index it computes itself.
// NOTE: GPU.js computes indices in float32 on the GL, WebGPU and webasm paths, so a flat
// index is exact only below 2^24; larger tensors are refused (see `checkSize`).

import type { GPU, IKernelRunShortcut } from 'gpu.js';
import {
  Handle, Store, numel, releaseHandle, reshapeHandle, type DType, type Shape,
} from '../../src/backend.ts';
import type { GpujsMode } from './modes.ts';

/** What a tensor's storage holds: the device value, plus host ids for i32 tensors. */
export interface Slot {
  /** A GPU.js pipeline value (Texture, WebGPUBufferResult or Float32Array); null when empty. */
  v: DeviceValue | null;
  /** Host copy of an i32 tensor (ids, targets): range checks and the embedding scatter plan. */
  ints?: Int32Array;
  /** Per-slot derived device tensors (e.g. the embedding scatter plan), freed with the slot. */
  aux?: Map<string, GHandle[]>;
}

/** Opaque GPU.js value: Texture (GL), WebGPUBufferResult (webgpu), Float32Array (cpu, webasm). */
export type DeviceValue = { delete?: () => void; toArray?: () => unknown } | Float32Array;
export type GHandle = Handle<Slot>;
/** A kernel argument: a tensor (its device value), a float scalar, or host data to upload. */
export type Arg = GHandle | number | Float32Array;

/** Largest flat index GPU.js addresses exactly (float32 integers). */
export const MAX_ELEMENTS = 1 << 24;

/** The GPU.js kernel class each mode must actually run on (guards silent CPU fallback). */
const KERNEL_CLASS: Record<GpujsMode, string> = {
  headlessgl: 'HeadlessGLKernel', webgpu: 'WebGPUKernel', webasm: 'WebAssemblyKernel', cpu: 'CPUKernel',
};

export class Runtime {
  private readonly cache = new Map<string, IKernelRunShortcut>();
  private readonly checked = new Set<string>();
  /** webgpu only: every device action runs in program order on this chain. */
  private tail: Promise<void> = Promise.resolve();
  private failure: unknown = null;
  readonly async: boolean;
  /** Device tensors kept for the runtime's life (rotary tables), by key. */
  readonly resident = new Map<string, GHandle[]>();

  constructor(readonly gpu: GPU, readonly mode: GpujsMode) {
    // GPU.js webgpu kernels return Promises; the backend contract is synchronous, so the
    // webgpu path queues each action and resolves handles lazily, in program order.
    this.async = mode === 'webgpu';
  }

  /** Runs fn now (sync modes), or after every earlier action (webgpu). */
  schedule(fn: () => void | Promise<void>): void {
    if (!this.async) {
      fn();
      return;
    }
    this.tail = this.tail.then(fn).catch((e: unknown) => {
      this.failure ??= e;
    });
  }

  /** The compiled kernel for key, built from src on first use (once per op + shape + attrs). */
  kernel(key: string, src: string, size: number, constants: Record<string, number>): IKernelRunShortcut {
    let k = this.cache.get(key);
    if (!k) {
      k = this.gpu.createKernel(src, {
        output: [size],
        constants,
        precision: 'single',
        tactic: 'precision',
        pipeline: true,
        immutable: true,
      });
      this.cache.set(key, k);
    }
    return k;
  }

  /** A new handle with an empty slot (its producer fills it, in program order). */
  make(shape: Shape, dtype: DType = 'f32'): GHandle {
    const size = numel(shape);
    checkSize(size);
    return new Handle([...shape], dtype, new Store<Slot>({ v: null }, size));
  }

  /**
   * out = kernel(args) as a new tensor of `shape`. Number args are float scalars; handle
   * args pass their device value. Sizes and attrs belong in `constants` (and the key).
   */
  launch(
    key: string, src: string, shape: Shape, constants: Record<string, number>, args: readonly Arg[],
  ): GHandle {
    const out = this.make(shape);
    if (out.size === 0) return out;
    // Storage: an empty tensor has no device value to bind (kernels return early instead).
    for (const a of args) {
      if (a instanceof Handle && a.size === 0) throw new Error(`gpujs ${key}: empty input tensor`);
    }
    const k = this.kernel(key, src, out.size, constants);
    this.schedule(() => this.call(key, k, out.store.data, args));
    return out;
  }

  private call(key: string, k: IKernelRunShortcut, slot: Slot, args: readonly Arg[]): void | Promise<void> {
    const vals = args.map((a) => (a instanceof Handle ? deviceValue(a) : a));
    const r = (k as unknown as (...xs: unknown[]) => unknown)(...vals);
    if (r instanceof Promise) {
      return r.then((v: DeviceValue) => {
        slot.v = v;
        this.checkClass(key, k);
      });
    }
    slot.v = r as DeviceValue;
    this.checkClass(key, k);
  }

  /** GPU.js may silently degrade a kernel to its CPU backend; refuse that. */
  private checkClass(key: string, k: IKernelRunShortcut): void {
    if (this.checked.has(key)) return;
    const ran = (k.kernel as unknown as { constructor: { name: string } }).constructor.name;
    if (ran !== KERNEL_CLASS[this.mode]) {
      throw new Error(`gpujs-${this.mode}: kernel ${key} ran on ${ran}, not ${KERNEL_CLASS[this.mode]}`);
    }
    this.checked.add(key);
  }

  /** A new handle on t's storage (no copy). */
  reshape(t: GHandle, shape: Shape): GHandle {
    return reshapeHandle(t, shape) as GHandle;
  }

  /** Drops a handle; frees its storage with its last handle. */
  dispose(t: GHandle): void {
    if (releaseHandle(t)) this.free(t.store.data);
  }

  /** Replaces a slot's value in place (AdamW): the old value is freed after earlier readers ran. */
  replace(dst: GHandle, src: GHandle): void {
    this.schedule(() => {
      const old = dst.store.data.v;
      dst.store.data.v = src.store.data.v;
      src.store.data.v = null;
      if (old) freeValue(old);
    });
    src.disposed = true;
    src.store.refs = 0;
  }

  /** Frees a slot's device value (and its aux tensors) after every earlier action. */
  free(slot: Slot): void {
    this.schedule(() => {
      if (slot.v) freeValue(slot.v);
      slot.v = null;
    });
    if (slot.aux) {
      for (const hs of slot.aux.values()) for (const h of hs) this.free(h.store.data);
      slot.aux = undefined;
    }
  }

  /** Reads a slot back to the host, after every earlier action. */
  read(t: GHandle): Promise<Float32Array> {
    if (t.size === 0) return Promise.resolve(new Float32Array(0));
    return new Promise<Float32Array>((resolve, reject) => {
      this.schedule(async () => {
        try {
          resolve(await readValue(t.store.data, t.size));
        } catch (e) {
          reject(this.failure ?? e);
        }
      });
      if (!this.async) return;
      // A failure earlier in the queue is the real cause of anything odd here: report it.
      this.tail.then(() => {
        if (this.failure !== null) reject(this.failure);
      });
    });
  }

  async destroy(): Promise<void> {
    for (const hs of this.resident.values()) for (const h of hs) this.dispose(h);
    this.resident.clear();
    await this.tail;
    for (const k of this.cache.values()) (k as unknown as { destroy?: () => void }).destroy?.();
    this.cache.clear();
    await this.gpu.destroy();
  }
}

/** Throws for sizes GPU.js cannot index exactly (its indices are float32). */
export function checkSize(size: number): void {
  if (size > MAX_ELEMENTS) {
    throw new Error(`gpujs: a tensor of ${size} elements exceeds GPU.js's exact float32 indexing (2^24)`);
  }
}

/** The host ids of an i32 tensor (`uploadInt` keeps them; the op table checked the dtype). */
export function hostIds(t: GHandle): Int32Array {
  const ints = t.store.data.ints;
  // Storage: every i32 tensor comes from uploadInt, which sets them.
  if (ints === undefined) throw new Error(`gpujs: i32 tensor [${t.shape}] has no host ids`);
  return ints;
}

function deviceValue(h: GHandle): DeviceValue {
  const v = h.store.data.v;
  if (v === null) throw new Error(`gpujs: tensor [${h.shape}] was freed or never computed`);
  return v;
}

function freeValue(v: DeviceValue): void {
  if (!(v instanceof Float32Array)) v.delete?.();
}

async function readValue(slot: Slot, size: number): Promise<Float32Array> {
  const v = slot.v;
  if (v === null) throw new Error('gpujs: read of a disposed or never-computed tensor');
  const host = v instanceof Float32Array ? v : await (v.toArray!() as Float32Array | Promise<Float32Array>);
  const out = new Float32Array(size);
  out.set((host as Float32Array).subarray(0, size));
  return out;
}
