// The axis permutation [a, b, c, d] → [a, c, b, d] (split/merge heads), and its backward.
// Omits: general permutations. The permutation is an involution on the axis order, so the
// backward is the same map applied to the [a, c, b, d]-shaped gradient.

/** out (a, c, b, d) = x (a, b, c, d) with axes 1 and 2 swapped. */
export function permute0213Forward(
  out: Float32Array, x: Float32Array, A: number, B: number, C: number, D: number,
): void {
  for (let i = 0; i < A; i++) {
    for (let j = 0; j < B; j++) {
      for (let k = 0; k < C; k++) {
        const src = ((i * B + j) * C + k) * D;
        const dst = ((i * C + k) * B + j) * D;
        for (let l = 0; l < D; l++) out[dst + l] = x[src + l];
      }
    }
  }
}

/** dX (a, b, c, d) from dOut (a, c, b, d). */
export function permute0213Backward(
  dX: Float32Array, dOut: Float32Array, A: number, B: number, C: number, D: number,
): void {
  permute0213Forward(dX, dOut, A, C, B, D);
}
