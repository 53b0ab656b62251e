// Θ, the Pattention row norm + activation (spec/ops/norm_act.md), as row kernels (a
// workgroup or an invocation per row of scores, common.ts RowLayout). Forward, backward, and the per-row stats that let the fused
// Pattention apply Θ inside the A·V matmul's load (kernels/matmul_tiled.ts prologue).
// Omits: rescaling before squaring (a row with |s| > ~1e19 overflows f32 in ‖s‖²).
// NOTE: a zero-norm row gives a = 0 and dS = 0, as the CPU reference (the official code
// gives NaN there).

import type { NormActParams, RowSizes, Variant } from '../../../src/backend.ts';
import type { GHandle } from '../buffers.ts';
import type { KernelDef } from '../device.ts';
import { NORMACT4_ROWS, bwd4Def, fwd4Def } from './normact4.ts';
import { WGSL_GELU, kernelDef, layoutKey, rowLayout, runRows, wgslRows, type Env, type RowLayout } from './common.ts';

/** A row loop over this invocation's share of the n scores. */
const loop = (l: RowLayout, body: string) => `for (var j = lane; j < p.n; j = j + ${l.tpr}u) { ${body} }`;

/** Row stats as vec2: l2 variants (c = √normN/‖·‖ or 0, 0); softmax (max, normN/Σexp). */
function statsFn(v: Variant, l: RowLayout): string {
  if (v === 'softmax') {
    return /* wgsl */ `
fn row_stats(base: u32, lane: u32, li: u32) -> vec2<f32> {
  var mx = -0x1.fffffep+127f;
  ${loop(l, 'mx = max(mx, s[base + j]);')}
  mx = wg_max(mx, li);
  var z = 0.0;
  ${loop(l, 'z = z + exp(s[base + j] - mx);')}
  z = wg_sum(z, li);
  return vec2<f32>(mx, p.normN / z);
}`;
  }
  const val = v === 'gelu_l2_norm' ? 'gelu(s[base + j])' : 's[base + j]';
  return /* wgsl */ `
fn row_stats(base: u32, lane: u32, li: u32) -> vec2<f32> {
  var ss = 0.0;
  ${loop(l, `let g = ${val}; ss = ss + g * g;`)}
  let r = sqrt(wg_sum(ss, li));
  return vec2<f32>(select(0.0, p.sq / r, r > 0.0), 0.0);
}`;
}

/** Θ of one score v from its row's stats st. */
function applyExpr(v: Variant): string {
  if (v === 'l2_norm_gelu') return 'gelu(s[base + j] * st.x)';
  if (v === 'gelu_l2_norm') return 'gelu(s[base + j]) * st.x';
  return 'exp(s[base + j] - st.x) * st.y';
}

/** A whole row kernel: bindings after s, module code, and the body after the row prologue. */
function kernel(l: RowLayout, outs: string, fns: string, body: string): string {
  const { decls, main } = wgslRows(l);
  return /* wgsl */ `
struct P { rows: u32, n: u32, sq: f32, normN: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> s: array<f32>;
${outs}
${WGSL_GELU}
${decls}
${fns}
${main}
  let base = row * p.n;
  ${body}
}`;
}

function fwdDef(v: Variant, l: RowLayout): KernelDef {
  return kernelDef(`normact_fwd_${v}_${layoutKey(l)}`, 'uuff', () => kernel(l,
    '@group(0) @binding(2) var<storage, read_write> a: array<f32>;', statsFn(v, l), `
  let st = row_stats(base, lane, li);
  if (live) { ${loop(l, `a[base + j] = ${applyExpr(v)};`)} }`));
}

function statsDef(v: Variant, l: RowLayout): KernelDef {
  return kernelDef(`normact_stats_${v}_${layoutKey(l)}`, 'uuff', () => kernel(l,
    '@group(0) @binding(2) var<storage, read_write> out: array<vec2<f32>>;', statsFn(v, l), `
  let st = row_stats(base, lane, li);
  if (live && lane == 0u) { out[row] = st; }`));
}

