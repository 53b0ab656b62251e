// Memory plans for the CLI's forward, grad and grow, made before anything is allocated: a
// (B, T) batch runs in chunks of whole rows whose activations fit a chunk budget (256 MiB, or
// --chunk-tokens), and the whole plan must fit the memory budget (--max-memory,
// TOKENFORMER_MAX_MEMORY; src/limits.ts). Also the finiteness checks of outputs.
// Omits: splitting inside a row (T is bounded by max_position_embeddings) and accounting of
// backend pools and kernel temporaries (the estimates count the tensors that stay alive).

import type { ModelConfig } from '../src/config.ts';
import { UserError } from '../src/errors.ts';
import { checkMemory, forwardBytes, memoryBudget, paramFloats } from '../src/limits.ts';
import { pattentionLayers, type PattentionLayer } from '../src/params.ts';

/** Activation bytes one chunk may plan for unless --chunk-tokens says otherwise. */
export const DEFAULT_CHUNK_BYTES = 256 * 2 ** 20;

export interface ChunkOptions {
  chunkTokens?: number;
  maxMemory?: string;
}

export interface RowPlan {
  rows: number; // rows of the batch per chunk
  chunks: number;
}

/** Bytes of activations a forward over (rows, T) keeps alive (forwardBytes less the weights). */
function activationBytes(c: ModelConfig, rows: number, T: number): number {
  return forwardBytes(c, rows, T) - 4 * paramFloats(c);
}

/** Elements one tensor may have here (a typed array in V8 holds at most 2³²): chunks and grown layers stay below. */
const MAX_CHUNK_ELEMENTS = 2 ** 31 - 1;

/**
 * Rows per chunk for a forward (or, with `grad`, a forward + backward) over (B, T): as many
 * as --chunk-tokens allows, else as fit both the chunk budget and what the memory budget
 * leaves after the fixed part; refused with the estimate and the limit when the plan (with
 * one row if need be) does not fit. forward keeps the weights twice (host + backend) plus a
 * chunk's activations and its logits read back; grad adds the gradients on the backend, their
 * host copies and float64 sums.
 */
export function planRows(c: ModelConfig, B: number, T: number, mode: 'forward' | 'grad', o: ChunkOptions): RowPlan {
  const perRow = activationBytes(c, 1, T) * (mode === 'grad' ? 2 : 1) + 4 * T * c.vocabSize;
  const fixed = 4 * paramFloats(c) * (mode === 'grad' ? 6 : 2);
  const widest = pattentionLayers(c).reduce((w, l) => Math.max(w, l.n), Math.max(c.vocabSize, c.numHeads * T, c.hiddenSize));
  let rows = o.chunkTokens !== undefined
    ? Math.floor(o.chunkTokens / T)
    : Math.min(Math.floor(DEFAULT_CHUNK_BYTES / perRow), Math.floor((memoryBudget(o.maxMemory) - fixed) / perRow));
  rows = Math.max(1, Math.min(B, rows, Math.floor(MAX_CHUNK_ELEMENTS / (T * widest))));
  const chunks = Math.ceil(B / rows);
  const how = chunks > 1 ? ` in ${chunks} chunks of ${rows} rows` : '';
  checkMemory(fixed + rows * perRow, `${mode} over (B, T) = (${B}, ${T})${how}`, o.maxMemory);
  return { rows, chunks };
}

/**
 * grow holds the old weights, the grown ones (twice while single layers grow after kinds)
 * and, with the outputs check, both models on the backend and a forward over the sample.
 */
export function checkGrowMemory(c0: ModelConfig, newSlots: (l: PattentionLayer) => number, check: boolean, maxMemory?: string): void {
  let grown = paramFloats(c0);
  let widest: { prefix: string; n: number; d: number } | null = null;
  for (const l of pattentionLayers(c0)) {
    const n = newSlots(l);
    grown += (n - l.n) * (l.dIn + l.dOut);
    const d = Math.max(l.dIn, l.dOut);
    if (n * d > MAX_CHUNK_ELEMENTS && widest === null) widest = { prefix: l.prefix, n, d };
  }
  const old = paramFloats(c0);
  let bytes = 4 * (old + 2 * grown);
  if (check) bytes += 4 * (old + grown) + 2 * activationBytes(c0, 4, Math.min(64, c0.maxPositions));
  checkMemory(bytes, `growing to ${grown.toPrecision(4)} parameters`, maxMemory);
  if (widest) {
    throw new UserError(`${widest.prefix} with ${widest.n} tokens would be a (${widest.n}, ${widest.d}) tensor, `
      + `over the ${MAX_CHUNK_ELEMENTS}-element limit of one tensor`);
  }
}

/** Where the first non-finite value of a (rows, T, V) block starting at row b0 is, or null. */
export function firstNonFinite(data: Float32Array): number {
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) return i;
  return -1;
}

/** Throws when logits (rows, T, V) of rows b0… hold NaN or ±Inf. */
export function checkFiniteLogits(logits: Float32Array, b0: number, T: number, V: number): void {
  const i = firstNonFinite(logits);
  if (i < 0) return;
  const b = b0 + Math.floor(i / (T * V));
  const t = Math.floor(i / V) % T;
  throw new UserError(`forward produced non-finite logits (first at [${b}, ${t}, ${i % V}]); the weights overflow float32`);
}
