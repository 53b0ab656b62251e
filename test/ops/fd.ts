// Finite-difference VJP harness for the op tests, plus seeded random buffers.
// Omits: full Jacobians (one random direction per check is enough to catch a wrong term).
//
// The check: for inputs x (several buffers), a random direction u and an upstream gradient
// dOut, compare
//   lhs = ⟨dOut, J·u⟩  from central differences of the forward, and
//   rhs = Σ_inputs ⟨backward(dOut), u⟩.
// NOTE: the ops store float32, so a plain central difference with a tiny step drowns in
// rounding noise (~2⁻²⁴·|f| / h). We use a moderate step h and Richardson extrapolation,
//   D(h) = (f(x+hu) − f(x−hu)) / 2h,   lhs = (4·D(h/2) − D(h)) / 3,
// which cancels the h² truncation term, leaving O(h⁴) truncation plus noise ~ 2⁻²⁴·|f|/h.
// The perturbed inputs x ± hu are themselves rounded to float32; that shifts the direction
// by ≤ 2⁻²⁴·|x|/h relative. The tolerance is therefore
//   rtol·Σ|gᵢ·uᵢ|  +  NOISE·2⁻²⁴/h·(Σ|dOut|·|f| + Σ|g|·|x|),
// an honest bound for float32 storage (NOISE covers the Richardson weights, ≈ 3, and a few
// float32 intermediates inside an op), not a fudge that would hide a wrong term.

import { Rng } from '../../src/rng.ts';

const F32_EPS = 2 ** -24;
const NOISE = 8;

export function randn(rng: Rng, n: number, std = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = std * rng.normal();
  return out;
}

export function randInts(rng: Rng, n: number, max: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.int(max);
  return out;
}

export interface VjpCase {
  /** The differentiable inputs. */
  inputs: Float32Array[];
  /** The forward on (possibly perturbed) inputs; returns the flat output. */
  forward: (xs: Float32Array[]) => Float32Array;
  /** The gradients w.r.t. each input, given dOut (same length as the output). */
  backward: (dOut: Float32Array, xs: Float32Array[]) => Float32Array[];
}

export interface VjpResult {
  lhs: number;
  rhs: number;
  /** Σ |gᵢ·uᵢ|: the size of rhs before cancellation, the scale the error is judged on. */
  mag: number;
  err: number;
  tol: number;
  /** The step the reported numbers come from. */
  h: number;
  /** Whether D(h) and D(h/2) agree within tol (else a smaller step is tried). */
  converged: boolean;
  ok: boolean;
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

function shifted(xs: Float32Array[], us: Float32Array[], t: number): Float32Array[] {
  return xs.map((x, k) => x.map((xi, i) => xi + t * us[k][i]));
}

/** ⟨dOut, f(x + t·u) − f(x − t·u)⟩ / 2t. */
function centralDiff(c: VjpCase, us: Float32Array[], dOut: Float32Array, t: number): number {
  const fp = c.forward(shifted(c.inputs, us, t));
  const fm = c.forward(shifted(c.inputs, us, -t));
  let s = 0;
  for (let i = 0; i < fp.length; i++) s += dOut[i] * (fp[i] - fm[i]);
  return s / (2 * t);
}

/** One check at step h, for a fixed direction and dOut. */
function checkAt(
  c: VjpCase, out: Float32Array, dOut: Float32Array, us: Float32Array[], grads: Float32Array[],
  h: number, rtol: number,
): VjpResult {
  let rhs = 0, mag = 0;
  grads.forEach((g, k) => {
    rhs += dot(g, us[k]);
    for (let i = 0; i < g.length; i++) mag += Math.abs(g[i] * us[k][i]);
  });
  let noise = dot(out.map(Math.abs), dOut.map(Math.abs));
  grads.forEach((g, k) => { noise += dot(g.map(Math.abs), c.inputs[k].map(Math.abs)); });
  const dH = centralDiff(c, us, dOut, h), dHalf = centralDiff(c, us, dOut, h / 2);
  const lhs = (4 * dHalf - dH) / 3;
  const err = Math.abs(lhs - rhs);
  const tol = rtol * mag + (NOISE * F32_EPS * noise) / h;
  // D(h) − D(h/2) ≈ ¾ of D(h)'s truncation error: small means the difference has converged.
  const converged = Math.abs(dH - dHalf) <= tol;
  return { lhs, rhs, mag, err, tol, h, converged, ok: err <= tol };
}

/**
 * Runs one VJP check along a random direction. rtol judges |lhs − rhs| against `mag`.
 * NOTE: near a point where an op is steep or not smooth (a Pattention row with a tiny
 * norm, LayerNorm with near-equal inputs) a step of 1e-2 is too coarse. Only then, when
 * D(h) and D(h/2) visibly disagree (the difference itself has not converged), the check
 * retries with a 10× smaller step. A converged difference is final: a wrong backward at a
 * well-conditioned point cannot hide behind the looser noise bound of a smaller step.
 */
export function checkVjp(c: VjpCase, rng: Rng, opts: { rtol?: number } = {}): VjpResult {
  const rtol = opts.rtol ?? 2e-4;
  const out = c.forward(c.inputs);
  const dOut = randn(rng, out.length);
  const us = c.inputs.map((x) => randn(rng, x.length));
  const grads = c.backward(dOut, c.inputs);
  let r: VjpResult | null = null;
  for (const h of [1e-2, 1e-3, 1e-4]) {
    r = checkAt(c, out, dOut, us, grads, h, rtol);
    if (r.ok || r.converged) return r;
  }
  return r!;
}
