// The register-tiled matmul kernel C = op(A)·op(B), for GPUs: a 16×16 workgroup computes a
// 64×64 tile of C, each thread a 4×4 block held in four vec4 accumulators, over K in steps of
// 16 staged through workgroup memory as vec4 rows. Transposes are folded into the tile loads
// (each load is coalesced along the stored layout). An optional prologue applies Θ (the
// Pattention row norm + activation) to A as it is loaded, from row stats. A leaf module: the
// dispatch (matmul.ts) and the split path (matmul_split.ts) both generate it.
// Omits: split-K, f16, subgroup matrices; tiles smaller than 64 for tiny shapes.

import type { Variant } from '../../../src/backend.ts';
import { WGSL_GELU } from './common.ts';

/** A prologue on A's elements: Θ of `variant`, from per-row stats of the stored A. */
export type AXform = 'none' | Variant;

/** Tile edge: a workgroup computes a TILE × TILE block of C. */
export const TILE = 64;
const TK = 16;

/** Θ applied to one stored element v of row r of the scores (stats: vec2 per row). */
function xformExpr(x: AXform): string {
  if (x === 'l2_norm_gelu') return 'gelu(v * st[r].x)';
  if (x === 'gelu_l2_norm') return 'gelu(v) * st[r].x';
  if (x === 'softmax') return 'exp(v - st[r].x) * st[r].y';
  return 'v';
}

/**
 * strided: the split form (matmul_split.ts): one matrix per dispatch, each operand from an
 * element offset with its own row stride (a block of a larger matrix); accumulate: C += A·B.
 */
export function matmulWGSL(transA: boolean, transB: boolean, xf: AXform, strided = false, accumulate = false): string {
  const [ldA, ldB, ldC] = strided ? ['p.ldA', 'p.ldB', 'p.ldC'] : [transA ? 'p.M' : 'p.K', transB ? 'p.K' : 'p.N', 'p.N'];
  // Element (m, k) of op(A) sits at row r / column c of the stored matrix.
  const aIdx = transA ? `k * ${ldA} + m` : `m * ${ldA} + k`;
  const aRow = transA ? 'k' : 'm';
  const bIdx = transB ? `n * ${ldB} + k` : `k * ${ldB} + n`;
  // Thread → tile element maps, coalesced along the stored contiguous dim.
  const aMap = transA ? ['e % 64u', 'e / 64u'] : ['e / 16u', 'e % 16u']; // [mm, kk]
  const bMap = transB ? ['e / 16u', 'e % 16u'] : ['e % 64u', 'e / 64u']; // [nn, kk]
  const stats = xf === 'none' ? '' : '@group(0) @binding(4) var<storage, read> st: array<vec2<f32>>;';
  const struct = strided
    ? 'struct P { M: u32, N: u32, K: u32, oA: u32, oB: u32, oC: u32, ldA: u32, ldB: u32, ldC: u32, p0: u32, p1: u32, p2: u32 }'
    : 'struct P { M: u32, N: u32, K: u32, sA: u32, sB: u32, sC: u32, z0: u32, pad: u32 }';
  const bases = strided
    ? 'let aBase = p.oA;\n  let bBase = p.oB;\n  let cBase = p.oC;'
    : 'let z = wid.z + p.z0;\n  let aBase = z * p.sA;\n  let bBase = z * p.sB;\n  let cBase = z * p.sC;';
  return /* wgsl */ `
${struct}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
${stats}
${xf === 'l2_norm_gelu' || xf === 'gelu_l2_norm' ? WGSL_GELU : ''}
var<workgroup> As: array<vec4<f32>, ${(TK * TILE) / 4}>; // [k][m/4]
var<workgroup> Bs: array<vec4<f32>, ${(TK * TILE) / 4}>; // [k][n/4]

fn load_a(base: u32, m: u32, k: u32) -> f32 {
  if (m >= p.M || k >= p.K) { return 0.0; }
  let v = a[base + ${aIdx}];
  let r = ${aRow};
  return ${xformExpr(xf)};
}
fn load_b(base: u32, k: u32, n: u32) -> f32 {
  if (n >= p.N || k >= p.K) { return 0.0; }
  return b[base + ${bIdx}];
}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  ${bases}
  let m0 = wid.y * 64u;
  let n0 = wid.x * 64u;
  let tid = lid.y * 16u + lid.x;
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  for (var k0 = 0u; k0 < p.K; k0 = k0 + 16u) {
    for (var i = 0u; i < 4u; i = i + 1u) {
      let e = tid + i * 256u;
      let am = ${aMap[0]};
      let ak = ${aMap[1]};
      As[ak * 16u + am / 4u][am % 4u] = load_a(aBase, m0 + am, k0 + ak);
      let bn = ${bMap[0]};
      let bk = ${bMap[1]};
      Bs[bk * 16u + bn / 4u][bn % 4u] = load_b(bBase, k0 + bk, n0 + bn);
    }
    workgroupBarrier();
    for (var kk = 0u; kk < 16u; kk = kk + 1u) {
      let av = As[kk * 16u + lid.y];
      let bv = Bs[kk * 16u + lid.x];
      acc0 = fma(vec4<f32>(av.x), bv, acc0);
      acc1 = fma(vec4<f32>(av.y), bv, acc1);
      acc2 = fma(vec4<f32>(av.z), bv, acc2);
      acc3 = fma(vec4<f32>(av.w), bv, acc3);
    }
    workgroupBarrier();
  }
  let row = m0 + lid.y * 4u;
  let col = n0 + lid.x * 4u;
  let acc = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
  for (var i = 0u; i < 4u; i = i + 1u) {
    if (row + i < p.M) {
      let o = cBase + (row + i) * ${ldC} + col;
      for (var j = 0u; j < 4u; j = j + 1u) {
        if (col + j < p.N) { c[o + j] = ${accumulate ? 'c[o + j] + ' : ''}acc[i][j]; }
      }
    }
  }
}
`;
}
