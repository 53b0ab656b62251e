// Batched matmul C = op(A)·op(B) and its backward, float64 accumulation, float32 storage.
// Omits: broadcasting beyond "B is 2-D and shared by every batch", BLAS-style blocking.
//
// Dimension legend: Bt = batch (the product of A's leading dims), M, K, N as in (M,K)·(K,N).
// Loop order is chosen per transpose case so the innermost loop walks memory contiguously:
//   NN: i-k-j (a row of B streams into a row of C)      NT: i-j-k (dot of two rows)
//   TN: k-i-j (row k of A scales row k of B)             TT: gather a column of A, then dots.


// NOTE: the k loops are unrolled by 4 (four rows of B per pass in NN/TN, four partial
// sums in NT/TT). In JS this is ~2-3× faster than the plain loop, because each pass loads
// and stores the float64 accumulator row once instead of four times. All partial sums are
// float64, so the changed summation order is invisible after the float32 store.

import type { MatmulDims } from '../backend.ts';
export type { MatmulDims };

/** acc (M,N) += A (M,K) · B (K,N), i-k-j order. */
function gemmNN(acc: Float64Array, a: Float32Array, aOff: number, b: Float32Array, bOff: number, M: number, K: number, N: number): void {
  for (let i = 0; i < M; i++) {
    const ci = i * N, ai = aOff + i * K;
    let k = 0;
    for (; k + 4 <= K; k += 4) {
      const a0 = a[ai + k], a1 = a[ai + k + 1], a2 = a[ai + k + 2], a3 = a[ai + k + 3];
      if (a0 === 0 && a1 === 0 && a2 === 0 && a3 === 0) continue; // e.g. the masked half of a causal P
      const b0 = bOff + k * N, b1 = b0 + N, b2 = b1 + N, b3 = b2 + N;
      for (let j = 0; j < N; j++) acc[ci + j] += a0 * b[b0 + j] + a1 * b[b1 + j] + a2 * b[b2 + j] + a3 * b[b3 + j];
    }
    for (; k < K; k++) {
      const aik = a[ai + k], bk = bOff + k * N;
      for (let j = 0; j < N; j++) acc[ci + j] += aik * b[bk + j];
    }
  }
}

/** acc (M,N) += Aᵀ·B with A stored (K,M), B (K,N), k-i-j order. */
function gemmTN(acc: Float64Array, a: Float32Array, aOff: number, b: Float32Array, bOff: number, M: number, K: number, N: number): void {
  let k = 0;
  for (; k + 4 <= K; k += 4) {
    const b0 = bOff + k * N, b1 = b0 + N, b2 = b1 + N, b3 = b2 + N;
    const r0 = aOff + k * M, r1 = r0 + M, r2 = r1 + M, r3 = r2 + M;
    for (let i = 0; i < M; i++) {
      const a0 = a[r0 + i], a1 = a[r1 + i], a2 = a[r2 + i], a3 = a[r3 + i];
      if (a0 === 0 && a1 === 0 && a2 === 0 && a3 === 0) continue;
      const ci = i * N;
      for (let j = 0; j < N; j++) acc[ci + j] += a0 * b[b0 + j] + a1 * b[b1 + j] + a2 * b[b2 + j] + a3 * b[b3 + j];
    }
  }
  for (; k < K; k++) {
    const bk = bOff + k * N;
    for (let i = 0; i < M; i++) {
      const aki = a[aOff + k * M + i], ci = i * N;
      for (let j = 0; j < N; j++) acc[ci + j] += aki * b[bk + j];
    }
  }
}

/** Σₖ x[xo+k]·y[yo+k] over K contiguous elements, four partial sums. */
function dot(x: Float32Array, xo: number, y: Float32Array, yo: number, K: number): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0, k = 0;
  for (; k + 4 <= K; k += 4) {
    s0 += x[xo + k] * y[yo + k];
    s1 += x[xo + k + 1] * y[yo + k + 1];
    s2 += x[xo + k + 2] * y[yo + k + 2];
    s3 += x[xo + k + 3] * y[yo + k + 3];
  }
  for (; k < K; k++) s0 += x[xo + k] * y[yo + k];
  return s0 + s1 + (s2 + s3);
}

