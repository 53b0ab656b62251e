// Small models for the generation tests: a config + weights pair on disk (for the CLI), and the
// independent greedy reference: at every step a full recompute with the training forward
// (model.forward, no cache), then the argmax over the allowed ids.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Backend, Handle } from '../../src/backend.ts';
import type { ModelConfig } from '../../src/config.ts';
import { configToYaml } from '../../src/config-parse.ts';
import { TokenFormer } from '../../src/model.ts';
import { paramSpecs } from '../../src/params.ts';
import { serializeSafetensors } from '../../src/safetensors.ts';
import { randomWeights } from './decode-check.ts';
import { tinyConfig } from './tiny.ts';

/** GPT-NeoX-20B's padded vocabulary on a one-layer, hidden-16 model: fast, and big enough for the real tokenizer. */
export function neoxTinyConfig(over: Partial<ModelConfig> = {}): ModelConfig {
  return tinyConfig({ numLayers: 1, hiddenSize: 16, numHeads: 2, vocabSize: 50304, maxPositions: 64, ...over });
}

/** Writes c.yml and w.safetensors (random weights, seed) into dir; returns their paths. */
export function writeModel(dir: string, c: ModelConfig, seed: number): { config: string; weights: string } {
  const w = randomWeights(c, seed);
  const config = join(dir, 'c.yml'), weights = join(dir, 'w.safetensors');
  writeFileSync(config, configToYaml(c));
  writeFileSync(weights, serializeSafetensors(new Map(paramSpecs(c).map((s) => [s.name, { shape: s.shape, data: w.get(s.name)! }]))));
  return { config, weights };
}

/** Greedy continuation by full recomputes: argmax over ids < allowed of the last row, each step. */
export async function greedyByRecompute<T extends Handle>(
  be: Backend<T>, c: ModelConfig, weights: Map<string, Float32Array>, prompt: number[], n: number, allowed: number,
): Promise<number[]> {
  const model = TokenFormer.fromHost(be, c, weights);
  const seq = [...prompt];
  for (let s = 0; s < n; s++) {
    const ids = be.uploadInt(Int32Array.from(seq), [1, seq.length]);
    const f = model.forward(ids, null);
    const all = await be.read(f.logits);
    be.dispose(f.logits);
    model.release(f);
    be.dispose(ids);
    const row = all.subarray((seq.length - 1) * c.vocabSize, seq.length * c.vocabSize);
    let best = 0;
    for (let i = 1; i < allowed; i++) if (row[i] > row[best]) best = i;
    seq.push(best);
  }
  model.dispose();
  return seq.slice(prompt.length);
}
