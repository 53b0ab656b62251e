// The KV-cache decode path and the rotary position offset on WebGPU (Dawn): cached logits
// within the manifest's gpu_f32 tolerance of the same backend's full recompute at every step
// (random tiny configs, every Θ variant, tied and untied, rotary ¼ / ½ / 1, prompts 1…8, then
// one token at a time or chunks), and offset rotary within gpu_f32 of the CPU reference.
// Skips, with the reason printed, where WebGPU is unavailable (test/helpers/backends.ts).

import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createCpuBackend } from '../backends/cpu.ts';
import { Rng } from '../src/rng.ts';
import { tryLoad } from './helpers/backends.ts';
import { arbDecodeCase, decodeMismatches } from './helpers/decode-check.ts';
import { loadManifest } from './helpers/golden.ts';
import { rotaryOffsetMismatch } from './helpers/rotary-offset.ts';

const loaded = await tryLoad('webgpu');
const tol = loadManifest().tolerances.gpu_f32.values;
afterAll(async () => { await loaded.backend?.destroy(); });

describe.skipIf(!loaded.backend)(`KV-cache decode on webgpu${loaded.backend ? '' : ` (skipped: ${loaded.reason})`}`, () => {
  const be = loaded.backend!;
  it('prompt, then one token at a time: within gpu_f32 of a full recompute', async () => {
    await fc.assert(fc.asyncProperty(arbDecodeCase(1), async (k) => {
      expect(await decodeMismatches(be, k, tol)).toEqual([]);
    }), { numRuns: 12 });
  });

  it('chunks of 1…3 tokens, batch 1…2: within gpu_f32 of a full recompute', async () => {
    await fc.assert(fc.asyncProperty(arbDecodeCase(3, 2), async (k) => {
      expect(await decodeMismatches(be, k, tol)).toEqual([]);
    }), { numRuns: 8 });
  });

  it('rotary at an offset: within gpu_f32 of the CPU reference’s rows (forward and inverse)', async () => {
    const cpu = createCpuBackend();
    await fc.assert(fc.asyncProperty(
      fc.record({ off: fc.integer({ min: 0, max: 300 }), T: fc.integer({ min: 1, max: 5 }), pct: fc.constantFrom(0, 0.25, 0.5, 1), seed: fc.nat() }),
      async ({ off, T, pct, seed }) => {
        expect(await rotaryOffsetMismatch(be, cpu, off, T, pct, new Rng(seed), tol)).toBeNull();
      },
    ), { numRuns: 20 });
  });
});
