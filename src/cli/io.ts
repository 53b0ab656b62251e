// CLI input readers: token-id JSON, config + weights pairs. Every malformed input becomes a
// one-line UserError. Omits: tokenization of raw text (see the train command's --data).

import { readFileSync } from 'node:fs';
import type { ModelConfig } from '../config.ts';
import { readConfigFile } from '../config-parse.ts';
import { readSafetensors } from '../safetensors.ts';
import { EMBEDDING, checkParams } from '../params.ts';
import { UserError, check } from '../errors.ts';

export interface TokenBatch {
  data: Int32Array; // (B, T) row-major
  B: number;
  T: number;
}

/** Reads a JSON array of equal-length arrays of token ids in [0, vocab). */
export function readTokens(path: string, vocab: number, what = 'tokens'): TokenBatch {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UserError(`cannot read ${what} file ${path}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
  let rows: unknown;
  try {
    rows = JSON.parse(text);
  } catch {
    throw new UserError(`${path}: not valid JSON`);
  }
  check(Array.isArray(rows) && rows.length > 0, `${path}: expected a non-empty JSON array of arrays of token ids`);
  const B = rows.length;
  const first = rows[0];
  check(Array.isArray(first) && first.length > 0, `${path}: row 0 must be a non-empty array of token ids`);
  const T = first.length;
  const data = new Int32Array(B * T);
  rows.forEach((row, b) => {
    check(Array.isArray(row), `${path}: row ${b} is not an array`);
    check(row.length === T, `${path}: row ${b} has ${row.length} ids, row 0 has ${T} (rows must be equal length)`);
    row.forEach((id: unknown, t: number) => {
      check(Number.isInteger(id), `${path}: [${b}][${t}] = ${JSON.stringify(id)} is not an integer token id`);
      check((id as number) >= 0 && (id as number) < vocab, `${path}: [${b}][${t}] = ${id} is outside the vocabulary [0, ${vocab})`);
      data[b * T + t] = id as number;
    });
  });
  return { data, B, T };
}

/** Reads a config and its weights; the embedding's row count supplies a missing vocab_size. */
export function readModelFiles(configPath: string, weightsPath: string): {
  config: ModelConfig;
  weights: Map<string, Float32Array>;
} {
  const tensors = readSafetensors(weightsPath);
  const emb = tensors.get(EMBEDDING);
  const config = readConfigFile(configPath, { vocabFromWeights: emb?.shape[0] });
  checkParams(config, tensors, weightsPath);
  const weights = new Map<string, Float32Array>();
  for (const [name, t] of tensors) {
    if (!(t.data instanceof Float32Array)) continue; // integer buffers are never parameters
    for (let i = 0; i < t.data.length; i++) {
      if (!Number.isFinite(t.data[i])) throw new UserError(`${weightsPath}: '${name}' holds a non-finite value at index ${i}`);
    }
    weights.set(name, t.data);
  }
  return { config, weights };
}
