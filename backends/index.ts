// Picks and loads a backend by name. Accelerator backends load with `await import()`, so a
// machine without Dawn or GPU.js still builds, tests and runs on the CPU reference.

import type { Backend, Handle } from '../src/backend.ts';
import { UserError } from '../src/errors.ts';

/** Thrown by a backend factory when its native module or adapter is missing. */
export class BackendUnavailable extends Error {
  override name = 'BackendUnavailable';
}

export type GpujsMode = 'headlessgl' | 'webgpu' | 'webasm' | 'cpu';
export const GPUJS_MODES: readonly GpujsMode[] = ['headlessgl', 'webgpu', 'webasm', 'cpu'];

/** 'cpu' | 'webgpu' | 'gpujs' | 'gpujs-<mode>' | 'auto'. */
export type BackendName = string;

export interface LoadOptions {
  /** GPU.js mode when the name is plain 'gpujs' (default headlessgl). */
  gpujsMode?: GpujsMode;
}

export async function loadBackend(name: BackendName, opts: LoadOptions = {}): Promise<Backend<Handle>> {
  if (name === 'cpu') {
    const { createCpuBackend } = await import('./cpu.ts');
    return createCpuBackend();
  }
  if (name === 'webgpu') {
    const { createWebGPUBackend } = await import('./webgpu/index.ts');
    return createWebGPUBackend();
  }
  if (name === 'gpujs' || name.startsWith('gpujs-')) {
    const mode = (name === 'gpujs' ? (opts.gpujsMode ?? 'headlessgl') : name.slice(6)) as GpujsMode;
    if (!GPUJS_MODES.includes(mode)) {
      throw new UserError(`unknown GPU.js mode '${mode}' (one of ${GPUJS_MODES.join(', ')})`);
    }
    const { createGpujsBackend } = await import('./gpujs/index.ts');
    return createGpujsBackend(mode);
  }
  if (name === 'auto') {
    try {
      return await loadBackend('webgpu');
    } catch (e) {
      if (!(e instanceof BackendUnavailable)) throw e;
      return loadBackend('cpu');
    }
  }
  throw new UserError(`unknown backend '${name}' (cpu, webgpu, gpujs, gpujs-<mode>, auto)`);
}
