// The device side of the WebGPU backend: command batching (many dispatches per submit),
// per-dispatch uniforms packed into one arena (a dynamic offset), pipeline and bind group
// caches, error scopes around every batch and device-loss handling, so a failure surfaces as
// an error, never a wrong result; and waits that do not keep a core polling (`quiet`).
// Omits: multiple queues, async pipeline compilation (timestamps live in profiler.ts).

import type {} from 'webgpu'; // the global GPU* types (@webgpu/types)
import { BindGroupCache, layoutFor, type Binding } from './groups.ts';
import { Profiler, type KernelTime } from './profiler.ts';
import { USAGE } from './usage.ts';

/** A device failure (lost device, validation, out of memory): the backend is unusable. */
export class WebGPUError extends Error {
  override name = 'WebGPUError';
}

/** A type-only brand: kernelDef (kernels/common.ts) is the one way to make a KernelDef. */
declare const registered: unique symbol;

/**
 * A compute kernel: WGSL whose `struct P` has one 4-byte field per char of `params`. Made
 * only by kernelDef (kernels/common.ts), whose registry refuses a key reused for other WGSL,
 * so that the pipeline cache below can be keyed by `key` alone.
 */
export interface KernelDef {
  /** Pipeline cache key; determines the WGSL. */
  readonly key: string;
  readonly wgsl: string;
  /** 'u' u32, 'i' i32, 'f' f32, one per field of the uniform struct P at @binding(0). */
  readonly params: string;
  readonly [registered]: true;
}

export type { Binding } from './groups.ts';

/** Uniform arena size; a batch is flushed when it is full. */
const ARENA_BYTES = 1 << 20;
/**
 * Dispatches per submit on a CPU adapter. Small batches let the adapter start on the first
 * dispatches while the host is still encoding the rest: on lavapipe, where both share the
 * same cores, a training step encoded as one batch left the device idle for the whole encode.
 */
const MAX_PENDING_CPU = 16;
/** Dispatches per submit on a GPU (the batching the H100 figures were measured with). */
const MAX_PENDING_GPU = 512;
/** Filters of the error scopes kept open around each batch (popped in reverse). */
const SCOPES: GPUErrorFilter[] = ['out-of-memory', 'validation', 'internal'];

/**
 * How kernels are laid out for the adapter. 'gpu': workgroup-cooperative kernels (tiled
 * matmul through workgroup memory, a workgroup per row with tree reductions). 'cpu', for
 * CPU-emulated adapters (llvmpipe/lavapipe, SwiftShader), which run invocations as SIMD lanes
 * and a workgroup as coroutines switched at every barrier: barrier-free kernels (register-
 * blocked "rowcast" matmul, one invocation per row). Measured on lavapipe: rowcast 2–4×
 * faster than tiled, a row per invocation up to 50× faster than a workgroup per row.
 */
export type KernelStyle = 'gpu' | 'cpu';

/** Whether the adapter is a CPU emulation (its device threads share the host's cores). */
export function isCpuAdapter(description: string): boolean {
  return /llvmpipe|lavapipe|swiftshader|\bcpu\b/i.test(description);
}

/** 'cpu' on CPU-emulated adapters, else 'gpu'; TOKENFORMER_WEBGPU_STYLE overrides. */
export function pickStyle(description: string): KernelStyle {
  const env = process.env.TOKENFORMER_WEBGPU_STYLE;
  if (env === 'gpu' || env === 'cpu') return env;
  return isCpuAdapter(description) ? 'cpu' : 'gpu';
}

/**
 * Awaits p with Dawn's event polling throttled to 1 ms (GpuContext.wait does so on CPU
 * adapters only: on a GPU the polling core is otherwise idle and 1 ms a wait is latency).
 * NOTE: dawn.node drives its promises by calling the global `setImmediate` in a loop (a
 * ProcessEvents per turn) for as long as any is pending: a core kept busy for the whole
 * wait. On lavapipe that core is one the device's own threads run on (measured: about a
 * third of the CPU time of a training step). While a `quiet` wait is in progress the global
 * is swapped for a 1 ms timer, so the wait costs ≤ 1 ms of latency instead.
 */
let quietDepth = 0;
let savedImmediate: typeof setImmediate | null = null;
let eager = 0;
const timeout = globalThis.setTimeout;
const immediate = globalThis.setImmediate;
const slow = ((fn: (...a: unknown[]) => void, ...args: unknown[]) =>
  eager-- > 0 ? immediate(fn, ...args) : timeout(fn, 1, ...args)) as unknown as typeof setImmediate;
/**
 * enabled: whether `quiet` throttles (a switch for measuring it). eager: polls at full speed
 * before the 1 ms timer, so that a promise whose work is already done (the error scopes after
 * a readback) settles at once instead of a timer tick later.
 */
export const quietWaits = { enabled: true, eager: 4 };
export async function quiet<T>(p: Promise<T>): Promise<T> {
  if (!quietWaits.enabled) return p;
  eager = quietWaits.eager;
  if (quietDepth++ === 0) {
    savedImmediate = globalThis.setImmediate;
    globalThis.setImmediate = slow;
  }
  try {
    return await p;
  } finally {
    if (--quietDepth === 0 && savedImmediate) {
      globalThis.setImmediate = savedImmediate;
      savedImmediate = null;
    }
  }
}

