// GELU, exact erf form as PyTorch's F.gelu (approximate='none'), with its derivative.
// Omits: the tanh approximation (TokenFormer uses the exact form).
//
// gelu(x)  = x·Φ(x),            Φ(x) = ½·erfc(−x/√2)  (the standard normal CDF)
// gelu'(x) = Φ(x) + x·φ(x),     φ(x) = e^{−x²/2}/√(2π)
// NOTE: Φ goes through erfc, so gelu(x) for very negative x keeps its relative accuracy
// (gelu(−6) ≈ −5.9e−9) instead of collapsing to 0 through 1 + erf(x/√2).

import { erfc } from './erf.ts';

const INV_SQRT2 = 1 / Math.SQRT2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/** Φ(x), the standard normal CDF. */
export function normalCdf(x: number): number {
  return 0.5 * erfc(-x * INV_SQRT2);
}

/** gelu(x) = x·Φ(x), in double precision. */
export function gelu(x: number): number {
  return x * normalCdf(x);
}

/** gelu'(x) = Φ(x) + x·φ(x). */
export function geluGrad(x: number): number {
  return normalCdf(x) + x * INV_SQRT_2PI * Math.exp(-0.5 * x * x);
}

/** Elementwise y = gelu(x). x, y: (len) */
export function geluForward(y: Float32Array, x: Float32Array): void {
  for (let i = 0; i < x.length; i++) y[i] = gelu(x[i]);
}

/** Elementwise dX = dY · gelu'(x). dX, dY, x: (len) */
export function geluBackward(dX: Float32Array, dY: Float32Array, x: Float32Array): void {
  for (let i = 0; i < x.length; i++) dX[i] = dY[i] * geluGrad(x[i]);
}