/** Backward bodies: dS from s and dA, recomputing the forward's row quantities. */
function bwdBody(v: Variant, l: RowLayout): string {
  if (v === 'l2_norm_gelu') {
    return `
  var ss = 0.0;
  ${loop(l, 'let x = s[base + j]; ss = ss + x * x;')}
  let r = sqrt(wg_sum(ss, li));
  let c = select(0.0, p.sq / r, r > 0.0);
  var dot = 0.0; // ⟨dA·gelu'(s·c), s⟩
  ${loop(l, 'let x = s[base + j]; dot = dot + dA[base + j] * gelu_grad(x * c) * x;')}
  dot = wg_sum(dot, li);
  let k = select(0.0, dot / (r * r), r > 0.0);
  if (live) { ${loop(l, 'let x = s[base + j]; dS[base + j] = c * (dA[base + j] * gelu_grad(x * c) - x * k);')} }`;
  }
  if (v === 'gelu_l2_norm') {
    return `
  var ss = 0.0;
  var dot = 0.0; // ⟨dA, gelu(s)⟩
  ${loop(l, 'let g = gelu(s[base + j]); ss = ss + g * g; dot = dot + dA[base + j] * g;')}
  let r = sqrt(wg_sum(ss, li));
  dot = wg_sum(dot, li);
  let c = select(0.0, p.sq / r, r > 0.0);
  let k = select(0.0, dot / (r * r), r > 0.0);
  if (live) { ${loop(l, 'let x = s[base + j]; dS[base + j] = c * (dA[base + j] - gelu(x) * k) * gelu_grad(x);')} }`;
  }
  return `
  let st = row_stats(base, lane, li);
  var dot = 0.0; // Σ P·dA
  ${loop(l, 'dot = dot + exp(s[base + j] - st.x) * st.y * dA[base + j];')}
  dot = wg_sum(dot, li) / p.normN;
  if (live) { ${loop(l, 'dS[base + j] = exp(s[base + j] - st.x) * st.y * (dA[base + j] - dot);')} }`;
}

function bwdDef(v: Variant, l: RowLayout): KernelDef {
  const outs = `@group(0) @binding(2) var<storage, read> dA: array<f32>;
@group(0) @binding(3) var<storage, read_write> dS: array<f32>;`;
  return kernelDef(`normact_bwd_${v}_${layoutKey(l)}`, 'uuff', () => kernel(l, outs, v === 'softmax' ? statsFn(v, l) : '', bwdBody(v, l)));
}

function params(rows: number, n: number, p: NormActParams): number[] {
  return [rows, n, Math.sqrt(p.normN), p.normN];
}

/** a = Θ(s) row-wise over the last dim: z.rows rows of z.n. */
export function normAct(env: Env, z: RowSizes, s: GHandle, p: NormActParams): GHandle {
  const { rows, n: cols } = z;
  const a = env.mem.alloc(z.out);
  const l = rowLayout(env, cols);
  const def = l.tpr === 1 && l.rpw === NORMACT4_ROWS && cols % 4 === 0 ? fwd4Def(p.variant) : fwdDef(p.variant, l);
  runRows(env, def, [env.mem.bind(s), env.mem.bind(a)], params(rows, cols, p), rows, l);
  return a;
}

/** dS from dA and the scores s. */
export function normActBackward(env: Env, z: RowSizes, s: GHandle, dA: GHandle, p: NormActParams): GHandle {
  const { rows, n: cols } = z;
  const dS = env.mem.alloc(z.out);
  const binds = [env.mem.bind(s), env.mem.bind(dA), env.mem.bind(dS)];
  const l = rowLayout(env, cols);
  const def = l.tpr === 1 && l.rpw === NORMACT4_ROWS && cols % 4 === 0 ? bwd4Def(p.variant) : bwdDef(p.variant, l);
  runRows(env, def, binds, params(rows, cols, p), rows, l);
  return dS;
}

/** Per-row stats (rows, 2) of s for the matmul prologue (see statsFn). */
export function normActStats(env: Env, z: RowSizes, s: GHandle, p: NormActParams): GHandle {
  const { rows, n: cols } = z;
  const st = env.mem.alloc([rows, 2]);
  const l = rowLayout(env, cols);
  runRows(env, statsDef(p.variant, l), [env.mem.bind(s), env.mem.bind(st)], params(rows, cols, p), rows, l);
  return st;
}
