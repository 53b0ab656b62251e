// Kernel-level bench sections contributed by each backend (matmul, Pattention, TensorFlow.js).
// A section returns rows, or a string saying why it could not run.

import type { Backend, Handle } from '../src/backend.ts';
import type { BenchRow } from './types.ts';

export interface Section {
  name: string;
  run(loaded: Backend<Handle>[]): Promise<BenchRow[] | string>;
}

/** Runs a section body; a missing module or adapter becomes the section's note. */
async function guarded(f: () => Promise<BenchRow[]>): Promise<BenchRow[] | string> {
  try {
    return await f();
  } catch (e) {
    return `skipped: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`;
  }
}

export const sections: Section[] = [
  { name: 'tfjs-webgpu model (forward, train step)', run: () => guarded(async () => (await import('./tfjs_model.ts')).benchTfjsModel()) },
  { name: 'webgpu kernels (matmul, Pattention) vs cpu', run: () => guarded(async () => (await import('./webgpu.ts')).benchWebGPU()) },
  { name: 'tfjs-webgpu kernels', run: () => guarded(async () => (await import('./tfjs.ts')).benchTfjs()) },
  { name: 'gpujs kernels per mode vs cpu', run: () => guarded(async () => (await import('./gpujs.ts')).benchGpujs()) },
];
