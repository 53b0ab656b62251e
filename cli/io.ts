// CLI input readers and output checks: token-id JSON, config + weights pairs, and the checks
// every output path passes before any work starts. Every malformed input becomes a one-line
// UserError with untrusted strings quoted (src/fsguard.ts); no reader can block on a FIFO or
// read past the input and memory limits (spec/files.md).
// Omits: tokenization of raw text (see the train command's --data) and the writes themselves
// (src/atomic.ts).

import type { ModelConfig } from '../src/config.ts';
import { readConfigFile } from '../src/config-parse.ts';
import type { SafeTensors } from '../src/safetensors.ts';
import { readWeightsFile } from '../src/weights.ts';
import { EMBEDDING, checkParams, paramSpecs } from '../src/params.ts';
import { UserError } from '../src/errors.ts';
import {
  checkDistinctOutputs, checkInputFile, checkOutputDir, checkOutputPath, quote, readInputFile,
} from '../src/fsguard.ts';
import { checkMemory, formatBytes } from '../src/limits.ts';
import { parseBackendName } from '../backends/index.ts';
import { parseTokenJson, type TokenBatch } from './tokens.ts';

export type { TokenBatch } from './tokens.ts';

/** A config is a few KB (the official ones are under 10 KB); anything past this is not one. */
export const MAX_CONFIG_BYTES = 16 * 2 ** 20;

export interface ReadOptions {
  /** --max-memory, when the command has it. */
  maxMemory?: string;
}

/** Reads a JSON array of equal-length arrays of token ids in [0, vocab). */
export function readTokens(path: string, vocab: number, what = 'tokens', opts: ReadOptions = {}): TokenBatch {
  const size = checkInputFile(path, `${what} file`);
  // the bytes, plus at most 2 ids (8 bytes) per 2 bytes of JSON while the array grows
  checkMemory(5 * size, `reading the ${what} file ${quote(path)} (${formatBytes(size)})`, opts.maxMemory);
  return parseTokenJson(readInputFile(path, `${what} file`), quote(path), vocab);
}

/** Integer tensors under parameter names are a user's mistake, not "missing" parameters. */
function checkParamDtypes(c: ModelConfig, tensors: SafeTensors, source: string): void {
  for (const s of paramSpecs(c)) {
    const t = tensors.get(s.name);
    if (t && !(t.data instanceof Float32Array)) {
      throw new UserError(`${source}: ${quote(s.name)} is ${t.dtype}; parameters must be F32, F16 or BF16`);
    }
  }
}

/**
 * Reads a config and its weights (`.safetensors` or a torch.save `pytorch_model.bin`); the
 * embedding's row count supplies a missing vocab_size (50304 in the released checkpoints).
 */
export function readModelFiles(configPath: string, weightsPath: string, opts: ReadOptions = {}): {
  config: ModelConfig;
  weights: Map<string, Float32Array>;
} {
  checkInputFile(configPath, 'config', MAX_CONFIG_BYTES); // FIFO, device, folder, absurd size
  const size = checkInputFile(weightsPath, 'weights');
  // the file's bytes, the decoded floats (F16/BF16 double), then the backend's own copy
  checkMemory(3 * size, `reading the weights ${quote(weightsPath)} (${formatBytes(size)})`, opts.maxMemory);
  const tensors = readWeightsFile(weightsPath, 'weights'); // pytorch_model.bin or safetensors, by content
  const emb = tensors.get(EMBEDDING);
  const config = readConfigFile(configPath, { vocabFromWeights: emb?.shape[0] });
  const source = quote(weightsPath);
  checkParamDtypes(config, tensors, source);
  checkParams(config, tensors, source);
  const weights = new Map<string, Float32Array>();
  for (const [name, t] of tensors) {
    if (!(t.data instanceof Float32Array)) continue; // integer buffers are never parameters
    for (let i = 0; i < t.data.length; i++) {
      if (!Number.isFinite(t.data[i])) throw new UserError(`${source}: ${quote(name)} holds a non-finite value at index ${i}`);
    }
    weights.set(name, t.data);
  }
  return { config, weights };
}

/**
 * Checks a command's outputs before it computes anything: each is absent or a regular file
 * (never a symlink, device, FIFO or folder), none is one of the inputs (by inode), no two are
 * the same path, and each one's folder exists and is writable.
 */
export function checkOutputs(outputs: ReadonlyArray<[flag: string, path: string]>, inputs: readonly string[]): void {
  for (const [flag, path] of outputs) {
    checkOutputPath(path, flag, inputs);
    checkOutputDir(path, flag);
  }
  checkDistinctOutputs(outputs);
}

/** Refuses an unknown --backend name before any work (loading it may still fail later). */
export function checkBackendName(name: string): void {
  parseBackendName(name);
}
