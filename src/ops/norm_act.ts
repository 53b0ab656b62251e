// Θ, the modified softmax of a Pattention layer, row-wise over the n scores of a token,
// with its backward. Three variants (official `norm_activation_type`); spec/ops/norm_act.md.
// Omits: anything but the last dim; NaN propagation for zero-norm rows (see NOTE).
//
// Dimension legend: R = rows (tokens), n = scores per row (parameter tokens).
// normN is the layer's normalization token count, fixed at creation; never the current n.
//   l2_norm_gelu: a = gelu(u),  u = s·√normN/‖s‖₂
//   gelu_l2_norm: a = g·√normN/‖g‖₂,  g = gelu(s)
//   softmax:      a = normN·softmax(s)   (stable: the row max is subtracted)
// NOTE: the official code divides by ‖·‖₂ unguarded, so an all-zero row gives NaN there.
// Here a zero-norm row gives a = 0 (l2_norm_gelu: u := 0, gelu(0) = 0; gelu_l2_norm: 0)
// with zero gradient. Wherever PyTorch is finite the two agree.

import type { NormActParams } from '../backend.ts';
import { gelu, geluGrad } from './gelu.ts';

function l2(row: Float64Array): number {
  let ss = 0;
  for (let j = 0; j < row.length; j++) ss += row[j] * row[j];
  return Math.sqrt(ss);
}

/** Θ of one row, in float64: out (n) from s (n). */
function rowForward(out: Float64Array, s: Float64Array, p: NormActParams): void {
  const n = s.length, sq = Math.sqrt(p.normN);
  if (p.variant === 'l2_norm_gelu') {
    const r = l2(s);
    const c = r > 0 ? sq / r : 0;
    for (let j = 0; j < n; j++) out[j] = gelu(s[j] * c);
  } else if (p.variant === 'gelu_l2_norm') {
    for (let j = 0; j < n; j++) out[j] = gelu(s[j]);
    const r = l2(out);
    const c = r > 0 ? sq / r : 0;
    for (let j = 0; j < n; j++) out[j] *= c;
  } else {
    let mx = -Infinity;
    for (let j = 0; j < n; j++) mx = Math.max(mx, s[j]);
    let z = 0;
    for (let j = 0; j < n; j++) z += out[j] = Math.exp(s[j] - mx);
    for (let j = 0; j < n; j++) out[j] *= p.normN / z;
  }
}

/**
 * dS of one row from dA, recomputing what the forward needed. dS, s, dA, g (scratch): (n).
 * For y = x·c/‖x‖ (c = √normN): dx = c/‖x‖ · (dy − x·⟨dy, x⟩/‖x‖²).
 */
function rowBackward(
  dS: Float64Array, s: Float64Array, dA: Float64Array, g: Float64Array, p: NormActParams,
): void {
  const n = s.length, sq = Math.sqrt(p.normN);
  if (p.variant === 'l2_norm_gelu') {
    const r = l2(s);
    if (r === 0) return void dS.fill(0);
    const c = sq / r;
    let dot = 0; // ⟨dU, s⟩, dU = dA·gelu'(u)
    for (let j = 0; j < n; j++) dot += (dS[j] = dA[j] * geluGrad(s[j] * c)) * s[j];
    for (let j = 0; j < n; j++) dS[j] = c * (dS[j] - (s[j] * dot) / (r * r));
  } else if (p.variant === 'gelu_l2_norm') {
    for (let j = 0; j < n; j++) g[j] = gelu(s[j]); // g: (n) scratch
    const r = l2(g);
    if (r === 0) return void dS.fill(0);
    const c = sq / r;
    let dot = 0; // ⟨dA, g⟩
    for (let j = 0; j < n; j++) dot += dA[j] * g[j];
    for (let j = 0; j < n; j++) dS[j] = c * (dA[j] - (g[j] * dot) / (r * r)) * geluGrad(s[j]);
  } else {
    rowForward(dS, s, p); // dS temporarily holds a = normN·P
    let dot = 0; // Σ P·dA
    for (let j = 0; j < n; j++) dot += (dS[j] / p.normN) * dA[j];
    for (let j = 0; j < n; j++) dS[j] = dS[j] * (dA[j] - dot);
  }
}

/** a (R, n) = Θ(s (R, n)) row by row. */
export function normActForward(a: Float32Array, s: Float32Array, rows: number, n: number, p: NormActParams): void {
  const sr = new Float64Array(n), ar = new Float64Array(n); // (n)
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < n; j++) sr[j] = s[i * n + j];
    rowForward(ar, sr, p);
    for (let j = 0; j < n; j++) a[i * n + j] = ar[j];
  }
}

/** dS (R, n) from dA (R, n) and the forward input s (R, n). */
export function normActBackward(
  dS: Float32Array, dA: Float32Array, s: Float32Array, rows: number, n: number, p: NormActParams,
): void {
  const sr = new Float64Array(n), dar = new Float64Array(n), dsr = new Float64Array(n); // (n)
  const scratch = new Float64Array(n); // (n)
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < n; j++) { sr[j] = s[i * n + j]; dar[j] = dA[i * n + j]; }
    rowBackward(dsr, sr, dar, scratch, p);
    for (let j = 0; j < n; j++) dS[i * n + j] = dsr[j];
  }
}
