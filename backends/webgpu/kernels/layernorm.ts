// LayerNorm over the last dim (LN₀ and affine), forward and backward, as row kernels (a
// workgroup or an invocation per row, common.ts RowLayout), two-pass mean/variance in f32. dW and dB are column sums over rows,
// done deterministically in two stages (per-chunk partials, then a per-column sum).
// Omits: Welford/float64 statistics (f32 two-pass is within the GPU tolerance for C ≤ 10⁴).

import type { RowSizes } from '../../../src/backend.ts';
import type { GHandle } from '../buffers.ts';
import { LAYERNORM4_ROWS, bwd4Def, fwd4Def } from './layernorm4.ts';
import { WGSL_MAIN_1D, WGSL_WGID, kernelDef, layoutKey, rowLayout, runRows, wgslRows, type Env, type RowLayout } from './common.ts';
import type { KernelDef } from '../device.ts';

const HEAD = /* wgsl */ `
struct P { rows: u32, C: u32, eps: f32, pad: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;`;

const loop = (l: RowLayout, body: string) => `for (var c = lane; c < p.C; c = c + ${l.tpr}u) { ${body} }`;

function fwdDef(l: RowLayout, hasW: boolean, hasB: boolean): KernelDef {
  let bi = 5;
  const wDecl = hasW ? `@group(0) @binding(${bi++}) var<storage, read> w: array<f32>;` : '';
  const bDecl = hasB ? `@group(0) @binding(${bi++}) var<storage, read> bias: array<f32>;` : '';
  const out = `xh${hasW ? ' * w[c]' : ''}${hasB ? ' + bias[c]' : ''}`;
  const { decls, main } = wgslRows(l);
  return kernelDef(`ln_fwd_${layoutKey(l)}_${hasW}_${hasB}`, 'uufu', () => `${HEAD}
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> mean: array<f32>;
@group(0) @binding(4) var<storage, read_write> rstd: array<f32>;
${wDecl}
${bDecl}
${decls}
${main}
  let o = row * p.C;
  var s = 0.0;
  ${loop(l, 's = s + x[o + c];')}
  let m = wg_sum(s, li) / f32(p.C);
  var v = 0.0;
  ${loop(l, 'let d = x[o + c] - m; v = v + d * d;')}
  let rs = 1.0 / sqrt(wg_sum(v, li) / f32(p.C) + p.eps);
  if (live) { ${loop(l, `let xh = (x[o + c] - m) * rs; y[o + c] = ${out};`)} }
  if (live && lane == 0u) { mean[row] = m; rstd[row] = rs; }
}`);
}

function bwdDef(l: RowLayout, hasW: boolean): KernelDef {
  const dxh = hasW ? 'dY[o + c] * w[c]' : 'dY[o + c]';
  const { decls, main } = wgslRows(l);
  return kernelDef(`ln_bwd_${layoutKey(l)}_${hasW}`, 'uufu', () => `${HEAD}
@group(0) @binding(2) var<storage, read> dY: array<f32>;
@group(0) @binding(3) var<storage, read> mean: array<f32>;
@group(0) @binding(4) var<storage, read> rstd: array<f32>;
@group(0) @binding(5) var<storage, read_write> dX: array<f32>;
${hasW ? '@group(0) @binding(6) var<storage, read> w: array<f32>;' : ''}
${decls}
${main}
  let o = row * p.C;
  let m = mean[row];
  let rs = rstd[row];
  var sd = 0.0;
  var sdx = 0.0;
  ${loop(l, `let d = ${dxh}; sd = sd + d; sdx = sdx + d * (x[o + c] - m) * rs;`)}
  let md = wg_sum(sd, li) / f32(p.C);
  let mdx = wg_sum(sdx, li) / f32(p.C);
  if (live) { ${loop(l, `let xh = (x[o + c] - m) * rs; dX[o + c] = rs * (${dxh} - md - xh * mdx);`)} }
}`);
}

