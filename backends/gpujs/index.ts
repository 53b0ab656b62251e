// The GPU.js backend: the kernel contract (src/backend.ts) on GPU.js 2.24, in one of its
// modes: headlessgl (WebGL 1 through the `gl` package, on an X display: DISPLAY, or a
// private Xvfb it starts, ./xvfb.ts), webgpu (Dawn through the `webgpu` package),
// webasm (WebAssembly + SIMD) or cpu (GPU.js's JS backend).
// It validates nothing: defineBackend (src/define-backend.ts) runs each op's OP_SPECS entry
// and hands every kernel its checked sizes; only id values are checked here, on the host,
// by the CPU reference's checkIds.
// Omits: fused attention (src/compose.ts composes it); GPU.js's webgl/webgl2 modes, which
// need a browser. spec/backends/gpujs.md has the modes, their precision and speed.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Handle, type Backend } from '../../src/backend.ts';
import { defineBackend, type RawKernels } from '../../src/define-backend.ts';
import { BackendUnavailable } from '../../src/errors.ts';
import type { GpujsMode } from './modes.ts';
import { adamw } from './kernels/adamw.ts';
import { causalSoftmax, causalSoftmaxBackward, rotary } from './kernels/attn.ts';
import { layerNorm, layerNormBackward } from './kernels/layernorm.ts';
import { add, fill, matmul, permute0213, sumSquares, upload } from './kernels/linalg.ts';
import { crossEntropy, crossEntropyBackward, embedding, embeddingBackward } from './kernels/loss.ts';
import { normAct, normActBackward } from './kernels/normact.ts';
import { pattentionPair } from './kernels/pattention.ts';
import { Runtime, type GHandle } from './runtime.ts';
import { acquireXvfb, findOnPath, releaseXvfb, type PrivateDisplay } from './xvfb.ts';

export type { GHandle } from './runtime.ts';
type GpujsModule = typeof import('gpu.js');

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Mesa (lavapipe, llvmpipe) wants a writable XDG_RUNTIME_DIR. */
function ensureRuntimeDir(): void {
  if (!process.env.XDG_RUNTIME_DIR) process.env.XDG_RUNTIME_DIR = mkdtempSync(join(tmpdir(), 'gpujs-xdg-'));
}

/**
 * GPU.js's webgpu mode reads navigator.gpu; Node has none, so install Dawn's (once): the
 * entry point the webgpu backend uses too, whose adapter discovery is kept quiet.
 */
async function ensureNavigatorGpu(): Promise<void> {
  const g = globalThis as { navigator?: { gpu?: { requestAdapter(): Promise<unknown> } } };
  if (!g.navigator?.gpu) {
    const { getGPU } = await import('../webgpu/open.ts');
    let gpu: GPU;
    try {
      gpu = await getGPU();
    } catch (e) {
      throw new BackendUnavailable(`gpujs-webgpu: ${message(e)}`);
    }
    if (!g.navigator) Object.defineProperty(globalThis, 'navigator', { value: {}, configurable: true, writable: true });
    Object.defineProperty(g.navigator!, 'gpu', { value: gpu, configurable: true });
  }
  const adapter = await g.navigator!.gpu!.requestAdapter().catch(() => null);
  if (!adapter) throw new BackendUnavailable('gpujs-webgpu: no WebGPU adapter (Dawn found no Vulkan device)');
}

/**
 * headlessgl's X display: DISPLAY when set, else a private Xvfb (released by the backend's
 * destroy). Must run before gpu.js is imported: `gl` opens the display named by DISPLAY
 * when GPU.js first probes it, and GPU.js keeps that first answer for the process.
 */
async function ensureDisplay(): Promise<PrivateDisplay | null> {
  if (process.env.DISPLAY) return null;
  const exe = findOnPath('Xvfb');
  if (!exe) throw new BackendUnavailable('gpujs-headlessgl: DISPLAY is unset and no Xvfb is on PATH to start one');
  try {
    return await acquireXvfb(exe);
  } catch (e) {
    throw new BackendUnavailable(`gpujs-headlessgl: DISPLAY is unset and a private Xvfb failed: ${message(e)}`);
  }
}

/** Throws BackendUnavailable unless `mode` can run here. */
async function prepare(mode: GpujsMode, { GPU }: GpujsModule): Promise<void> {
  if (mode === 'headlessgl') {
    if (!GPU.isHeadlessGLSupported) {
      throw new BackendUnavailable(`gpujs-headlessgl: the gl package failed to load or to create a context on ${process.env.DISPLAY}`);
    }
    if (!GPU.isSinglePrecisionSupported) {
      throw new BackendUnavailable('gpujs-headlessgl: no float textures (OES_texture_float)');
    }
  } else if (mode === 'webgpu') {
    await ensureNavigatorGpu();
  } else if (mode === 'webasm' && !GPU.isWebAssemblySupported) {
    throw new BackendUnavailable('gpujs-webasm: WebAssembly is not supported here');
  }
}

