// Autoregressive generation: the prompt runs as one batch, then one cached decode step per new
// token (src/decode.ts), each sampled from the last position's logits (src/sample.ts) with one
// seeded generator. Stops at EOS, after maxNewTokens, or when the sequence fills
// max_position_embeddings. spec/decode.md.
// Omits: batches of prompts, streaming text (the caller decodes; see cli/generate.ts).

import type { Handle } from './backend.ts';
import { decodeStep, emptyCache, releaseCache, type KVCache } from './decode.ts';
import { UserError } from './errors.ts';
import type { TokenFormer } from './model.ts';
import { Rng } from './rng.ts';
import { checkSampling, sample, type SampleOptions } from './sample.ts';

export interface GenerateOptions extends SampleOptions {
  /** At most this many new ids (an integer ≥ 0). */
  maxNewTokens: number;
  seed: number;
  /** Ids ≥ allowed are never sampled: the tokenizer's size (the checkpoint pads the vocab). */
  allowed: number;
  /** Generation stops after this id (it is the last generated id); null = never. */
  eosId: number | null;
}

export type StopReason = 'eos' | 'max_new_tokens' | 'max_position_embeddings';

export interface Generated {
  ids: number[];
  stop: StopReason;
}

function checkGenerate<T extends Handle>(model: TokenFormer<T>, prompt: readonly number[], o: GenerateOptions): void {
  const c = model.config;
  if (prompt.length === 0) throw new UserError('the prompt has no tokens');
  if (prompt.length > c.maxPositions) {
    throw new UserError(`the prompt is ${prompt.length} tokens, over max_position_embeddings ${c.maxPositions}`);
  }
  if (!Number.isSafeInteger(o.maxNewTokens) || o.maxNewTokens < 0) {
    throw new UserError(`--max-new-tokens must be an integer ≥ 0, got ${o.maxNewTokens}`);
  }
  if (!(Number.isInteger(o.allowed) && o.allowed >= 1 && o.allowed <= c.vocabSize)) {
    throw new UserError(`the tokenizer has ${o.allowed} ids, but the model's vocabulary has ${c.vocabSize} rows`);
  }
  checkSampling(o);
}

/** Samples the next id from a step's (1, 1, V) logits, which it frees. */
async function next<T extends Handle>(model: TokenFormer<T>, logits: T, o: GenerateOptions, rng: Rng): Promise<number> {
  const host = await model.backend.read(logits);
  model.backend.dispose(logits);
  return sample(host, o.allowed, o, rng);
}

/**
 * Generates ids after `prompt` (ids < the model's vocab). onToken sees each new id as soon as
 * it is chosen (for streaming). The same model, backend, prompt, options and seed give the
 * same ids (sampling itself is machine-independent; the logits are the backend's).
 */
export async function generate<T extends Handle>(
  model: TokenFormer<T>, prompt: readonly number[], o: GenerateOptions,
  onToken?: (id: number, ids: readonly number[]) => void | Promise<void>,
): Promise<Generated> {
  checkGenerate(model, prompt, o);
  const be = model.backend;
  const rng = new Rng(o.seed);
  const ids: number[] = [];
  const room = () => prompt.length + ids.length < model.config.maxPositions;
  if (o.maxNewTokens === 0) return { ids, stop: 'max_new_tokens' };
  if (!room()) return { ids, stop: 'max_position_embeddings' };
  let cache: KVCache<T> = emptyCache(1);
  let input = be.uploadInt(Int32Array.from(prompt), [1, prompt.length]);
  try {
    for (;;) {
      const step = decodeStep(model, input, cache, { lastOnly: true });
      be.dispose(input);
      cache = step.cache;
      const id = await next(model, step.logits, o, rng);
      ids.push(id);
      await onToken?.(id, ids);
      if (id === o.eosId) return { ids, stop: 'eos' };
      if (ids.length >= o.maxNewTokens) return { ids, stop: 'max_new_tokens' };
      if (!room()) return { ids, stop: 'max_position_embeddings' };
      input = be.uploadInt(Int32Array.of(id), [1, 1]);
    }
  } finally {
    if (!input.disposed) be.dispose(input);
    releaseCache(be, cache);
  }
}