export class GpuContext {
  readonly queue: GPUQueue;
  readonly maxGroups: number;
  style: KernelStyle;
  private readonly uniformAlign: number;
  /** minStorageBufferOffsetAlignment (bytes): where a sub-range binding may start. */
  readonly bindAlign: number;
  private bindingLimit: number;
  private readonly arena: GPUBuffer;
  private readonly groups: BindGroupCache;
  private readonly arenaHost = new ArrayBuffer(ARENA_BYTES);
  private readonly arenaView = new DataView(this.arenaHost);
  private arenaUsed = 0;
  private enc: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private pending = 0;
  /** Dispatches per submit; settable for tuning. */
  maxPending: number;
  /** A CPU adapter: small submits and quiet waits (see MAX_PENDING_CPU, quiet). */
  readonly cpuAdapter: boolean;
  private readonly pipelines = new Map<string, { pipe: GPUComputePipeline; layout: GPUBindGroupLayout }>();
  private checks: Promise<void>[] = [];
  private fatal: string | null = null;
  private destroyed = false;
  private profiler: Profiler | null = null;

  /**
   * @param subgroup8 whether kernels may use `enable subgroups` with 8-wide subgroups
   */
  constructor(readonly device: GPUDevice, readonly description: string, readonly subgroup8 = false) {
    this.queue = device.queue;
    this.maxGroups = device.limits.maxComputeWorkgroupsPerDimension;
    this.style = pickStyle(description);
    this.cpuAdapter = isCpuAdapter(description);
    this.maxPending = this.cpuAdapter ? MAX_PENDING_CPU : MAX_PENDING_GPU;
    this.uniformAlign = Math.max(16, device.limits.minUniformBufferOffsetAlignment);
    this.bindAlign = Math.max(16, device.limits.minStorageBufferOffsetAlignment);
    this.bindingLimit = device.limits.maxStorageBufferBindingSize;
    this.maxBinding = Number(process.env.TOKENFORMER_WEBGPU_MAX_BINDING ?? 0);
    void device.lost.then((info) => {
      if (!this.destroyed) this.fail(`WebGPU device lost (${info.reason}): ${info.message}`);
    });
    device.addEventListener('uncapturederror', (ev) => {
      this.fail(`WebGPU error: ${(ev as GPUUncapturedErrorEvent).error.message}`);
    });
    this.openScopes();
    this.arena = device.createBuffer({ size: ARENA_BYTES, usage: USAGE.UNIFORM | USAGE.COPY_DST });
    this.groups = new BindGroupCache(device, this.arena);
  }

  /** Records the first failure; every later call throws it. */
  fail(message: string): void {
    this.fatal ??= message.trim();
  }

  /** Throws if the device is lost or an earlier batch failed. */
  assertOk(): void {
    if (this.destroyed) throw new WebGPUError('WebGPU backend used after destroy()');
    if (this.fatal !== null) throw new WebGPUError(this.fatal);
  }

  private openScopes(): void {
    for (const f of SCOPES) this.device.pushErrorScope(f);
  }

  private closeScopes(): void {
    const pops = SCOPES.map(() => this.device.popErrorScope());
    this.checks.push(
      Promise.all(pops).then(
        (errs) => {
          for (const e of errs) if (e) this.fail(`WebGPU ${e.constructor.name}: ${e.message}`);
        },
        (e: unknown) => this.fail(`WebGPU error scope failed: ${String(e)}`),
      ),
    );
  }

  /** A new buffer; sizes beyond the device limits throw here, out-of-memory at the next sync. */
  createBuffer(size: number, usage: number): GPUBuffer {
    this.assertOk();
    const max = this.device.limits.maxBufferSize;
    if (size > max) {
      throw new WebGPUError(`WebGPU: a ${size}-byte buffer exceeds the device's maxBufferSize (${max})`);
    }
    return this.device.createBuffer({ size, usage });
  }

  /**
   * The largest storage binding kernels may use: the device's maxStorageBufferBindingSize,
   * or less (TOKENFORMER_WEBGPU_MAX_BINDING at creation, or set at run time) to test the
   * split paths; clamped to [4 × bindAlign, the device limit] and rounded to bindAlign.
   */
  get maxBinding(): number {
    return this.bindingLimit;
  }
  set maxBinding(bytes: number) {
    const real = this.device.limits.maxStorageBufferBindingSize;
    const b = Number.isFinite(bytes) && bytes > 0 ? Math.min(bytes, real) : real;
    this.bindingLimit = b === real ? real : Math.max(4 * this.bindAlign, Math.floor(b / this.bindAlign) * this.bindAlign);
  }

  /** Checks a storage binding against maxBinding. */
  checkBinding(bytes: number, what: string): void {
    if (bytes > this.bindingLimit) {
      throw new WebGPUError(
        `WebGPU: ${what} needs a ${bytes}-byte binding, over maxStorageBufferBindingSize (${this.bindingLimit})`,
      );
    }
  }

