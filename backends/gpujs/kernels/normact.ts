// GPU.js kernels for Θ, the modified softmax of Pattention (spec/ops/norm_act.md), forward
// and backward, as per-row statistic kernels plus elementwise kernels.
// Omits: a one-kernel Θ: a GPU.js thread cannot share a row reduction with its neighbours,
// so each row statistic is its own [rows] kernel that the elementwise kernel then reads.
//
// Dimension legend: R = rows, n = scores per row. Per variant (c = √normN/‖·‖₂, 0 if ‖·‖ = 0):
//   l2_norm_gelu: stat c from s;        a = gelu(s·c);   dot = Σ dA·gelu'(s·c)·s
//                 dS = c·(dA·gelu'(s·c) − s·dot·c²/normN)
//   gelu_l2_norm: stat c from gelu(s);  a = gelu(s)·c;   dot = Σ dA·gelu(s)
//                 dS = c·(dA − gelu(s)·dot·c²/normN)·gelu'(s)
//   softmax:      stat lse of s;        a = normN·e^{s−lse};  dot = Σ e^{s−lse}·dA
//                 dS = a·(dA − dot)
// (1/‖·‖² = c²/normN, so the zero-norm rows get a = 0 and dS = 0, as in the CPU reference.)
// Sizes and parameters come checked from the op table (src/op-specs.ts).

import type { NormActParams, RowSizes, Variant } from '../../../src/backend.ts';
import type { GHandle, Runtime } from '../runtime.ts';
import { blocks, divmod, gelu, geluGrad, geluWithGrad, inv, kernelSource, sum } from './snippets.ts';

const ROW = 'const o = this.thread.x * this.constants.n;';

const STAT: Record<Variant, string> = {
  l2_norm_gelu: kernelSource(['s'], `${ROW}
  ${sum('ss', 'j', 'n', 'e * e', 'const e = s[o + j];')}
  const r = Math.sqrt(ss);
  return r > 0 ? this.constants.sqrtN / r : 0.0;`),
  gelu_l2_norm: kernelSource(['s'], `${ROW}
  ${sum('ss', 'j', 'n', 'g * g', `const e = s[o + j];
    ${gelu('g', 'e', 'a')}`)}
  const r = Math.sqrt(ss);
  return r > 0 ? this.constants.sqrtN / r : 0.0;`),
  softmax: kernelSource(['s'], `${ROW}
  let m = s[o];
  for (let j = 1; j < this.constants.n; j++) { m = Math.max(m, s[o + j]); }
  ${sum('z', 'j', 'n', 'Math.exp(s[o + j] - m)')}
  return m + Math.log(z);`),
};

const ELEM = `const x = this.thread.x;
  ${divmod('row', 'col', 'x', 'n')}`;

const APPLY: Record<Variant, string> = {
  l2_norm_gelu: kernelSource(['s', 'st'], `${ELEM}
  const u = s[x] * st[row];
  ${gelu('y', 'u', 'a')}
  return y;`),
  gelu_l2_norm: kernelSource(['s', 'st'], `${ELEM}
  const e = s[x];
  ${gelu('y', 'e', 'a')}
  return y * st[row];`),
  softmax: kernelSource(['s', 'st'], `${ELEM}
  return this.constants.normN * Math.exp(s[x] - st[row]);`),
};

const DOT: Record<Variant, string> = {
  l2_norm_gelu: kernelSource(['s', 'dA', 'st'], `${ROW}
  const c = st[this.thread.x];
  ${sum('acc', 'j', 'n', 'dA[o + j] * gd * e', `const e = s[o + j];
    const u = e * c;
    ${geluGrad('gd', 'u', 'a')}`)}
  return acc;`),
  gelu_l2_norm: kernelSource(['s', 'dA', 'st'], `${ROW}
  ${sum('acc', 'j', 'n', 'dA[o + j] * g', `const e = s[o + j];
    ${gelu('g', 'e', 'a')}`)}
  return acc;`),
  softmax: kernelSource(['s', 'dA', 'st'], `${ROW}
  const l = st[this.thread.x];
  ${sum('acc', 'j', 'n', 'Math.exp(s[o + j] - l) * dA[o + j]')}
  return acc;`),
};

const GRAD: Record<Variant, string> = {
  l2_norm_gelu: kernelSource(['s', 'dA', 'st', 'dot'], `${ELEM}
  const c = st[row];
  const e = s[x];
  const u = e * c;
  ${geluGrad('gd', 'u', 'a')}
  return c * (dA[x] * gd - e * dot[row] * c * c / this.constants.normN);`),
  gelu_l2_norm: kernelSource(['s', 'dA', 'st', 'dot'], `${ELEM}
  const c = st[row];
  const e = s[x];
  ${geluWithGrad('g', 'gd', 'e', 'a')}
  return c * (dA[x] - g * dot[row] * c * c / this.constants.normN) * gd;`),
  softmax: kernelSource(['s', 'dA', 'st', 'dot'], `${ELEM}
  const a = this.constants.normN * Math.exp(s[x] - st[row]);
  return a * (dA[x] - dot[row]);`),
};

function consts(n: number, p: NormActParams): Record<string, number> {
  return blocks(inv({ n, normN: p.normN, sqrtN: Math.sqrt(p.normN) }, 'n'), 'n');
}

/** The row statistic [R] of s [R, n]: c for the L2 variants, lse for softmax. */
export function normActStat(rt: Runtime, s: GHandle, rows: number, n: number, p: NormActParams): GHandle {
  return rt.launch(`naStat:${p.variant}:${rows}:${n}:${p.normN}`, STAT[p.variant], [rows], consts(n, p), [s]);
}

/** a = Θ(s) from s and its row statistic. */
export function normActApply(rt: Runtime, s: GHandle, st: GHandle, n: number, p: NormActParams): GHandle {
  return rt.launch(`naApply:${p.variant}:${s.size}:${n}:${p.normN}`, APPLY[p.variant], s.shape, consts(n, p), [s, st]);
}

/** dS from s, dA and the forward's row statistic st (two kernels: row dot, then elementwise). */
export function normActGrad(
  rt: Runtime, s: GHandle, dA: GHandle, st: GHandle, rows: number, n: number, p: NormActParams,
): GHandle {
  const c = consts(n, p);
  const dot = rt.launch(`naDot:${p.variant}:${rows}:${n}:${p.normN}`, DOT[p.variant], [rows], c, [s, dA, st]);
  const dS = rt.launch(`naGrad:${p.variant}:${s.size}:${n}:${p.normN}`, GRAD[p.variant], s.shape, c, [s, dA, st, dot]);
  rt.free(dot.store.data);
  return dS;
}

export function normAct(rt: Runtime, z: RowSizes, s: GHandle, p: NormActParams): GHandle {
  const { rows, n } = z;
  if (s.size === 0) return rt.make(z.out);
  const st = normActStat(rt, s, rows, n, p);
  const a = normActApply(rt, s, st, n, p);
  rt.free(st.store.data);
  return a;
}

export function normActBackward(rt: Runtime, z: RowSizes, s: GHandle, dA: GHandle, p: NormActParams): GHandle {
  const { rows, n } = z;
  if (s.size === 0) return rt.make(z.out);
  const st = normActStat(rt, s, rows, n, p);
  const dS = normActGrad(rt, s, dA, st, rows, n, p);
  rt.free(st.store.data);
  return dS;
}
