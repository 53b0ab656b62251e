// The WebGPU backend on Dawn for Node (npm `webgpu`): loads Dawn with `await import()`, asks
// the adapter for its highest buffer limits, and maps the backend contract onto the WGSL
// kernels in ./kernels. Every kernel is checked against the CPU reference (test/webgpu.test.ts).
// Omits: multi-device use, f16.

import { reshapeHandle, type Backend, type Kernels } from '../../src/backend.ts';
import { Mem, type GHandle } from './buffers.ts';
import { GpuContext, type KernelStyle } from './device.ts';
import type { KernelTime } from './profiler.ts';
import type { Env } from './kernels/common.ts';
import { attention, attentionBackward } from './kernels/attention.ts';
import { add, makeRotary, permute0213 } from './kernels/elementwise.ts';
import { layerNorm, layerNormBackward } from './kernels/layernorm.ts';
import { matmul } from './kernels/matmul.ts';
import { normAct, normActBackward } from './kernels/normact.ts';
import { adamw } from './kernels/optim.ts';
import { pattention, pattentionBackward } from './kernels/pattention.ts';
import { sumSquares } from './kernels/reduce.ts';
import { causalSoftmax, causalSoftmaxBackward } from './kernels/softmax.ts';
import { crossEntropy, crossEntropyBackward, embedding, embeddingBackward } from './kernels/tokens.ts';
import { openDevice } from './open.ts';

export { WebGPUError } from './device.ts';
export type { GHandle } from './buffers.ts';

export type WebGPUBackend = Backend<GHandle> & {
  /** The adapter's description, e.g. "llvmpipe: Mesa 25…". */
  readonly adapter: string;
  /** Submits queued work and waits for it; throws on any device error. */
  sync(): Promise<void>;
  /** The kernel layout in use ('cpu' on CPU-emulated adapters); settable to compare both. */
  style: KernelStyle;
  /**
   * The largest storage binding kernels use (bytes): the device's maxStorageBufferBindingSize
   * unless lowered (TOKENFORMER_WEBGPU_MAX_BINDING, or set here) to exercise the split paths.
   */
  maxBinding: number;
  /** Per-kernel GPU timing (timestamp queries), for tuning; false if the adapter lacks it. */
  startProfile(): boolean;
  stopProfile(): Promise<Map<string, KernelTime>>;
};

function kernels(env: Env, rotary: ReturnType<typeof makeRotary>): Kernels<GHandle> {
  return {
    matmul: (a, b, tA, tB) => matmul(env, a, b, tA, tB),
    add: (a, b) => add(env, a, b),
    normAct: (s, p) => normAct(env, s, p),
    normActBackward: (s, dA, p) => normActBackward(env, s, dA, p),
    layerNorm: (x, w, b, eps) => layerNorm(env, x, w, b, eps),
    layerNormBackward: (dY, x, mean, rstd, w) => layerNormBackward(env, dY, x, mean, rstd, w),
    rotary: (x, p, inverse) => rotary.rotary(x, p, inverse),
    permute0213: (x) => permute0213(env, x),
    causalSoftmax: (s, scale) => causalSoftmax(env, s, scale),
    causalSoftmaxBackward: (p, dP, scale) => causalSoftmaxBackward(env, p, dP, scale),
    embedding: (ids, table) => embedding(env, ids, table),
    embeddingBackward: (ids, dOut, vocab) => embeddingBackward(env, ids, dOut, vocab),
    crossEntropy: (logits, targets) => crossEntropy(env, logits, targets),
    crossEntropyBackward: (logits, lse, targets, dLoss) => crossEntropyBackward(env, logits, lse, targets, dLoss),
    sumSquares: (ts) => sumSquares(env, ts),
    adamw: (param, grad, m, v, p, gns) => adamw(env, param, grad, m, v, p, gns),
  };
}

/** Creates the backend; throws BackendUnavailable without Dawn or an adapter. */
export async function createWebGPUBackend(): Promise<WebGPUBackend> {
  const { device, description, subgroup8 } = await openDevice();
  const ctx = new GpuContext(device, description, subgroup8);
  const mem = new Mem(ctx);
  const env: Env = { ctx, mem };
  const rotary = makeRotary(env);
  return {
    name: 'webgpu',
    adapter: description,
    ops: kernels(env, rotary),
    fused: {
      pattention: (x, k, v, p) => pattention(env, x, k, v, p),
      pattentionBackward: (dOut, x, k, v, saved, p) => pattentionBackward(env, dOut, x, k, v, saved, p),
      attention: (q, k, v) => attention(env, q, k, v),
      attentionBackward: (dOut, q, k, v, saved) => attentionBackward(env, dOut, q, k, v, saved),
    },
    upload: (data, shape) => mem.upload(data, shape, 'f32'),
    uploadInt: (data, shape) => mem.upload(data, shape, 'i32'),
    zeros: (shape) => mem.zeros(shape),
    reshape: (t, shape) => reshapeHandle(t, shape),
    read: (t) => mem.read(t),
    dispose: (t) => mem.dispose(t),
    sync: () => ctx.sync(),
    startProfile: () => ctx.startProfile(),
    stopProfile: () => ctx.stopProfile(),
    get maxBinding() {
      return ctx.maxBinding;
    },
    set maxBinding(bytes: number) {
      ctx.flush();
      ctx.maxBinding = bytes;
    },
    get style() {
      return ctx.style;
    },
    set style(k: KernelStyle) {
      ctx.flush();
      ctx.style = k;
    },
    async destroy() {
      try {
        await ctx.sync();
      } catch {
        // a failed device is being released anyway; the failure surfaced (or will) on read
      } finally {
        rotary.free();
        mem.destroy();
        ctx.destroy();
      }
    },
  };
}