  private pipeline(def: KernelDef): { pipe: GPUComputePipeline; layout: GPUBindGroupLayout } {
    let p = this.pipelines.get(def.key);
    if (!p) {
      const module = this.device.createShaderModule({ code: def.wgsl, label: def.key });
      const layout = layoutFor(this.device, def.wgsl, def.key);
      const pipe = this.device.createComputePipeline({
        layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
        compute: { module, entryPoint: 'main' },
        label: def.key,
      });
      p = { pipe, layout };
      this.pipelines.set(def.key, p);
    }
    return p;
  }

  encoder(): GPUCommandEncoder {
    this.enc ??= this.device.createCommandEncoder();
    return this.enc;
  }

  /** Ends the open compute pass (before copies or clears). */
  endPass(): void {
    this.pass?.end();
    this.pass = null;
  }

  /** Encodes one dispatch. grid: workgroup counts, each ≤ maxGroups (split by the caller). */
  run(def: KernelDef, bindings: readonly Binding[], params: readonly number[], grid: readonly number[]): void {
    this.assertOk();
    const [x, y = 1, z = 1] = grid;
    if (x === 0 || y === 0 || z === 0) return;
    if (x > this.maxGroups || y > this.maxGroups || z > this.maxGroups) {
      throw new WebGPUError(`WebGPU: ${def.key} grid [${x}, ${y}, ${z}] exceeds ${this.maxGroups} per dimension`);
    }
    if (params.length !== def.params.length) throw new Error(`${def.key}: ${params.length} params, want ${def.params.length}`);
    const { pipe, layout } = this.pipeline(def);
    const size = Math.max(16, Math.ceil((params.length * 4) / 16) * 16);
    if (this.arenaUsed + size > ARENA_BYTES) this.flush();
    const at = this.arenaUsed;
    for (let i = 0; i < params.length; i++) {
      const t = def.params[i], v = params[i];
      if (t === 'f') this.arenaView.setFloat32(at + 4 * i, v, true);
      else if (t === 'i') this.arenaView.setInt32(at + 4 * i, v, true);
      else this.arenaView.setUint32(at + 4 * i, v, true);
    }
    this.arenaUsed = at + Math.ceil(size / this.uniformAlign) * this.uniformAlign;
    const group = this.groups.get(def.key, layout, size, bindings);
    if (this.profiler) {
      this.endPass(); // one pass per dispatch, bracketed by timestamps
      this.pass = this.encoder().beginComputePass({ timestampWrites: this.profiler.next(def.key) });
    }
    this.pass ??= this.encoder().beginComputePass();
    this.pass.setPipeline(pipe);
    this.pass.setBindGroup(0, group, [at]);
    this.pass.dispatchWorkgroups(x, y, z);
    if (++this.pending >= this.maxPending || this.profiler?.full) this.flush();
  }

  /** Workgroup grid [x, y] for `groups` workgroups in a 1-D launch; shaders use num_workgroups. */
  grid1D(groups: number): [number, number] {
    if (groups <= this.maxGroups) return [Math.max(groups, 1), 1];
    const y = Math.ceil(groups / this.maxGroups);
    if (y > this.maxGroups) throw new WebGPUError(`WebGPU: ${groups} workgroups exceed a 2-D grid`);
    return [Math.ceil(groups / y), y];
  }

  /** Submits everything encoded so far (and the uniforms it reads). */
  flush(): void {
    if (!this.enc) return;
    this.endPass();
    const afterSubmit = this.profiler?.resolve(this.enc);
    const cmd = this.enc.finish();
    this.enc = null;
    if (this.arenaUsed > 0) this.queue.writeBuffer(this.arena, 0, this.arenaHost, 0, this.arenaUsed);
    this.queue.submit([cmd]);
    afterSubmit?.();
    this.arenaUsed = 0;
    this.pending = 0;
    this.closeScopes();
    this.openScopes();
  }

  /** Awaits a Dawn promise: quietly on CPU adapters (see quiet). */
  wait<T>(p: Promise<T>): Promise<T> {
    return this.cpuAdapter ? quiet(p) : p;
  }

  /** Flushes, waits for the queue and every batch's error scopes; throws on any failure. */
  async sync(): Promise<void> {
    this.flush();
    this.closeScopes();
    this.openScopes();
    const checks = this.checks;
    this.checks = [];
    await this.wait(Promise.all([...checks, this.queue.onSubmittedWorkDone()]));
    this.assertOk();
  }

  /** Starts per-kernel timing (needs the 'timestamp-query' feature); false if unsupported. */
  startProfile(): boolean {
    if (!this.device.features.has('timestamp-query')) return false;
    this.flush();
    this.profiler ??= new Profiler(this.device);
    return true;
  }

  /** Stops timing; returns milliseconds and dispatch counts per kernel key. */
  async stopProfile(): Promise<Map<string, KernelTime>> {
    const p = this.profiler;
    if (!p) return new Map();
    await this.sync();
    this.profiler = null;
    const totals = await p.settle();
    p.destroy();
    return totals;
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.enc = null;
    this.pass = null;
    this.groups.clear();
    this.arena.destroy();
    this.device.destroy();
  }
}
