// Memory estimates made before allocating, so an absurd config or flag (num_layers 10⁶,
// vocab_size 10⁹, batch 10⁹) is refused at once with the estimate and the limit, instead of
// running for minutes or dying in the allocator. spec/files.md states the limits.
// Omits: exact accounting (pools, temporaries of one kernel): the estimates count the
// tensors a step keeps alive, which dominate.

import { totalmem } from 'node:os';
import type { ModelConfig } from './config.ts';
import { UserError } from './errors.ts';
import { pattentionLayers } from './params.ts';

/** Share of the machine's memory a command may plan to use unless told otherwise. */
const DEFAULT_SHARE = 0.75;

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
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
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

/** Float32 parameter count, as a float (no overflow for absurd configs). */
export function paramFloats(c: ModelConfig): number {
  let p = c.vocabSize * c.hiddenSize + 2 * c.hiddenSize;
  for (const l of pattentionLayers(c)) p += l.n * (l.dIn + l.dOut);
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
  let perToken = 2 * c.vocabSize + 4 * c.hiddenSize;
  for (const l of pattentionLayers(c)) perToken += 2 * l.n;
  perToken += c.numLayers * (16 * c.hiddenSize + c.numHeads * T);
  return perToken;
}

/** Bytes of a forward over (B, T) tokens: weights plus activations. */
export function forwardBytes(c: ModelConfig, B: number, T: number): number {
  return 4 * (paramFloats(c) + B * T * activationFloatsPerToken(c, T));
}

/** Bytes of a training step: weights, gradients, two Adam moments, activations of one micro-batch. */
export function trainBytes(c: ModelConfig, B: number, T: number): number {
  return 4 * (4 * paramFloats(c) + B * T * activationFloatsPerToken(c, T));
}
