// The KV-cache decode path and the rotary position offset on the accelerator backends, one
// parametrized suite: WebGPU (Dawn) and GPU.js in its cpu mode (its JavaScript path; the GL and
// WebGPU modes run the same kernel sources). Cached logits within the manifest's gpu_f32
// tolerance of the same backend's full recompute at every step (random tiny configs, every Θ
// variant, tied and untied, rotary ¼ / ½ / 1, prompts 1…8, then one token at a time or chunks),
// and offset rotary within gpu_f32 of the CPU reference. A backend that does not load skips,
// with the reason printed (test/helpers/backends.ts). GPU.js runs fewer cases: it compiles a
// kernel per shape.

import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createCpuBackend } from '../backends/cpu.ts';
import { Rng } from '../src/rng.ts';
import { tryLoad } from './helpers/backends.ts';
import { arbDecodeCase, decodeMismatches } from './helpers/decode-check.ts';
import { loadManifest } from './helpers/golden.ts';
import { rotaryOffsetMismatch } from './helpers/rotary-offset.ts';

/** Backend, then fast-check runs for: one token at a time, chunks, rotary offsets. */
const BACKENDS = [['webgpu', 12, 8, 20], ['gpujs-cpu', 6, 4, 10]] as const;
const tol = loadManifest().tolerances.gpu_f32.values;
const loaded = await Promise.all(BACKENDS.map(([name]) => tryLoad(name)));
afterAll(async () => { for (const l of loaded) await l.backend?.destroy(); });

describe.each(BACKENDS.map((b, i) => [b[0], b, loaded[i]] as const))('KV-cache decode on %s', (_name, [, single, chunked, offsets], l) => {
  const title = (t: string) => `${t}${l.backend ? '' : ` (skipped: ${l.reason})`}`;

  it.skipIf(!l.backend)(title('prompt, then one token at a time: within gpu_f32 of a full recompute'), async () => {
    await fc.assert(fc.asyncProperty(arbDecodeCase(1), async (k) => {
      expect(await decodeMismatches(l.backend!, k, tol)).toEqual([]);
    }), { numRuns: single });
  });

  it.skipIf(!l.backend)(title('chunks of 1…3 tokens, batch 1…2: within gpu_f32 of a full recompute'), async () => {
    await fc.assert(fc.asyncProperty(arbDecodeCase(3, 2), async (k) => {
      expect(await decodeMismatches(l.backend!, k, tol)).toEqual([]);
    }), { numRuns: chunked });
  });

  it.skipIf(!l.backend)(title('rotary at an offset: within gpu_f32 of the CPU reference’s rows (forward and inverse)'), async () => {
    const cpu = createCpuBackend();
    await fc.assert(fc.asyncProperty(
      fc.record({ off: fc.integer({ min: 0, max: 300 }), T: fc.integer({ min: 1, max: 5 }), pct: fc.constantFrom(0, 0.25, 0.5, 1), seed: fc.nat() }),
      async ({ off, T, pct, seed }) => {
        expect(await rotaryOffsetMismatch(l.backend!, cpu, off, T, pct, new Rng(seed), tol)).toBeNull();
      },
    ), { numRuns: offsets });
  });
});
