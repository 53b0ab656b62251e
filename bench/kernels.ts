// The kernel-level bench workload shared by bench/webgpu.ts and bench/tfjs.ts: matmul shapes,
// the Pattention shape (the FFN layer of the bench model config), FLOP counts and timing.
// Omits: elementwise FLOPs (norms, GELU): the products dominate and every backend does both.

import { BENCH_BATCH, BENCH_CONFIG, BENCH_SEQ } from './model.ts';

/** [M, K, N]: C (M, N) = A (M, K) · B (K, N). */
export const MATMUL_SHAPES: readonly (readonly [number, number, number])[] = [
  [256, 256, 256],
  [512, 768, 768],
  [2048, 64, 2048],
];

/** Pattention (N tokens, d_in → d_out over n parameter tokens): the bench model's FFN layer. */
export const PATT = {
  N: BENCH_BATCH * BENCH_SEQ,
  dIn: BENCH_CONFIG.hiddenSize,
  n: BENCH_CONFIG.ffnSlots,
  dOut: BENCH_CONFIG.hiddenSize,
} as const;

export function matmulFlops([M, K, N]: readonly [number, number, number]): number {
  return 2 * M * K * N;
}

/** Forward (S = X·Kᵀ, out = A·V) plus backward (dA, dV, dX, dK): three forwards. */
export function pattentionFlops(p: typeof PATT = PATT): number {
  return 3 * 2 * p.N * p.n * (p.dIn + p.dOut);
}

export const label = {
  matmul: ([M, K, N]: readonly [number, number, number]) => `matmul ${M}x${K}x${N}`,
  pattention: (p: typeof PATT = PATT) => `pattention fwd+bwd N${p.N} ${p.dIn}->${p.n}->${p.dOut}`,
};

/**
 * Best seconds per call of f over timed calls after one warm-up, repeating until `budget`
 * seconds are spent (at least `minReps`). The minimum, not the mean: the machine is shared
 * and noise only ever adds time.
 */
export async function bestTime(f: () => Promise<void>, budget = 1.5, minReps = 2): Promise<number> {
  await f();
  let best = Infinity;
  const start = performance.now();
  for (let i = 0; i < minReps || performance.now() - start < budget * 1000; i++) {
    const t0 = performance.now();
    await f();
    best = Math.min(best, (performance.now() - t0) / 1000);
    if (i >= 50) break;
  }
  return best;
}

/** Seeded uniform(−0.5, 0.5) data (a tiny LCG: no dependency on src/rng for bench inputs). */
export function benchData(n: number, seed = 1): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2 ** 32 - 0.5;
  }
  return a;
}
