// Opening Dawn: import the native module lazily, find an adapter, and request a device with
// the adapter's highest buffer and workgroup limits. Any failure to get that far is
// BackendUnavailable, so callers can fall back to the CPU reference. Adapter discovery runs
// without Dawn's two limit-clamp warnings (./dawn-stderr.ts says why they cannot be avoided
// by requesting other limits).
// Omits: adapter selection among several GPUs (Dawn's default choice is used).

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BackendUnavailable } from '../../src/errors.ts';
import { withoutDawnClampWarnings } from './dawn-stderr.ts';

/** Limits requested at the adapter's own maximum (the defaults are the spec minimums). */
const RAISED_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxStorageBuffersPerShaderStage',
] as const;

type Dawn = { create(flags: string[]): GPU; globals: object };

async function loadDawn(): Promise<Dawn> {
  try {
    return (await import('webgpu')) as unknown as Dawn;
  } catch (e) {
    throw new BackendUnavailable(`the 'webgpu' (Dawn) module failed to load: ${(e as Error).message}`);
  }
}

/** The GPU entry point, shared by every backend instance in this process. */
let gpuPromise: Promise<GPU> | null = null;

/** navigator.gpu-like object from Dawn (also used by the TensorFlow.js bench). */
export function getGPU(): Promise<GPU> {
  gpuPromise ??= (async () => {
    // Dawn's Vulkan loader wants a runtime dir; lavapipe in CI has none.
    process.env.XDG_RUNTIME_DIR ??= mkdtempSync(join(tmpdir(), 'tokenformer-xdg-'));
    const dawn = await loadDawn();
    // The GPU* constructors/enums as globals, as in a browser; existing ones are kept.
    for (const [k, v] of Object.entries(dawn.globals)) {
      if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
    }
    const gpu = dawn.create([]);
    // Dawn enumerates adapters again on every call (and warns again), so wrap the method
    // itself: GPU.js's webgpu mode calls it on this same object (backends/gpujs).
    const request = gpu.requestAdapter.bind(gpu);
    gpu.requestAdapter = (opts?: GPURequestAdapterOptions) => withoutDawnClampWarnings(() => request(opts));
    return gpu;
  })();
  gpuPromise.catch(() => { gpuPromise = null; });
  return gpuPromise;
}

export interface OpenedDevice {
  device: GPUDevice;
  description: string;
  /** 'subgroups' is enabled and every subgroup has 8 invocations (llvmpipe on AVX2). */
  subgroup8: boolean;
}

export async function openDevice(): Promise<OpenedDevice> {
  const gpu = await getGPU();
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (e) {
    throw new BackendUnavailable(`WebGPU requestAdapter failed: ${(e as Error).message}`);
  }
  if (!adapter) throw new BackendUnavailable('no WebGPU adapter (Dawn found no Vulkan/Metal/D3D device)');
  const requiredLimits: Record<string, number> = {};
  for (const k of RAISED_LIMITS) requiredLimits[k] = adapter.limits[k];
  const info = adapter.info;
  const description = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ');
  try {
    // timestamp-query only serves the optional profiler (profiler.ts); subgroups the CPU-
    // adapter matmul (kernels/matmul_subgroup.ts), which assumes 8-wide subgroups.
    const requiredFeatures: GPUFeatureName[] = [];
    if (adapter.features.has('timestamp-query')) requiredFeatures.push('timestamp-query');
    const sg = info as GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number };
    const subgroup8 = adapter.features.has('subgroups' as GPUFeatureName) && sg.subgroupMinSize === 8 && sg.subgroupMaxSize === 8;
    if (subgroup8) requiredFeatures.push('subgroups' as GPUFeatureName);
    const device = await adapter.requestDevice({ requiredLimits, requiredFeatures, label: 'tokenformer' });
    return { device, description, subgroup8 };
  } catch (e) {
    throw new BackendUnavailable(`WebGPU requestDevice failed: ${(e as Error).message}`);
  }
}