/** acc (M,N) += op(A)·Bᵀ with B stored (N,K): dot products of contiguous rows. */
function gemmXT(acc: Float64Array, a: Float32Array, aOff: number, b: Float32Array, bOff: number, M: number, K: number, N: number, transA: boolean): void {
  // With A stored (K,M), column i is first gathered into a contiguous (K) buffer (float32
  // holds A's values exactly), so both cases are dots of contiguous rows.
  const col = new Float32Array(transA ? K : 0); // (K)
  for (let i = 0; i < M; i++) {
    let x = a, xo = aOff + i * K;
    if (transA) {
      for (let k = 0; k < K; k++) col[k] = a[aOff + k * M + i];
      x = col;
      xo = 0;
    }
    for (let j = 0; j < N; j++) acc[i * N + j] += dot(x, xo, b, bOff + j * K, K);
  }
}

/** acc (M,N) += op(A)·op(B), A at aOff, B at bOff. */
function gemmAcc(
  acc: Float64Array, a: Float32Array, aOff: number, b: Float32Array, bOff: number,
  M: number, K: number, N: number, transA: boolean, transB: boolean,
): void {
  if (transB) gemmXT(acc, a, aOff, b, bOff, M, K, N, transA);
  else if (transA) gemmTN(acc, a, aOff, b, bOff, M, K, N);
  else gemmNN(acc, a, aOff, b, bOff, M, K, N);
}

/**
 * out[b] = op(A[b])·op(B[b]) for each batch b, or out = Σ_b op(A[b])·op(B[b]) when
 * `sumBatches` (out is then one (M,N) matrix). Strides are in elements; 0 = shared.
 */
function batchedGemm(
  out: Float32Array, a: Float32Array, aStride: number, b: Float32Array, bStride: number,
  batch: number, M: number, K: number, N: number, transA: boolean, transB: boolean,
  sumBatches: boolean,
): void {
  const acc = new Float64Array(M * N); // (M, N)
  for (let bt = 0; bt < batch; bt++) {
    if (!sumBatches) acc.fill(0);
    gemmAcc(acc, a, bt * aStride, b, bt * bStride, M, K, N, transA, transB);
    if (!sumBatches) for (let i = 0; i < M * N; i++) out[bt * M * N + i] = acc[i];
  }
  if (sumBatches) for (let i = 0; i < M * N; i++) out[i] = acc[i];
}

/** c (Bt, M, N) = op(a)·op(b). a: (Bt, M, K) or (Bt, K, M); b: ([Bt,] K, N) or ([Bt,] N, K). */
export function matmulForward(c: Float32Array, a: Float32Array, b: Float32Array, d: MatmulDims): void {
  const { batch, M, K, N, transA, transB, bBatched } = d;
  batchedGemm(c, a, M * K, b, bBatched ? K * N : 0, batch, M, K, N, transA, transB, false);
}

/**
 * dA (same layout as a) and dB (same layout as b) from dC (Bt, M, N). Either output may be
 * null to skip it. A shared (2-D) b gets the gradient summed over batches.
 *   op(A)' = dC·op(B)ᵀ,  op(B)' = op(A)ᵀ·dC.
 */
export function matmulBackward(
  dA: Float32Array | null, dB: Float32Array | null,
  dC: Float32Array, a: Float32Array, b: Float32Array, d: MatmulDims,
): void {
  const { batch, M, K, N, transA, transB, bBatched } = d;
  const aS = M * K, bS = bBatched ? K * N : 0, cS = M * N;
  if (dA) {
    if (!transA) {
      // dA (M,K) = dC (M,N) · op(B)ᵀ (N,K)
      batchedGemm(dA, dC, cS, b, bS, batch, M, N, K, false, !transB, false);
    } else {
      // dA (K,M) = op(B) (K,N) · dCᵀ (N,M)
      batchedGemm(dA, b, bS, dC, cS, batch, K, N, M, transB, true, false);
    }
  }
  if (dB) {
    if (!transB) {
      // dB (K,N) = op(A)ᵀ (K,M) · dC (M,N)
      batchedGemm(dB, a, aS, dC, cS, batch, K, M, N, !transA, false, !bBatched);
    } else {
      // dB (N,K) = dCᵀ (N,M) · op(A) (M,K)
      batchedGemm(dB, dC, cS, a, aS, batch, N, M, K, true, transA, !bBatched);
    }
  }
}
