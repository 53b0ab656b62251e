// AdamW (decoupled weight decay, as torch.optim.AdamW) with global-norm clipping, in place,
// and the sum of squares that the global gradient norm is computed from.
// Omits: amsgrad, maximize, per-parameter-group settings (the caller passes weightDecay 0
// for parameters without decay), foreach/fused kernels.
//
// Order, per element (spec/ops/adamw.md):
//   coef  = maxGradNorm > 0 ? min(1, maxGradNorm / (√gradNormSq + 1e-6)) : 1
//   g     = gradScale·grad·coef          (gradNormSq is Σ (gradScale·grad)² over all params)
//   param ← param·(1 − lr·wd)
//   m ← β1·m + (1−β1)·g,   v ← β2·v + (1−β2)·g²
//   param ← param − lr·(m/(1−β1^step)) / (√(v/(1−β2^step)) + eps)

import type { AdamWParams } from '../backend.ts';

/** Σ x² over every element of every buffer, in float64. */
export function sumSquares(xs: readonly Float32Array[]): number {
  let s = 0;
  for (const x of xs) for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return s;
}

/** The clip coefficient from Σ (gradScale·grad)²; 1 when clipping is off. */
export function clipCoef(p: AdamWParams, gradNormSq: number | null): number {
  // NOTE: OP_SPECS.adamw (src/op-specs.ts) refuses a null gradNormSq while clipping.
  if (!(p.maxGradNorm > 0) || gradNormSq === null) return 1;
  return Math.min(1, p.maxGradNorm / (Math.sqrt(gradNormSq) + 1e-6));
}

/** One in-place step on param, m, v (all (len)) from grad (len). */
export function adamwStep(
  param: Float32Array, m: Float32Array, v: Float32Array, grad: Float32Array,
  p: AdamWParams, gradNormSq: number | null,
): void {
  const scale = p.gradScale * clipCoef(p, gradNormSq);
  const decay = 1 - p.lr * p.weightDecay;
  const bc1 = 1 - Math.pow(p.beta1, p.step);
  const bc2 = 1 - Math.pow(p.beta2, p.step);
  for (let i = 0; i < param.length; i++) {
    const g = scale * grad[i];
    const mi = p.beta1 * m[i] + (1 - p.beta1) * g;
    const vi = p.beta2 * v[i] + (1 - p.beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    param[i] = param[i] * decay - (p.lr * (mi / bc1)) / (Math.sqrt(vi / bc2) + p.eps);
  }
}
