// Θ forward and backward (kernels/normact.ts) for the 'cpu' row layout — one invocation per
// row, 64 rows per workgroup — over rows of n % 4 = 0 scores read and written as vec4.
// NOTE: why: on llvmpipe each lane loads its row element by element with a bounds check and a
// branch per component, ~9 instructions a value against ~5 in a vec4 load; loads and stores,
// not the GELU, bound these kernels (the scores are read twice forward, three times backward).
// Omits: the row-stats kernel (only the 'gpu' style's matmul prologue uses it).

import type { Variant } from '../../../src/backend.ts';
import type { KernelDef } from '../device.ts';
import { WGSL_MAIN_1D, WGSL_WGID, geluWGSL, kernelDef } from './common.ts';

const ROWS = 64;

/** A loop over the row's n/4 vec4s: x is the scores' vec4 j. */
const loop = (body: string) => `for (var j = 0u; j < n4; j = j + 1u) { let x = s[base + j]; ${body} }`;

/** Row stats: l2 variants c = √normN/‖·‖ (or 0); softmax (max, normN/Σexp). */
function stats(v: Variant): string {
  if (v === 'softmax') {
    return `
  var mx = -0x1.fffffep+127f;
  ${loop('mx = max(mx, max(max(x.x, x.y), max(x.z, x.w)));')}
  var z = 0.0;
  ${loop('z = z + dot(exp(x - mx), vec4<f32>(1.0));')}
  let st = vec2<f32>(mx, p.normN / z);`;
  }
  const g = v === 'gelu_l2_norm' ? 'gelu4(x)' : 'x';
  return `
  var ss = 0.0;
  ${loop(`let g = ${g}; ss = ss + dot(g, g);`)}
  let r = sqrt(ss);
  let st = vec2<f32>(select(0.0, p.sq / r, r > 0.0), 0.0);`;
}

function apply(v: Variant): string {
  if (v === 'l2_norm_gelu') return 'gelu4(x * st.x)';
  if (v === 'gelu_l2_norm') return 'gelu4(x) * st.x';
  return 'exp(x - st.x) * st.y';
}

function backward(v: Variant): string {
  if (v === 'l2_norm_gelu') {
    return `
  var ss = 0.0;
  ${loop('ss = ss + dot(x, x);')}
  let r = sqrt(ss);
  let c = select(0.0, p.sq / r, r > 0.0);
  var dt = 0.0; // ⟨dA·gelu'(s·c), s⟩
  ${loop('dt = dt + dot(dA[base + j] * gelu_grad4(x * c), x);')}
  let k = select(0.0, dt / (r * r), r > 0.0);
  if (live) { ${loop('dS[base + j] = c * (dA[base + j] * gelu_grad4(x * c) - x * k);')} }`;
  }
  if (v === 'gelu_l2_norm') {
    return `
  var ss = 0.0;
  var dt = 0.0; // ⟨dA, gelu(s)⟩
  ${loop('let g = gelu4(x); ss = ss + dot(g, g); dt = dt + dot(dA[base + j], g);')}
  let r = sqrt(ss);
  let c = select(0.0, p.sq / r, r > 0.0);
  let k = select(0.0, dt / (r * r), r > 0.0);
  if (live) { ${loop('dS[base + j] = c * (dA[base + j] - gelu4(x) * k) * gelu_grad4(x);')} }`;
  }
  return `${stats(v)}
  var dt = 0.0; // Σ P·dA
  ${loop('dt = dt + dot(exp(x - st.x) * st.y, dA[base + j]);')}
  dt = dt / p.normN;
  if (live) { ${loop('dS[base + j] = exp(x - st.x) * st.y * (dA[base + j] - dt);')} }`;
}

function kernel(binds: string, body: string): string {
  return /* wgsl */ `
struct P { rows: u32, n: u32, sq: f32, normN: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> s: array<vec4<f32>>;
${binds}
${geluWGSL('vec4<f32>', '4')}
@compute @workgroup_size(${ROWS})
fn main(${WGSL_MAIN_1D}) {
  ${WGSL_WGID}
  let row0 = wgid * ${ROWS}u + li;
  let live = row0 < p.rows;
  let row = min(row0, p.rows - 1u);
  let n4 = p.n / 4u;
  let base = row * n4;
  ${body}
}`;
}

/** Rows per workgroup of these kernels. */
export const NORMACT4_ROWS = ROWS;

export function fwd4Def(v: Variant): KernelDef {
  return kernelDef(`normact4_fwd_${v}`, 'uuff', () => kernel('@group(0) @binding(2) var<storage, read_write> a: array<vec4<f32>>;',
    `${stats(v)}
  if (live) { ${loop(`a[base + j] = ${apply(v)};`)} }`));
}

export function bwd4Def(v: Variant): KernelDef {
  return kernelDef(`normact4_bwd_${v}`, 'uuff', () => kernel(`@group(0) @binding(2) var<storage, read> dA: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> dS: array<vec4<f32>>;`, backward(v)));
}
