// Picking the next token from one row of logits: greedy at temperature 0, else temperature,
// then top-k, then top-p (nucleus) filtering, then one seeded draw (src/rng.ts). Only ids below
// `allowed` are ever candidates: the official checkpoints pad the vocabulary to 50304 rows, past
// the tokenizer's 50277 ids, and those rows have no text. spec/decode.md.
// Omits: repetition penalties, min-p, typical sampling, beam search, logit processors.
//
// NOTE: order and ties are fixed (candidates sorted by logit, then by lower id), and the draw
// uses one rng.uniform() per token, so the same logits and seed give the same ids on any machine.

import { UserError } from './errors.ts';
import type { Rng } from './rng.ts';

export interface SampleOptions {
  /** 0 = greedy argmax; otherwise logits are divided by it. ≥ 0. */
  temperature: number;
  /** Keep the k most likely ids; 0 = no top-k filter. An integer ≥ 0. */
  topK: number;
  /** Keep the smallest most-likely set whose probability reaches p; 1 = no filter. In (0, 1]. */
  topP: number;
}

export const DEFAULT_SAMPLING: SampleOptions = { temperature: 1, topK: 50, topP: 1 };

/** One-line UserErrors for out-of-range settings (flag names as the CLI spells them). */
export function checkSampling(o: SampleOptions): void {
  if (!(o.temperature >= 0) || !Number.isFinite(o.temperature)) {
    throw new UserError(`--temperature must be a finite number ≥ 0, got ${o.temperature}`);
  }
  if (!Number.isSafeInteger(o.topK) || o.topK < 0) throw new UserError(`--top-k must be an integer ≥ 0, got ${o.topK}`);
  if (!(o.topP > 0 && o.topP <= 1)) throw new UserError(`--top-p must be in (0, 1], got ${o.topP}`);
}

/** The id of the largest logit among ids < allowed (the lowest such id on ties). */
export function argmax(logits: ArrayLike<number>, allowed: number): number {
  let best = 0;
  for (let i = 1; i < allowed; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

/** The k largest logits' ids among ids < allowed, most likely first (ties: lower id first).
 *  One scan keeping a sorted list of k: about k·ln(V/k) insertions for random logits. */
function topKScan(logits: ArrayLike<number>, allowed: number, k: number): number[] {
  const top: number[] = [];
  for (let i = 0; i < allowed; i++) {
    const x = logits[i];
    if (top.length === k && !(x > logits[top[k - 1]])) continue; // a tie keeps the lower id
    let lo = 0, hi = top.length; // after every entry ≥ x, so equal logits stay in id order
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (logits[top[mid]] >= x) lo = mid + 1;
      else hi = mid;
    }
    top.splice(lo, 0, i);
    if (top.length > k) top.pop();
  }
  return top;
}

/** Candidate ids < allowed, most likely first (ties: lower id first), cut to the top k;
 *  in id order when nothing filters them (plain temperature sampling needs no order). */
function ranked(logits: ArrayLike<number>, allowed: number, o: SampleOptions): number[] {
  const k = o.topK > 0 ? Math.min(o.topK, allowed) : allowed;
  if (k <= 1024 && k < allowed) return topKScan(logits, allowed, k);
  const ids = Array.from({ length: allowed }, (_, i) => i);
  if (k === allowed && o.topP === 1) return ids;
  return ids.sort((a, b) => logits[b] - logits[a] || a - b).slice(0, k);
}

/**
 * The next id from logits (at least `allowed` entries; ids ≥ allowed are never chosen).
 * Probabilities are softmax(logits / temperature) over the candidates left by top-k, then
 * renormalized over the top-p nucleus (always at least the most likely id).
 */
export function sample(logits: ArrayLike<number>, allowed: number, o: SampleOptions, rng: Rng): number {
  if (!(allowed >= 1 && allowed <= logits.length)) throw new Error(`internal: sample: ${allowed} allowed ids, ${logits.length} logits`);
  for (let i = 0; i < allowed; i++) {
    if (!Number.isFinite(logits[i])) throw new UserError(`the model produced a non-finite logit (${logits[i]} for id ${i})`);
  }
  if (o.temperature === 0) return argmax(logits, allowed);
  const order = ranked(logits, allowed, o);
  const top = logits[argmax(logits, allowed)];
  // (l − max)/t ≤ 0, so no overflow even for a tiny temperature; unnormalized, the max is 1
  const w = order.map((i) => Math.exp((logits[i] - top) / o.temperature));
  let total = 0;
  for (const x of w) total += x;
  let n = order.length;
  if (o.topP < 1) {
    let cum = 0;
    for (n = 0; n < order.length && cum < o.topP * total; n++) cum += w[n];
    n = Math.max(1, n);
  }
  let mass = 0;
  for (let j = 0; j < n; j++) mass += w[j];
  let u = rng.uniform() * mass;
  for (let j = 0; j < n; j++) {
    u -= w[j];
    if (u < 0) return order[j];
  }
  return order[n - 1]; // u landed on the rounding edge of the last candidate
}
