// Kernel-level bench sections contributed by each backend (matmul, Pattention, TensorFlow.js).
// A section returns rows, or a string saying why it could not run.

import type { Backend, Handle } from '../src/backend.ts';
import type { BenchRow } from './types.ts';

export interface Section {
  name: string;
  run(loaded: Backend<Handle>[]): Promise<BenchRow[] | string>;
}

export const sections: Section[] = [];
