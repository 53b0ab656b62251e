// The one kernel suite every backend runs: each case of cases.ts against the CPU reference at
// the backend's manifest tolerance class, then the shared behaviour of contract.ts. A runner
// per environment calls it (test/kernels/cpu.test.ts, test/webgpu.test.ts in both kernel
// styles, test/gpujs.test.ts in every GPU.js mode) inside its own describe, which skips with
// the reason printed when the backend is unavailable.
// Omits: golden fixtures and models (test/parity), backend-specific paths (each runner).

import { expect, test } from 'vitest';
import { createCpuBackend } from '../../backends/cpu.ts';
import type { Backend, Handle } from '../../src/backend.ts';
import { toleranceClass } from '../helpers/backends.ts';
import { tolerance } from '../helpers/golden.ts';
import { CASES } from './cases.ts';
import { defineContract } from './contract.ts';
import { caseMismatches } from './kernel-case.ts';

/** The CPU reference every case and every message is compared with. */
export const reference = createCpuBackend();

/**
 * Defines the suite's tests on the backend `name`; `be` is null where it did not load (the
 * runner's describe is then skipped and no test body runs). The tolerance class is chosen
 * here, once for every case: toleranceClass(name), 'reference' for cpu and 'gpu_f32' for
 * every accelerator, with the numbers golden/manifest.json declares.
 */
export function defineKernelSuite<T extends Handle>(name: string, be: Backend<T> | null): void {
  const tol = tolerance(toleranceClass(name));
  test.each(CASES.map((c) => [c.name, c] as const))('%s', async (_n, c) => {
    expect(await caseMismatches(be!, reference, c, tol)).toEqual([]);
  });
  defineContract(() => be!, name === 'cpu' ? null : reference);
}
