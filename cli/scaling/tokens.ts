// Token streams for the scaling experiment: the byte-level corpus of src/train/data.ts, or the
// same documents through a subword tokenizer (the GPT-NeoX-20B one for `--preset gpu`), with
// the corpus's held-out validation split kept held out; seeded training windows and a fixed,
// evenly spaced validation set. Omits: streaming from disk and document-aware packing.

import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../../src/errors.ts';
import type { Rng } from '../../src/rng.ts';
import { BYTE_VOCAB, type Batch, decodeBytes, loadCorpus } from '../../src/train/data.ts';
import type { TokenizerName } from './options.ts';

export type TokenArray = Uint8Array | Uint16Array | Int32Array;

export interface TokenCorpus {
  source: string;
  tokenizer: string;
  /** The model's vocab_size (≥ every id; GPT-NeoX pads its tokenizer to a multiple of 128). */
  vocabSize: number;
  train: TokenArray;
  val: TokenArray;
}

/** What the experiment needs of a subword tokenizer (src/tokenizer.ts provides one). */
export interface TextTokenizer {
  readonly name: string;
  /** Entries of the tokenizer's vocabulary (ids are 0 … size − 1). */
  readonly size: number;
  encode(text: string): ArrayLike<number>;
}

/** GPT-NeoX pads the vocabulary to a multiple of 128 (make_vocab_size_divisible_by). */
export function paddedVocab(size: number): number {
  return Math.ceil(size / 128) * 128;
}

function toIds(ids: ArrayLike<number>, vocab: number, what: string): Int32Array {
  const out = Int32Array.from(ids);
  for (const id of out) {
    if (!(id >= 0 && id < vocab)) throw new UserError(`${what}: tokenizer returned id ${id}, outside 0 … ${vocab - 1}`);
  }
  return out;
}

/** The corpus (Brown, or --data) as bytes, or through `tok`; the split is data.ts's. */
export function tokenCorpus(data: string | null, tok: TextTokenizer | null): TokenCorpus {
  const c = loadCorpus(data ?? undefined);
  if (!tok) return { source: c.source, tokenizer: 'bytes (UTF-8, vocab 256)', vocabSize: BYTE_VOCAB, train: c.train, val: c.val };
  const vocabSize = paddedVocab(tok.size);
  return {
    source: c.source, tokenizer: tok.name, vocabSize,
    train: toIds(tok.encode(decodeBytes(c.train)), vocabSize, 'train split'),
    val: toIds(tok.encode(decodeBytes(c.val)), vocabSize, 'validation split'),
  };
}

/** The GPT-NeoX-20B tokenizer JSON: TOKENFORMER_NEOX_TOKENIZER, or shared/ beside the repo. */
export function neoxTokenizerPath(): string {
  const env = process.env.TOKENFORMER_NEOX_TOKENIZER;
  if (env) return env;
  const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  for (const p of [join(repo, 'shared', 'official-data', 'gpt-neox-20b-tokenizer.json'), join(repo, '..', 'shared', 'official-data', 'gpt-neox-20b-tokenizer.json')]) {
    if (existsSync(p)) return p;
  }
  throw new UserError('the GPT-NeoX-20B tokenizer JSON was not found: set TOKENFORMER_NEOX_TOKENIZER to gpt-neox-20b-tokenizer.json');
}

/**
 * The GPT-NeoX-20B tokenizer through src/tokenizer.ts (@huggingface/tokenizers), imported on
 * demand so the byte-level default never loads it.
 */
export async function loadNeoxTokenizer(): Promise<TextTokenizer> {
  const { readTokenizer } = await import('../../src/tokenizer.ts');
  const path = neoxTokenizerPath();
  const t = readTokenizer(path);
  return { name: `GPT-NeoX-20B (${t.size} entries, vocab padded to ${paddedVocab(t.size)})`, size: t.size, encode: (s) => t.encode(s) };
}

export async function loadTokens(data: string | null, name: TokenizerName): Promise<TokenCorpus> {
  return tokenCorpus(data, name === 'gpt-neox' ? await loadNeoxTokenizer() : null);
}

function emptyBatch(batch: number, seq: number): Batch {
  return { batch, seq, ids: new Int32Array(batch * seq), targets: new Int32Array(batch * seq) };
}

function fillRow(out: Batch, b: number, data: TokenArray, start: number): void {
  const T = out.seq;
  for (let t = 0; t < T; t++) {
    out.ids[b * T + t] = data[start + t];
    out.targets[b * T + t] = data[start + t + 1];
  }
}

export function checkTokens(data: TokenArray, seq: number, what: string): void {
  if (data.length < seq + 1) throw new UserError(`${what} split has ${data.length} tokens, fewer than seq + 1 = ${seq + 1}`);
}

/** B windows of T + 1 tokens at uniformly random starts, drawn in row order (as data.ts). */
export function sampleWindows(data: TokenArray, batch: number, seq: number, rng: Rng): Batch {
  const out = emptyBatch(batch, seq);
  const starts = data.length - seq;
  for (let b = 0; b < batch; b++) fillRow(out, b, data, rng.int(starts));
  return out;
}

/**
 * The fixed validation set: `windows` windows at evenly spaced starts over the whole held-out
 * split, in batches of at most `batch` rows (identical in every run with the same seq).
 */
export function validationWindows(data: TokenArray, batch: number, seq: number, windows: number): Batch[] {
  checkTokens(data, seq, 'validation');
  const last = data.length - seq - 1;
  const out: Batch[] = [];
  for (let w0 = 0; w0 < windows; w0 += batch) {
    const bt = emptyBatch(Math.min(batch, windows - w0), seq);
    for (let b = 0; b < bt.batch; b++) {
      const w = w0 + b;
      fillRow(bt, b, data, windows === 1 ? 0 : Math.floor((w * last) / (windows - 1)));
    }
    out.push(bt);
  }
  return out;
}
