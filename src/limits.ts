// Memory estimates made before allocating, so an absurd config or flag (num_layers 10⁶,
// vocab_size 10⁹, batch 10⁹) is refused at once with the estimate and the limit, instead of
// running for minutes or dying in the allocator. spec/files.md states the limits.
// Omits: exact accounting (pools, temporaries of one kernel): the estimates count the
// tensors a step keeps alive, which dominate. Every count is a float (no overflow for absurd
// configs) and is computed from the config's fields, never by listing its layers.

import { totalmem } from 'node:os';
import type { ModelConfig } from './config.ts';
import { UserError } from './errors.ts';

/** Share of the machine's memory a command may plan to use unless told otherwise. */
const DEFAULT_SHARE = 0.75;

/** Elements one typed array may hold in Node 20 (V8): a larger tensor cannot exist at all. */
export const MAX_TENSOR_ELEMENTS = 2 ** 32;

/** Bytes one Uint8Array may hold: the bound on one serialized safetensors file. */
export const MAX_FILE_BUFFER_BYTES = 2 ** 32;

/** Parses "8G", "512M", "1.5e9" (bytes) and the like; null when it is not a size. */
export function parseBytes(s: string): number | null {
  const m = /^\s*([0-9]*\.?[0-9]+(?:e[+-]?\d+)?)\s*([kmgt]i?b?|b)?\s*$/i.exec(s);
  if (!m) return null;
  const unit = (m[2] ?? 'b').toLowerCase()[0];
  const mult = { b: 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[unit] ?? 1;
  const v = Number(m[1]) * mult;
  return Number.isFinite(v) && v > 0 ? v : null;
}

/** The memory budget in bytes: `override` (a --max-memory flag), else TOKENFORMER_MAX_MEMORY, else 75% of RAM. */
export function memoryBudget(override?: string): number {
  const given = override ?? process.env.TOKENFORMER_MAX_MEMORY;
  if (given === undefined || given === '') return Math.floor(DEFAULT_SHARE * totalmem());
  const v = parseBytes(given);
  if (v === null) throw new UserError(`memory limit must be a size such as 8G or 512M, got ${JSON.stringify(given.slice(0, 40))}`);
  return v;
}

export function formatBytes(b: number): string {
  if (!Number.isFinite(b)) return String(b);
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
  let i = 0;
  let v = b;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toPrecision(3)} ${units[i]}`;
}

/** Throws a one-line UserError when `bytes` exceeds the budget. */
export function checkMemory(bytes: number, what: string, override?: string): void {
  const budget = memoryBudget(override);
  if (!(bytes <= budget)) {
    throw new UserError(`${what} needs about ${formatBytes(bytes)}, over the ${formatBytes(budget)} memory limit `
      + '(raise it with --max-memory or TOKENFORMER_MAX_MEMORY)');
  }
}

const KIND_OF_PREFIX: [RegExp, 'qkvSlots' | 'projSlots' | 'ffnSlots'][] = [
  [/\.attention\.(query|key|value)$/, 'qkvSlots'], [/\.attention\.proj$/, 'projSlots'], [/\.mlp$/, 'ffnSlots'],
];

/** Σ n over every Pattention layer (5 per block), honouring tokenformer_layer_slots. */
export function pattentionTokenSum(c: ModelConfig): number {
  let sum = c.numLayers * (3 * c.qkvSlots + c.projSlots + c.ffnSlots);
  for (const [prefix, n] of Object.entries(c.layerSlots ?? {})) {
    const kind = KIND_OF_PREFIX.find(([re]) => re.test(prefix))?.[1];
    if (kind !== undefined) sum += n - c[kind];
  }
  return sum;
}

/** Float32 parameter count, as a float (no overflow for absurd configs). */
export function paramFloats(c: ModelConfig): number {
  // Every Pattention layer maps C → C: n key tokens and n value tokens of C each.
  let p = c.vocabSize * c.hiddenSize + 2 * c.hiddenSize + 2 * c.hiddenSize * pattentionTokenSum(c);
  if (!c.tied) p += c.vocabSize * c.hiddenSize;
  return p;
}

/**
 * Floats of activations a forward keeps for the backward, per token: per block about 16
 * C-sized vectors (norms, q/k/v, rotary, attention out, residuals, FFN in/out), each
 * Pattention layer's scores and Θ (2n), the attention probabilities (H·T); then the logits
 * and their softmax (2V).
 */
export function activationFloatsPerToken(c: ModelConfig, T: number): number {
  return 2 * c.vocabSize + 4 * c.hiddenSize + 2 * pattentionTokenSum(c) + c.numLayers * (16 * c.hiddenSize + c.numHeads * T);
}

/** Bytes of a forward over (B, T) tokens: weights plus activations. */
export function forwardBytes(c: ModelConfig, B: number, T: number): number {
  return 4 * (paramFloats(c) + B * T * activationFloatsPerToken(c, T));
}

/**
 * Bytes of a training step and its checkpoint: on the backend the weights, gradients and two
 * Adam moments (4P), the running gradient sum when accumulating (P); a save's host copies of
 * weights and moments (3P) and its serialized optimizer file (2P); the activations of one
 * micro-batch twice (the forward's cache and the backward's gradients of it).
 */
export function trainBytes(c: ModelConfig, B: number, T: number, accum = 1): number {
  const copies = 4 + (accum > 1 ? 1 : 0) + 3 + 2;
  return 4 * (copies * paramFloats(c) + 2 * B * T * activationFloatsPerToken(c, T));
}

/**
 * The largest tensors a forward over (B, T) allocates, against what one typed array can hold:
 * the embedding (V, C), the biggest Pattention layer (n, C), the logits (B, T, V) and one
 * layer's attention scores (B, H, T, T). Throws a one-line UserError naming the first too big.
 */
export function checkTensorSizes(c: ModelConfig, B: number, T: number, what: string): void {
  const maxN = Math.max(c.qkvSlots, c.projSlots, c.ffnSlots, ...Object.values(c.layerSlots ?? {}));
  const tensors: [string, number][] = [
    ['the embedding (vocab_size × hidden_size)', c.vocabSize * c.hiddenSize],
    ['the largest Pattention layer (tokens × hidden_size)', maxN * c.hiddenSize],
    ['the logits (batch × seq × vocab_size)', B * T * c.vocabSize],
    ['the attention scores (batch × heads × seq × seq)', B * c.numHeads * T * T],
  ];
  for (const [name, n] of tensors) {
    if (n > MAX_TENSOR_ELEMENTS) {
      throw new UserError(`${what}: ${name} would have ${n.toExponential(2)} elements, over the ${MAX_TENSOR_ELEMENTS} one array can hold`);
    }
  }
}

/** A checkpoint's optimizer.safetensors (2P floats) is serialized in one buffer: refuse a model it cannot hold. */
export function checkCheckpointSize(c: ModelConfig, what: string): void {
  const bytes = 8 * paramFloats(c);
  if (bytes > MAX_FILE_BUFFER_BYTES - 2 ** 20) {
    throw new UserError(`${what}: its checkpoint's optimizer.safetensors would be ${formatBytes(bytes)}, over the `
      + `${formatBytes(MAX_FILE_BUFFER_BYTES)} one file buffer can hold (no sharded checkpoints yet)`);
  }
}
