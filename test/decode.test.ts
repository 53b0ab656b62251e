// The KV-cache decode path on the CPU reference: at every step its logits are bit-identical to
// a full recompute of the sequence so far (random tiny configs, every Θ variant, tied and
// untied, rotary ¼ / ½ / 1, prompts 1…8 tokens, then single tokens or chunks, batch 1…2);
// the rotary position offset against rows of a rotation from 0; and the step's input checks.
// WebGPU and GPU.js run the same property in webgpu-decode.test.ts and gpujs-decode.test.ts.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createCpuBackend } from '../backends/cpu.ts';
import { UserError } from '../src/errors.ts';
import { decodeStep, emptyCache, releaseCache } from '../src/decode.ts';
import { TokenFormer } from '../src/model.ts';
import { Rng } from '../src/rng.ts';
import { arbDecodeCase, decodeMismatches, randomWeights } from './helpers/decode-check.ts';
import { rotaryOffsetMismatch } from './helpers/rotary-offset.ts';
import { tinyConfig } from './helpers/tiny.ts';

const be = createCpuBackend();

describe('KV-cache decode on the CPU reference', () => {
  it('prompt as one batch, then one token at a time: logits bit-identical to a full recompute', async () => {
    await fc.assert(fc.asyncProperty(arbDecodeCase(1), async (k) => {
      expect(await decodeMismatches(be, k, null)).toEqual([]);
    }), { numRuns: 40 });
  });

  it('chunks of 1…3 new tokens after the prompt, batch 1…2: bit-identical too', async () => {
    await fc.assert(fc.asyncProperty(arbDecodeCase(3, 2), async (k) => {
      expect(await decodeMismatches(be, k, null)).toEqual([]);
    }), { numRuns: 30 });
  });

  it('lastOnly returns the last position’s logits of the full step', async () => {
    const c = tinyConfig();
    const model = TokenFormer.fromHost(be, c, randomWeights(c, 3));
    const ids = be.uploadInt(Int32Array.of(1, 5, 7, 2, 9, 4), [2, 3]);
    const all = decodeStep(model, ids, emptyCache(2));
    const last = decodeStep(model, ids, emptyCache(2), { lastOnly: true });
    expect(last.logits.shape).toEqual([2, 1, c.vocabSize]);
    const a = await be.read(all.logits), l = await be.read(last.logits);
    const V = c.vocabSize;
    expect(Array.from(l.subarray(0, V))).toEqual(Array.from(a.subarray(2 * V, 3 * V)));
    expect(Array.from(l.subarray(V))).toEqual(Array.from(a.subarray(5 * V, 6 * V)));
    expect(all.cache.length).toBe(3);
    releaseCache(be, all.cache);
    releaseCache(be, last.cache);
  });

  it('refuses a step past max_position_embeddings, a batch change and a 1-D id tensor', () => {
    const c = tinyConfig({ maxPositions: 4 });
    const model = TokenFormer.fromHost(be, c, randomWeights(c, 1));
    const r = decodeStep(model, be.uploadInt(Int32Array.of(1, 2, 3), [1, 3]), emptyCache(1));
    expect(() => decodeStep(model, be.uploadInt(Int32Array.of(1, 2), [1, 2]), r.cache))
      .toThrow(/sequence length 5 exceeds max_position_embeddings 4/);
    expect(() => decodeStep(model, be.uploadInt(Int32Array.of(1, 2), [2, 1]), r.cache)).toThrow(/batch 1/);
    expect(() => decodeStep(model, be.uploadInt(Int32Array.of(1), [1]), r.cache)).toThrow(UserError);
  });
});

describe('rotary position offset on the CPU reference', () => {
  it('rows at offset off equal rows off… of a rotation from position 0, bit for bit (forward and inverse)', async () => {
    await fc.assert(fc.asyncProperty(
      fc.record({ off: fc.integer({ min: 0, max: 40 }), T: fc.integer({ min: 1, max: 5 }), pct: fc.constantFrom(0, 0.25, 0.5, 1), seed: fc.nat() }),
      async ({ off, T, pct, seed }) => {
        expect(await rotaryOffsetMismatch(be, be, off, T, pct, new Rng(seed), null)).toBeNull();
      },
    ), { numRuns: 60 });
  });

  it('refuses a negative or fractional offset with a UserError', () => {
    const x = be.upload(new Float32Array(8), [1, 1, 1, 8]);
    expect(() => be.ops.rotary(x, { rotaryDim: 4, base: 1e4, offset: -1 }, false)).toThrow(UserError);
    expect(() => be.ops.rotary(x, { rotaryDim: 4, base: 1e4, offset: 1.5 }, false)).toThrow(/offset must be an integer/);
  });
});
