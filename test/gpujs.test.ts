// The kernel suite (test/kernels/suite.ts) on the GPU.js backend in every GPU.js mode: every
// case against the CPU reference at the gpu_f32 tolerances, and the shared contract (views,
// disposal, ordering, in-place AdamW, the CPU backend's UserErrors). No mode has checks of its
// own: spec/backends/gpujs.md gives each mode's measured precision, and every mode passes at
// gpu_f32 with nothing loosened.
// Omits: golden fixtures, models and training (test/parity/* runs those on gpujs too).
// An unavailable mode is skipped with its reason, or fails when TOKENFORMER_REQUIRE names it.

import { describe, test } from 'vitest';
import { GPUJS_MODES } from '../backends/index.ts';
import { tryLoad, type Loaded } from './helpers/backends.ts';
import { defineKernelSuite } from './kernels/suite.ts';

async function load(name: string): Promise<Loaded & { error?: unknown }> {
  try {
    return await tryLoad(name);
  } catch (e) {
    return { name, backend: null, reason: 'required', error: e };
  }
}

for (const mode of GPUJS_MODES) {
  const loaded = await load(`gpujs-${mode}`);
  if (loaded.error) {
    test(`${loaded.name} is required but unavailable`, () => {
      throw loaded.error;
    });
    continue;
  }
  const { name, backend, reason } = loaded;
  describe.skipIf(!backend)(`${name}${backend ? '' : ` (skipped: ${reason})`}`, () => {
    defineKernelSuite(name, backend);
    test('destroy', async () => {
      await backend!.destroy();
    });
  });
}
