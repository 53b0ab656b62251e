// The WebGPU backend on Dawn for Node (npm `webgpu`): loads Dawn with `await import()`, asks
// the adapter for its highest buffer limits, and maps the backend contract onto the WGSL
// kernels in ./kernels. defineBackend (src/define-backend.ts) runs the op table before every
// kernel, so the kernels receive checked sizes and validate nothing of the ops' rules; what
// they still throw is the device's own (bindings or grids over its limits, a lost device).
// Every kernel is checked against the CPU reference (test/webgpu.test.ts).
// Omits: multi-device use, f16.

import { reshapeHandle, type Backend } from '../../src/backend.ts';
import { defineBackend, type RawKernels } from '../../src/define-backend.ts';
import { Mem, type GHandle } from './buffers.ts';
import { GpuContext, type KernelStyle } from './device.ts';
import type { KernelTime } from './profiler.ts';
import type { Env } from './kernels/common.ts';
import { attentionPair } from './kernels/attention.ts';
import { add, makeRotary, permute0213 } from './kernels/elementwise.ts';
import { layerNorm, layerNormBackward } from './kernels/layernorm.ts';
import { matmul } from './kernels/matmul.ts';
import { normAct, normActBackward } from './kernels/normact.ts';
import { adamw } from './kernels/optim.ts';
import { pattentionPair } from './kernels/pattention.ts';
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

/** Each kernel receives its checked sizes z (src/op-specs.ts) first. */
function kernels(env: Env, rotary: ReturnType<typeof makeRotary>): RawKernels<GHandle> {
  return {
    matmul: (z, a, b) => matmul(env, z, a, b),
    add: (z, a, b) => add(env, z, a, b),
    normAct: (z, s, p) => normAct(env, z, s, p),
    normActBackward: (z, s, dA, p) => normActBackward(env, z, s, dA, p),
    layerNorm: (z, x, w, b, eps) => layerNorm(env, z, x, w, b, eps),
    layerNormBackward: (z, dY, x, mean, rstd, w) => layerNormBackward(env, z, dY, x, mean, rstd, w),
    rotary: (z, x, p, inverse) => rotary.rotary(z, x, p, inverse),
    permute0213: (z, x) => permute0213(env, z, x),
    causalSoftmax: (z, s, scale) => causalSoftmax(env, z, s, scale),
    causalSoftmaxBackward: (z, p, dP, scale) => causalSoftmaxBackward(env, z, p, dP, scale),
    embedding: (z, ids, table) => embedding(env, z, ids, table),
    embeddingBackward: (z, ids, dOut) => embeddingBackward(env, z, ids, dOut),
    crossEntropy: (z, logits, targets) => crossEntropy(env, z, logits, targets),
    crossEntropyBackward: (z, logits, lse, targets, dLoss) => crossEntropyBackward(env, z, logits, lse, targets, dLoss),
    sumSquares: (_z, ts) => sumSquares(env, ts),
    adamw: (z, param, grad, m, v, p, gns) => adamw(env, z, param, grad, m, v, p, gns),
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
    ...defineBackend({
      kernels: kernels(env, rotary),
      fused: { pattention: pattentionPair(env), attention: attentionPair(env) },
      upload: (data, shape) => mem.upload(data, shape, 'f32'),
      uploadInt: (data, shape) => mem.upload(data, shape, 'i32'),
      zeros: (shape) => mem.zeros(shape),
      reshape: (t, shape) => reshapeHandle(t, shape),
      read: (t) => mem.read(t),
    }),
    dispose: (t) => mem.dispose(t),
    memory: () => mem.bytes,
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
