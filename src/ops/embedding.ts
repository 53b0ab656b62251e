// Token embedding lookup and its scatter-add backward.
// Omits: padding_idx, max_norm, sparse gradients.
//
// Dimension legend: N = positions (B·T), V = vocab, C = channels.
//   out[i] = table[ids[i]];   dTable[v] = Σ_{i: ids[i] = v} dOut[i]   (float64 sums)

import { check } from '../errors.ts';

/** Throws a UserError unless every id is an integer in [0, V). */
export function checkIds(ids: Int32Array, V: number, what = 'token id'): void {
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    check(id >= 0 && id < V, () => `${what} ${id} at position ${i} is out of range [0, ${V})`);
  }
}

/** out (N, C) = table (V, C) rows at ids (N). */
export function embeddingForward(
  out: Float32Array, ids: Int32Array, table: Float32Array, V: number, C: number,
): void {
  checkIds(ids, V);
  for (let i = 0; i < ids.length; i++) {
    out.set(table.subarray(ids[i] * C, ids[i] * C + C), i * C);
  }
}

/** dTable (V, C) = scatter-add of dOut (N, C) rows at ids (N); untouched rows are 0. */
export function embeddingBackward(
  dTable: Float32Array, dOut: Float32Array, ids: Int32Array, V: number, C: number,
): void {
  checkIds(ids, V);
  dTable.fill(0);
  // Visit positions grouped by id, so each row is summed in float64 and stored once
  // without a (V, C) float64 buffer.
  const order = Array.from(ids.keys()).sort((i, j) => ids[i] - ids[j] || i - j);
  const acc = new Float64Array(C); // (C)
  for (let s = 0; s < order.length; ) {
    const id = ids[order[s]];
    acc.fill(0);
    for (; s < order.length && ids[order[s]] === id; s++) {
      const o = order[s] * C;
      for (let c = 0; c < C; c++) acc[c] += dOut[o + c];
    }
    for (let c = 0; c < C; c++) dTable[id * C + c] = acc[c];
  }
}
