// Picks and loads a backend by name. Accelerator backends load with `await import()`, so a
// machine without Dawn or GPU.js still builds, tests and runs on the CPU reference.

import type { Backend, Handle } from '../src/backend.ts';
import { BackendUnavailable, UserError } from '../src/errors.ts';
import { quote } from '../src/fsguard.ts';
import { GPUJS_MODES, type GpujsMode } from './gpujs/modes.ts';

export { BackendUnavailable } from '../src/errors.ts';
export { GPUJS_MODES, type GpujsMode } from './gpujs/modes.ts';

/** Every name `--backend` takes: 'auto' is webgpu when Dawn has an adapter, else cpu. */
export type BackendName = 'cpu' | 'webgpu' | 'gpujs' | `gpujs-${GpujsMode}` | 'auto';

/** The BackendName a user typed, or one UserError line listing the names. */
export function parseBackendName(name: string): BackendName {
  if (name === 'cpu' || name === 'webgpu' || name === 'gpujs' || name === 'auto') return name;
  const mode = name.startsWith('gpujs-') ? name.slice(6) : '';
  if (GPUJS_MODES.includes(mode as GpujsMode)) return `gpujs-${mode as GpujsMode}`;
  throw new UserError(`unknown backend ${quote(name, 40)} (cpu, webgpu, gpujs, ${GPUJS_MODES.map((m) => `gpujs-${m}`).join(', ')}, auto)`);
}

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

/** Loads the named backend; a plain string is checked first (parseBackendName). */
export async function loadBackend(name: BackendName | string, opts: LoadOptions = {}): Promise<Backend<Handle>> {
  const which = parseBackendName(name);
  switch (which) {
    case 'cpu': {
      const { createCpuBackend } = await import('./cpu.ts');
      return createCpuBackend();
    }
    case 'webgpu': {
      const { createWebGPUBackend } = await import('./webgpu/index.ts');
      return createWebGPUBackend();
    }
    case 'auto':
      try {
        return await loadBackend('webgpu');
      } catch (e) {
        if (!(e instanceof BackendUnavailable)) throw e;
        return loadBackend('cpu');
      }
    case 'gpujs': {
      const notice = opts.notice ?? stderrNotice;
      if (!opts.gpujsMode) return loadGpujsDefault(notice);
      const { createGpujsBackend } = await import('./gpujs/index.ts');
      return createGpujsBackend(opts.gpujsMode, notice);
    }
    case 'gpujs-headlessgl': case 'gpujs-webgpu': case 'gpujs-webasm': case 'gpujs-cpu': {
      const { createGpujsBackend } = await import('./gpujs/index.ts');
      return createGpujsBackend(gpujsModeOf(which), opts.notice ?? stderrNotice);
    }
    default:
      return unreachable(which);
  }
}

function gpujsModeOf(name: `gpujs-${GpujsMode}`): GpujsMode {
  return name.slice('gpujs-'.length) as GpujsMode;
}

/** The compiler proves this is never called: a new BackendName without a case fails to build. */
function unreachable(name: never): never {
  throw new Error(`loadBackend: no case for backend '${String(name)}'`);
}
