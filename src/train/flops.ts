// Training FLOPs, counted exactly from the shapes of the matrix products (spec/growth.md).
// Omits: elementwise work (norms, GELU, softmax, rotary, AdamW): O(C) or O(n) per token
// against the O(n·C) products, and the same for every compared run.

import type { ModelConfig } from '../config.ts';
import { pattentionLayers } from '../params.ts';

/**
 * Forward FLOPs per token (one multiply-add = 2 FLOPs) at sequence length T:
 *   each Pattention layer (n tokens, d_in → d_out): 2·n·d_in (S = X·Kᵀ) + 2·n·d_out (A·V)
 *   attention per layer: 2·T·C (Q·Kᵀ) + 2·T·C (P·V), counting the full T×T square
 *     (the causal half is not subtracted, as in the PaLM/Chinchilla convention)
 *   output head: 2·C·V; the embedding lookup is free.
 */
export function forwardFlopsPerToken(c: ModelConfig, seq: number): number {
  let f = 0;
  for (const l of pattentionLayers(c)) f += 2 * l.n * (l.dIn + l.dOut);
  f += c.numLayers * 4 * seq * c.hiddenSize;
  f += 2 * c.hiddenSize * c.vocabSize;
  return f;
}

/** Training = forward + backward, the backward costing two forwards (dX and dW products). */
export function trainFlopsPerToken(c: ModelConfig, seq: number): number {
  return 3 * forwardFlopsPerToken(c, seq);
}

/** Parameter count (the Pattention tokens, embedding, final norm, untied head). */
export function paramCount(c: ModelConfig): number {
  let p = c.vocabSize * c.hiddenSize + 2 * c.hiddenSize;
  for (const l of pattentionLayers(c)) p += l.n * (l.dIn + l.dOut);
  if (!c.tied) p += c.vocabSize * c.hiddenSize;
  return p;
}
