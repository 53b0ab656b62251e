// Small random configs and models for property tests on the CPU reference.

import fc from 'fast-check';
import type { Variant } from '../../src/backend.ts';
import type { ModelConfig } from '../../src/config.ts';

export function tinyConfig(over: Partial<ModelConfig> = {}): ModelConfig {
  return {
    numLayers: 2, hiddenSize: 16, numHeads: 2, qkvSlots: 7, projSlots: 5, ffnSlots: 11,
    maxPositions: 64, rotaryPct: 0.5, rotaryBase: 10000, variant: 'l2_norm_gelu', tied: true,
    eps: 1e-5, vocabSize: 23, normSlots: {}, ...over,
  };
}

/** Random small valid configs: heads divide hidden, rotary dim even. At least 2 tokens per
 *  layer: with n = 1, S/‖S‖ is sign(S), a step function that finite differences cannot test. */
export function arbConfigWith(minSlots: number): fc.Arbitrary<ModelConfig> {
  return fc
    .record({
      numLayers: fc.integer({ min: 1, max: 2 }),
      heads: fc.integer({ min: 1, max: 3 }),
      headDimEighth: fc.integer({ min: 1, max: 3 }),
      qkv: fc.integer({ min: minSlots, max: minSlots + 7 }),
      proj: fc.integer({ min: minSlots, max: minSlots + 7 }),
      ffn: fc.integer({ min: minSlots, max: minSlots + 11 }),
      rotaryPct: fc.constantFrom(0.25, 0.5, 1.0),
      variant: fc.constantFrom<Variant>('l2_norm_gelu', 'gelu_l2_norm', 'softmax'),
      tied: fc.boolean(),
      vocab: fc.integer({ min: 3, max: 19 }),
    })
    .map((r) => {
      const D = 8 * r.headDimEighth; // rotary dims D·pct stay even for pct ∈ {¼, ½, 1}
      return tinyConfig({
        numLayers: r.numLayers, hiddenSize: D * r.heads, numHeads: r.heads, qkvSlots: r.qkv, projSlots: r.proj,
        ffnSlots: r.ffn, rotaryPct: r.rotaryPct, variant: r.variant, tied: r.tied, vocabSize: r.vocab,
      });
    });
}

export const arbConfig = arbConfigWith(2);