/** Every kernel on rt; each receives its checked sizes z (src/op-specs.ts). */
function kernels(rt: Runtime): RawKernels<GHandle> {
  return {
    matmul: (z, a, b) => matmul(rt, z, a, b),
    add: (z, a, b) => add(rt, z, a, b),
    normAct: (z, s, p) => normAct(rt, z, s, p),
    normActBackward: (z, s, dA, p) => normActBackward(rt, z, s, dA, p),
    layerNorm: (z, x, w, b, eps) => layerNorm(rt, z, x, w, b, eps),
    layerNormBackward: (z, dY, x, mean, rstd, w) => layerNormBackward(rt, z, dY, x, mean, rstd, w),
    rotary: (z, x, p, inverse) => rotary(rt, z, x, p, inverse),
    permute0213: (z, x) => permute0213(rt, z, x),
    causalSoftmax: (z, s, scale) => causalSoftmax(rt, z, s, scale),
    causalSoftmaxBackward: (z, p, dP, scale) => causalSoftmaxBackward(rt, z, p, dP, scale),
    embedding: (z, ids, table) => embedding(rt, z, ids, table),
    embeddingBackward: (z, ids, dOut) => embeddingBackward(rt, z, ids, dOut),
    crossEntropy: (z, logits, targets) => crossEntropy(rt, z, logits, targets),
    crossEntropyBackward: (z, logits, lse, targets, dLoss) => crossEntropyBackward(rt, z, logits, lse, targets, dLoss),
    sumSquares: (_z, ts) => sumSquares(rt, ts),
    adamw: (z, param, grad, m, v, p, gns) => adamw(rt, z, param, grad, m, v, p, gns),
  };
}

/** Where the backend says what it chose (a private Xvfb): one line, stderr by default. */
export type Notice = (line: string) => void;
const stderrNotice: Notice = (line) => { process.stderr.write(`${line}\n`); };

/** Loads GPU.js in `mode`; throws BackendUnavailable when the module or the mode is missing. */
export async function createGpujsBackend(mode: GpujsMode, notice: Notice = stderrNotice): Promise<Backend<GHandle>> {
  ensureRuntimeDir();
  const display = mode === 'headlessgl' ? await ensureDisplay() : null;
  let rt: Runtime;
  try {
    rt = await openRuntime(mode);
  } catch (e) {
    if (display) await releaseXvfb();
    throw e;
  }
  if (display) {
    notice(`tokenformer: gpujs-headlessgl: DISPLAY is unset, so it runs on a private Xvfb on ${display.display} `
      + `(pid ${display.pid}), stopped with the backend`);
  }
  return backendOn(rt, async () => {
    try {
      await rt.destroy();
    } finally {
      if (display) await releaseXvfb();
    }
  });
}

/** gpu.js imported (after the display is set), the mode checked, a GPU made and smoke-tested. */
async function openRuntime(mode: GpujsMode): Promise<Runtime> {
  let gpujs: GpujsModule;
  try {
    gpujs = await import('gpu.js');
  } catch (e) {
    throw new BackendUnavailable(`gpujs: the gpu.js package does not load: ${message(e)}`);
  }
  await prepare(mode, gpujs);
  let gpu: InstanceType<GpujsModule['GPU']>;
  try {
    gpu = new gpujs.GPU({ mode });
  } catch (e) {
    throw new BackendUnavailable(`gpujs-${mode}: ${message(e)}`);
  }
  const rt = new Runtime(gpu, mode);
  await smokeTest(rt, mode);
  return rt;
}

function backendOn(rt: Runtime, destroy: () => Promise<void>): Backend<GHandle> {
  return {
    name: `gpujs-${rt.mode}`,
    ...defineBackend({
      kernels: kernels(rt),
      fused: { pattention: pattentionPair(rt) },
      upload: (data, shape) => upload(rt, data, shape),
      uploadInt: (data, shape) => {
        const f = upload(rt, Float32Array.from(data), shape);
        f.store.data.ints = Int32Array.from(data);
        return new Handle(f.shape, 'i32', f.store);
      },
      zeros: (shape) => fill(rt, shape, 0),
      reshape: (t, shape) => rt.reshape(t, shape),
      read: (t) => rt.read(t),
    }),
    dispose: (t) => rt.dispose(t),
    destroy,
  };
}

/** One upload and read-back, so a mode that loads but cannot compute fails here, cleanly. */
async function smokeTest(rt: Runtime, mode: GpujsMode): Promise<void> {
  try {
    const t = upload(rt, Float32Array.of(1.5, -2, 3.25), [3]);
    const u = add(rt, { size: 3, out: [3] }, t, t);
    const back = await rt.read(u);
    rt.dispose(t);
    rt.dispose(u);
    if (back[0] !== 3 || back[1] !== -4 || back[2] !== 6.5) throw new Error(`1.5, -2, 3.25 doubled gave [${back}]`);
  } catch (e) {
    await rt.destroy().catch(() => {});
    throw new BackendUnavailable(`gpujs-${mode}: smoke test failed: ${message(e)}`);
  }
}
