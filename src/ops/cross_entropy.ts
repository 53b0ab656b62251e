// Mean cross-entropy over rows of logits with integer targets, and its backward.
// Omits: ignore_index, label smoothing, class weights.
//
// Dimension legend: N = rows (B·T), V = vocab.
//   lse_i = log Σ_v exp(logit_iv)  (stable: max subtracted),  loss = (1/N) Σ_i (lse_i − logit_i,y_i)
//   dLogits_iv = dLoss · (softmax_iv − [v = y_i]) / N,  softmax_iv = exp(logit_iv − lse_i)

import { checkIds } from './embedding.ts';

export interface CrossEntropyCache {
  lse: Float32Array; // (N) log-sum-exp per row
}

/** Returns the mean loss (float64) and the per-row log-sum-exp. logits (N, V), targets (N). */
export function crossEntropyForward(
  logits: Float32Array, targets: Int32Array, N: number, V: number,
): { loss: number; cache: CrossEntropyCache } {
  checkIds(targets, V, 'target');
  const lse = new Float32Array(N);
  let total = 0;
  for (let i = 0; i < N; i++) {
    const o = i * V;
    let m = -Infinity;
    for (let v = 0; v < V; v++) m = Math.max(m, logits[o + v]);
    let z = 0;
    for (let v = 0; v < V; v++) z += Math.exp(logits[o + v] - m);
    const l = m + Math.log(z);
    lse[i] = l;
    total += l - logits[o + targets[i]];
  }
  return { loss: total / N, cache: { lse } };
}

/**
 * dLogits (N, V) from the scalar upstream gradient dLoss.
 * NOTE: the row's max and Σ exp are recomputed in float64 rather than taken from the float32
 * `cache.lse`: rounding an lse of ~17 to float32 moves every probability by ~1e-6 relative,
 * which is the whole of p_y − 1 when the target is the confident top prediction. For the
 * same reason the target entry is −Σ_{v≠y} p_v, which has no cancellation. `cache` is part
 * of the op's signature for backends that do use it.
 */
export function crossEntropyBackward(
  dLogits: Float32Array, dLoss: number, logits: Float32Array, targets: Int32Array,
  cache: CrossEntropyCache, N: number, V: number,
): void {
  checkIds(targets, V, 'target');
  void cache;
  const c = dLoss / N;
  for (let i = 0; i < N; i++) {
    const o = i * V, y = targets[i];
    let m = -Infinity;
    for (let v = 0; v < V; v++) m = Math.max(m, logits[o + v]);
    let z = 0;
    for (let v = 0; v < V; v++) z += Math.exp(logits[o + v] - m);
    let others = 0; // Σ_{v≠y} p_v = 1 − p_y
    for (let v = 0; v < V; v++) {
      const p = Math.exp(logits[o + v] - m) / z;
      dLogits[o + v] = c * p;
      if (v !== y) others += p;
    }
    dLogits[o + y] = -c * others;
  }
}
