// Shared fixtures for the training tests: tiny configs and a small in-memory corpus.
import type { ModelConfig } from '../../src/config.ts';
import type { Variant } from '../../src/backend.ts';
import { splitDocuments, type Corpus } from '../../src/train/data.ts';
import { DEFAULT_TRAIN_ARGS, type TrainArgs } from '../../src/train/trainer.ts';

export function tinyConfig(over: Partial<ModelConfig> = {}): ModelConfig {
  return {
    numLayers: 1, hiddenSize: 16, numHeads: 2, qkvSlots: 8, projSlots: 8, ffnSlots: 16, maxPositions: 64,
    rotaryPct: 0.5, rotaryBase: 10000, variant: 'l2_norm_gelu' as Variant, tied: true, eps: 1e-5, vocabSize: 256,
    normSlots: {}, ...over,
  };
}

export function tinyCorpus(): Corpus {
  const text = 'the cat sat on the mat. a dog ran in the fog. '.repeat(40);
  return splitDocuments([text], 'test');
}

export function tinyArgs(over: Partial<TrainArgs> = {}): TrainArgs {
  return { ...DEFAULT_TRAIN_ARGS, steps: 6, batch: 2, seq: 16, evalEvery: 2, evalBatches: 2, saveEvery: 3, lr: 3e-3, minLr: 3e-4, ...over };
}
