// The comparison rules of the conformance format (spec/conformance.md, "Comparison"): one
// tensor of a candidate against the reference, giving the worst error as a fraction of the
// tolerance, the element where it is, and the NMSE. Everything in float64.
// Omits: reading files and deciding a case's verdict (check.ts).

import type { Rule, Tolerance } from './format.ts';

export interface TensorResult {
  /** Largest |got − ref| / bound over the elements (0 when equal; Infinity for NaN/±Inf or a zero bound). */
  ratio: number;
  /** Flat index of that element, or -1 for an empty tensor. */
  worst: number;
  got: number;
  want: number;
  bound: number;
  /** Σ(got − ref)² / Σ ref² (0/0 = 0, x/0 = Infinity): a figure for the report, never a verdict. */
  nmse: number;
}

/** The per-element bound of a rule. values: atol + rtol·|ref|; grads: rel·|ref| + maxRel·max|ref|,
 *  with the values atol in place of the max-relative term when the whole reference is 0. */
export function boundFn(rule: Rule, tol: Tolerance, want: ArrayLike<number>): (ref: number) => number {
  if (rule === 'values') {
    const { atol, rtol } = tol.values;
    return (ref) => atol + rtol * Math.abs(ref);
  }
  let maxRef = 0;
  for (let i = 0; i < want.length; i++) maxRef = Math.max(maxRef, Math.abs(want[i]));
  const { rel, maxRel } = tol.grads;
  const floor = maxRef > 0 ? maxRel * maxRef : tol.values.atol;
  return (ref) => rel * Math.abs(ref) + floor;
}

export function compareTensor(got: ArrayLike<number>, want: ArrayLike<number>, rule: Rule, tol: Tolerance): TensorResult {
  const bound = boundFn(rule, tol, want);
  const r: TensorResult = { ratio: 0, worst: want.length > 0 ? 0 : -1, got: NaN, want: NaN, bound: NaN, nmse: 0 };
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; i++) {
    const g = got[i];
    const w = want[i];
    const b = bound(w);
    const d = Math.abs(g - w);
    let ratio: number;
    if (!Number.isFinite(g)) ratio = g === w ? 0 : Infinity;
    else ratio = d === 0 ? 0 : b > 0 ? d / b : Infinity;
    num += (g - w) * (g - w);
    den += w * w;
    if (i === 0 || ratio > r.ratio) {
      r.ratio = ratio;
      r.worst = i;
    }
  }
  if (r.worst >= 0) {
    r.got = got[r.worst];
    r.want = want[r.worst];
    r.bound = bound(r.want);
  }
  r.nmse = Number.isNaN(num) ? Infinity : den > 0 ? num / den : num === 0 ? 0 : Infinity;
  return r;
}

/** Row-major flat index → multi-index for a shape. */
export function unravel(i: number, shape: readonly number[]): number[] {
  const out = new Array<number>(shape.length);
  let rest = i;
  for (let d = shape.length - 1; d >= 0; d--) {
    out[d] = shape[d] > 0 ? rest % shape[d] : 0;
    rest = shape[d] > 0 ? Math.floor(rest / shape[d]) : 0;
  }
  return out;
}
