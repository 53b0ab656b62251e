// LayerNorm forward and backward (kernels/layernorm.ts) for the 'cpu' row layout — one
// invocation per row, 64 rows per workgroup — over rows of C % 4 = 0 read and written as vec4
// (llvmpipe loads lane by lane; a vec4 costs about half as much per value as four scalars).
// Same two-pass f32 statistics and formulas as the scalar kernels.
// Omits: dW/dB (the column sums stay in layernorm.ts, shared by every layout).

import type { KernelDef } from '../device.ts';
import { WGSL_MAIN_1D, WGSL_WGID, kernelDef } from './common.ts';

const ROWS = 64;
/** Rows per workgroup of these kernels. */
export const LAYERNORM4_ROWS = ROWS;

const loop = (body: string) => `for (var c = 0u; c < c4; c = c + 1u) { ${body} }`;

function head(binds: string): string {
  return /* wgsl */ `
struct P { rows: u32, C: u32, eps: f32, pad: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
${binds}
@compute @workgroup_size(${ROWS})
fn main(${WGSL_MAIN_1D}) {
  ${WGSL_WGID}
  let row0 = wgid * ${ROWS}u + li;
  let live = row0 < p.rows;
  let row = min(row0, p.rows - 1u);
  let c4 = p.C / 4u;
  let o = row * c4;`;
}

export function fwd4Def(hasW: boolean, hasB: boolean): KernelDef {
  let bi = 5;
  const wDecl = hasW ? `@group(0) @binding(${bi++}) var<storage, read> w: array<vec4<f32>>;` : '';
  const bDecl = hasB ? `@group(0) @binding(${bi++}) var<storage, read> bias: array<vec4<f32>>;` : '';
  const out = `xh${hasW ? ' * w[c]' : ''}${hasB ? ' + bias[c]' : ''}`;
  return kernelDef(`ln4_fwd_${hasW}_${hasB}`, 'uufu', () => `${head(`@group(0) @binding(2) var<storage, read_write> y: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> mean: array<f32>;
@group(0) @binding(4) var<storage, read_write> rstd: array<f32>;
${wDecl}
${bDecl}`)}
  var s = 0.0;
  ${loop('s = s + dot(x[o + c], vec4<f32>(1.0));')}
  let m = s / f32(p.C);
  var v = 0.0;
  ${loop('let d = x[o + c] - m; v = v + dot(d, d);')}
  let rs = 1.0 / sqrt(v / f32(p.C) + p.eps);
  if (live) {
    ${loop(`let xh = (x[o + c] - m) * rs; y[o + c] = ${out};`)}
    mean[row] = m;
    rstd[row] = rs;
  }
}`);
}

export function bwd4Def(hasW: boolean): KernelDef {
  const dxh = hasW ? 'dY[o + c] * w[c]' : 'dY[o + c]';
  return kernelDef(`ln4_bwd_${hasW}`, 'uufu', () => `${head(`@group(0) @binding(2) var<storage, read> dY: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> mean: array<f32>;
@group(0) @binding(4) var<storage, read> rstd: array<f32>;
@group(0) @binding(5) var<storage, read_write> dX: array<vec4<f32>>;
${hasW ? '@group(0) @binding(6) var<storage, read> w: array<vec4<f32>>;' : ''}`)}
  let m = mean[row];
  let rs = rstd[row];
  var sd = 0.0;
  var sdx = 0.0;
  ${loop(`let d = ${dxh}; sd = sd + dot(d, vec4<f32>(1.0)); sdx = sdx + dot(d, (x[o + c] - m) * rs);`)}
  let md = sd / f32(p.C);
  let mdx = sdx / f32(p.C);
  if (live) { ${loop(`let xh = (x[o + c] - m) * rs; dX[o + c] = rs * (${dxh} - md - xh * mdx);`)} }
}`);
}
