// GPU.js kernels for LayerNorm over the last dim (LN₀ and affine), forward and backward.
// Omits: Welford/one-pass statistics: the variance is two-pass, like the CPU reference.
//
// Dimension legend: R = rows, C = channels.
//   mean [R], rstd [R] = 1/√(Σ(x − mean)²/C + eps),  y = x̂ [· w] [+ b],  x̂ = (x − mean)·rstd
// Backward: dx̂ = dY [· w];  dX = rstd·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂));
//           dW = Σ_rows dY·x̂,  dB = Σ_rows dY   (column kernels, one thread per channel).
// Sizes come checked from the op table (src/op-specs.ts).

import type { RowSizes } from '../../../src/backend.ts';
import type { Arg, GHandle, Runtime } from '../runtime.ts';
import { blocks, divmod, inv, kernelSource, sum } from './snippets.ts';

const ROW = 'const o = this.thread.x * this.constants.C;';

const MEAN = kernelSource(['x'], `${ROW}
  ${sum('acc', 'c', 'C', 'x[o + c]')}
  return acc / this.constants.C;`);

const RSTD = kernelSource(['x', 'mean'], `${ROW}
  const m = mean[this.thread.x];
  ${sum('acc', 'c', 'C', 'd * d', 'const d = x[o + c] - m;')}
  return 1.0 / Math.sqrt(acc / this.constants.C + this.constants.eps);`);

const ELEM = `const i = this.thread.x;
  ${divmod('r', 'c', 'i', 'C')}
  const xh = (x[i] - mean[r]) * rstd[r];`;

function ySource(hasW: boolean, hasB: boolean): string {
  const args = ['x', 'mean', 'rstd', ...(hasW ? ['w'] : []), ...(hasB ? ['b'] : [])];
  return kernelSource(args, `${ELEM}
  return xh${hasW ? ' * w[c]' : ''}${hasB ? ' + b[c]' : ''};`);
}

/** Σ_c dx̂ / C (which = 0) or Σ_c dx̂·x̂ / C (which = 1), per row. */
function rowSumSource(hasW: boolean, which: 0 | 1): string {
  return kernelSource(['dY', 'x', 'mean', 'rstd', ...(hasW ? ['w'] : [])], `${ROW}
  const m = mean[this.thread.x];
  const rs = rstd[this.thread.x];
  ${sum('acc', 'c', 'C', which === 0 ? 'dxh' : 'dxh * (x[o + c] - m) * rs', `const dxh = dY[o + c]${hasW ? ' * w[c]' : ''};`)}
  return acc / this.constants.C;`);
}

function dXSource(hasW: boolean): string {
  return kernelSource(['dY', 'x', 'mean', 'rstd', 'sD', 'sDX', ...(hasW ? ['w'] : [])], `${ELEM}
  const dxh = dY[i]${hasW ? ' * w[c]' : ''};
  return rstd[r] * (dxh - sD[r] - xh * sDX[r]);`);
}

/** dW (which = 0: Σ dY·x̂) or dB (which = 1: Σ dY) per channel. */
function colSumSource(which: 0 | 1): string {
  return kernelSource(['dY', 'x', 'mean', 'rstd'], `const c = this.thread.x;
  ${sum('acc', 'r', 'R', which === 0 ? 'dY[i] * (x[i] - mean[r]) * rstd[r]' : 'dY[i]', 'const i = r * this.constants.C + c;')}
  return acc;`);
}

export function layerNorm(rt: Runtime, z: RowSizes, x: GHandle, w: GHandle | null, b: GHandle | null, eps: number) {
  const { rows, n: C } = z;
  if (x.size === 0) return { y: rt.make(z.out), mean: rt.make([rows]), rstd: rt.make([rows]) };
  const k = blocks(inv({ C, eps }, 'C'), 'C');
  const tag = `${rows}:${C}`;
  const mean = rt.launch(`lnMean:${tag}`, MEAN, [rows], k, [x]);
  const rstd = rt.launch(`lnRstd:${tag}:${eps}`, RSTD, [rows], k, [x, mean]);
  const args: Arg[] = [x, mean, rstd, ...(w ? [w] : []), ...(b ? [b] : [])];
  const y = rt.launch(`lnY:${tag}:${!!w}:${!!b}`, ySource(!!w, !!b), z.out, k, args);
  return { y, mean, rstd };
}

export function layerNormBackward(
  rt: Runtime, z: RowSizes, dY: GHandle, x: GHandle, mean: GHandle, rstd: GHandle, w: GHandle | null,
) {
  const { rows, n: C } = z;
  if (x.size === 0) {
    return { dX: rt.make(z.out), dW: w && rt.make([C]), dB: w && rt.make([C]) };
  }
  const k = blocks(inv({ C, R: rows }, 'C'), 'C', 'R');
  const tag = `${rows}:${C}:${!!w}`;
  const base: Arg[] = [dY, x, mean, rstd];
  const wArg: Arg[] = w ? [w] : [];
  const sD = rt.launch(`lnSumD:${tag}`, rowSumSource(!!w, 0), [rows], k, [...base, ...wArg]);
  const sDX = rt.launch(`lnSumDX:${tag}`, rowSumSource(!!w, 1), [rows], k, [...base, ...wArg]);
  const dX = rt.launch(`lnDX:${tag}`, dXSource(!!w), z.out, k, [...base, sD, sDX, ...wArg]);
  rt.free(sD.store.data);
  rt.free(sDX.store.data);
  const dW = w ? rt.launch(`lnDW:${rows}:${C}`, colSumSource(0), [C], k, base) : null;
  const dB = w ? rt.launch(`lnDB:${rows}:${C}`, colSumSource(1), [C], k, base) : null;
  return { dX, dW, dB };
}
