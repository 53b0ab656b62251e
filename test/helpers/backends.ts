// The backends the shared parity suite runs on. An unavailable backend is skipped with its
// reason printed, unless TOKENFORMER_REQUIRE (a comma list of names) demands it: then it fails.

import type { Backend, Handle } from '../../src/backend.ts';
import { BackendUnavailable, loadBackend } from '../../backends/index.ts';

export const BACKEND_NAMES = ['cpu', 'webgpu', 'gpujs-cpu', 'gpujs-webgpu', 'gpujs-headlessgl'] as const;

export function required(name: string): boolean {
  return (process.env.TOKENFORMER_REQUIRE ?? '').split(',').map((s) => s.trim()).includes(name);
}

export interface Loaded {
  name: string;
  backend: Backend<Handle> | null;
  reason: string;
}

/** The first line of an error, for a skip reason. */
export function reasonOf(e: unknown): string {
  return e instanceof Error ? e.message.split('\n')[0] : String(e);
}

/** Whether a load failed because a module or adapter is missing (a skip), not a bug (a failure). */
export function isUnavailable(e: unknown): boolean {
  return e instanceof BackendUnavailable || /Cannot find module|ERR_MODULE_NOT_FOUND/.test(reasonOf(e));
}

/** Loads a backend or explains why not; throws only when the backend is required. */
export async function tryLoad(name: string): Promise<Loaded> {
  try {
    return { name, backend: await loadBackend(name), reason: '' };
  } catch (e) {
    const reason = reasonOf(e);
    if (required(name)) throw new Error(`backend ${name} is required (TOKENFORMER_REQUIRE) but unavailable: ${reason}`);
    if (!isUnavailable(e)) throw e;
    console.warn(`[skip] backend ${name}: ${reason}`);
    return { name, backend: null, reason };
  }
}

/** 'reference' tolerances for the CPU reference, 'gpu_f32' for every accelerator. */
export function toleranceClass(name: string): 'reference' | 'gpu_f32' {
  return name === 'cpu' ? 'reference' : 'gpu_f32';
}