/** Stage 1 of dW/dB: partials (chunks, C) over R-row chunks. Grid (ceil(C/64), chunks). */
const COLS = kernelDef('ln_cols', 'uuuu', () => /* wgsl */ `
struct P { rows: u32, C: u32, R: u32, pad: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dY: array<f32>;
@group(0) @binding(3) var<storage, read> mean: array<f32>;
@group(0) @binding(4) var<storage, read> rstd: array<f32>;
@group(0) @binding(5) var<storage, read_write> pw: array<f32>;
@group(0) @binding(6) var<storage, read_write> pb: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let c = wid.x * 64u + li;
  if (c >= p.C) { return; }
  let r0 = wid.y * p.R;
  let r1 = min(p.rows, r0 + p.R);
  var sw = 0.0;
  var sb = 0.0;
  for (var r = r0; r < r1; r = r + 1u) {
    let g = dY[r * p.C + c];
    sw = sw + g * (x[r * p.C + c] - mean[r]) * rstd[r];
    sb = sb + g;
  }
  pw[wid.y * p.C + c] = sw;
  pb[wid.y * p.C + c] = sb;
}`);

/** Stage 2: out[c] = Σ_chunk part[chunk, c], in chunk order. */
export const COL_SUM = kernelDef('col_sum', 'uu', () => /* wgsl */ `
struct P { C: u32, chunks: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(64)
fn main(${WGSL_MAIN_1D}) {
  ${WGSL_WGID}
  let c = wgid * 64u + li;
  if (c >= p.C) { return; }
  var s = 0.0;
  for (var k = 0u; k < p.chunks; k = k + 1u) { s = s + part[k * p.C + c]; }
  out[c] = s;
}`);

/** The vec4 row-per-invocation kernels apply (layernorm4.ts). */
function vec4Rows(l: RowLayout, C: number): boolean {
  return l.tpr === 1 && l.rpw === LAYERNORM4_ROWS && C % 4 === 0;
}

/** x: z.rows rows of C = z.n; w, b: [C] or null. */
export function layerNorm(
  env: Env, z: RowSizes, x: GHandle, w: GHandle | null, b: GHandle | null, eps: number,
): { y: GHandle; mean: GHandle; rstd: GHandle } {
  const { rows, n: cols } = z;
  const { mem } = env;
  const y = mem.alloc(z.out), mean = mem.alloc([rows]), rstd = mem.alloc([rows]);
  const binds = [mem.bind(x), mem.bind(y), mem.bind(mean), mem.bind(rstd)];
  if (w) binds.push(mem.bind(w));
  if (b) binds.push(mem.bind(b));
  const l = rowLayout(env, cols);
  const def = vec4Rows(l, cols) ? fwd4Def(!!w, !!b) : fwdDef(l, !!w, !!b);
  runRows(env, def, binds, [rows, cols, eps, 0], rows, l);
  return { y, mean, rstd };
}

export function layerNormBackward(
  env: Env, z: RowSizes, dY: GHandle, x: GHandle, mean: GHandle, rstd: GHandle, w: GHandle | null,
): { dX: GHandle; dW: GHandle | null; dB: GHandle | null } {
  const { rows, n: C } = z;
  const { mem, ctx } = env;
  const dX = mem.alloc(z.out);
  const binds = [mem.bind(x), mem.bind(dY), mem.bind(mean), mem.bind(rstd), mem.bind(dX)];
  if (w) binds.push(mem.bind(w));
  const l = rowLayout(env, C);
  runRows(env, vec4Rows(l, C) ? bwd4Def(!!w) : bwdDef(l, !!w), binds, [rows, C, 0, 0], rows, l);
  if (!w) return { dX, dW: null, dB: null };
  const R = Math.max(32, Math.ceil(rows / 1024));
  const chunks = Math.max(1, Math.ceil(rows / R));
  const pw = mem.alloc([chunks, C]), pb = mem.alloc([chunks, C]);
  ctx.run(COLS, [mem.bind(x), mem.bind(dY), mem.bind(mean), mem.bind(rstd), mem.bind(pw), mem.bind(pb)],
    [rows, C, R, 0], [Math.ceil(C / 64), chunks]);
  const dW = mem.alloc([C]), dB = mem.alloc([C]);
  const g = ctx.grid1D(Math.ceil(C / 64));
  ctx.run(COL_SUM, [mem.bind(pw), mem.bind(dW)], [C, chunks], g);
  ctx.run(COL_SUM, [mem.bind(pb), mem.bind(dB)], [C, chunks], g);
  mem.dispose(pw);
  mem.dispose(pb);
  return { dX, dW, dB };
}
