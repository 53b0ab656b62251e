// Batched matmul C = op(A)·op(B) and its backward, float64 accumulation, float32 storage.
// Omits: broadcasting beyond "B is 2-D and shared by every batch", BLAS-style blocking.
//
// Dimension legend: Bt = batch (the product of A's leading dims), M, K, N as in (M,K)·(K,N).
// Loop order is chosen per transpose case so the innermost loop walks memory contiguously:
//   NN: i-k-j (a row of B streams into a row of C)      NT: i-j-k (dot of two rows)
//   TN: k-i-j (row k of A scales row k of B)             TT: gather a column of A, then dots.

export interface MatmulDims {
  /** Number of batches (1 for plain 2-D). */
  batch: number;
  M: number;
  K: number;
  N: number;
  /** A is stored (K, M) and used transposed. */
  transA: boolean;
  /** B is stored (N, K) and used transposed. */
  transB: boolean;
  /** B has its own matrix per batch (else one (K,N) matrix shared by all). */
  bBatched: boolean;
}

/** acc (M,N) += op(A)·op(B), A at aOff, B at bOff. */
function gemmAcc(
  acc: Float64Array, a: Float32Array, aOff: number, b: Float32Array, bOff: number,
  M: number, K: number, N: number, transA: boolean, transB: boolean,
): void {
  if (!transA && !transB) { // A (M,K), B (K,N)
    for (let i = 0; i < M; i++) {
      const ci = i * N;
      for (let k = 0; k < K; k++) {
        const aik = a[aOff + i * K + k];
        if (aik === 0) continue; // e.g. the masked half of a causal P
        const bk = bOff + k * N;
        for (let j = 0; j < N; j++) acc[ci + j] += aik * b[bk + j];
      }
    }
  } else if (!transA && transB) { // A (M,K), B (N,K)
    for (let i = 0; i < M; i++) {
      const ai = aOff + i * K;
      for (let j = 0; j < N; j++) {
        const bj = bOff + j * K;
        let s = 0;
        for (let k = 0; k < K; k++) s += a[ai + k] * b[bj + k];
        acc[i * N + j] += s;
      }
    }
  } else if (transA && !transB) { // A (K,M), B (K,N)
    for (let k = 0; k < K; k++) {
      const bk = bOff + k * N;
      for (let i = 0; i < M; i++) {
        const aki = a[aOff + k * M + i];
        if (aki === 0) continue;
        const ci = i * N;
        for (let j = 0; j < N; j++) acc[ci + j] += aki * b[bk + j];
      }
    }
  } else { // A (K,M), B (N,K)
    const col = new Float64Array(K); // (K) column i of A
    for (let i = 0; i < M; i++) {
      for (let k = 0; k < K; k++) col[k] = a[aOff + k * M + i];
      for (let j = 0; j < N; j++) {
        const bj = bOff + j * K;
        let s = 0;
        for (let k = 0; k < K; k++) s += col[k] * b[bj + k];
        acc[i * N + j] += s;
      }
    }
  }
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
