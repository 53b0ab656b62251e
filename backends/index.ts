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
  /** GPU.js mode when the name is plain 'gpujs' (default: headlessgl, else a fallback). */
  gpujsMode?: GpujsMode;
  /** Where a backend says what it chose when it had to choose (one line; default stderr). */
  notice?: (line: string) => void;
}

const stderrNotice = (line: string): void => { process.stderr.write(`${line}\n`); };

/**
 * Plain 'gpujs': headlessgl (on DISPLAY or a private Xvfb); when that cannot run, a mode
 * that needs no display, gpujs-webgpu if Dawn has an adapter, else gpujs-cpu, said in one line.
 */
async function loadGpujsDefault(notice: (line: string) => void): Promise<Backend<Handle>> {
  const { createGpujsBackend } = await import('./gpujs/index.ts');
  let why: string;
  try {
    return await createGpujsBackend('headlessgl', notice);
  } catch (e) {
    if (!(e instanceof BackendUnavailable)) throw e;
    why = e.message.replace(/^gpujs-headlessgl: /, '');
  }
  let be: Backend<Handle>;
  try {
    be = await createGpujsBackend('webgpu', notice);
  } catch (e) {
    if (!(e instanceof BackendUnavailable)) throw e;
    why += `; nor can gpujs-webgpu: ${e.message.replace(/^gpujs-webgpu: /, '')}`;
    be = await createGpujsBackend('cpu', notice);
  }
  notice(`tokenformer: --backend gpujs chose ${be.name}, because gpujs-headlessgl cannot run: ${why}`);
  return be;
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
    const notice = opts.notice ?? stderrNotice;
    if (name === 'gpujs' && !opts.gpujsMode) return loadGpujsDefault(notice);
    const mode = (name === 'gpujs' ? opts.gpujsMode : name.slice(6)) as GpujsMode;
    if (!GPUJS_MODES.includes(mode)) {
      throw new UserError(`unknown GPU.js mode '${mode}' (one of ${GPUJS_MODES.join(', ')})`);
    }
    const { createGpujsBackend } = await import('./gpujs/index.ts');
    return createGpujsBackend(mode, notice);
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
