// The matmul for CPU-emulated adapters (lavapipe/llvmpipe, SwiftShader): no workgroup
// memory and no barriers. Each invocation accumulates an R × COLS block in registers: its R
// rows of op(A) are the same for the whole workgroup (workgroup-uniform loads, broadcast),
// its COLS columns of op(B) are strided by the workgroup size (coalesced on a GPU).
// NOTE: why a second kernel: llvmpipe runs invocations as SIMD lanes and a workgroup as
// coroutines switched at every barrier, so the tiled kernel's shared-memory staging costs
// more than it saves; measured ~2–3× faster here on lavapipe (spec/backends/webgpu.md).
// Omits: a prologue on A (Pattention materializes Θ(S) on these adapters instead).

import type { MatmulDims } from '../../../src/backend.ts';

/** Rows per invocation. */
export const RC_ROWS = 8;
/** Columns per invocation. */
export const RC_COLS = 8;

/** Lanes per workgroup for N columns: enough to cover N, a multiple of 8, at most 32. */
export function rowcastLanes(N: number): number {
  const need = Math.ceil(N / RC_COLS);
  return need <= 8 ? 8 : need <= 16 ? 16 : 32;
}

export function rowcastWGSL(transA: boolean, transB: boolean, lanes: number, R = RC_ROWS, C = RC_COLS): string {
  const aIdx = (r: number) => (transA ? `k * p.M + mr${r}` : `mr${r} * p.K + k`);
  const bIdx = (j: number) => (transB ? `nc${j} * p.K + k` : `k * p.N + nc${j}`);
  const lines: string[] = [];
  for (let r = 0; r < R; r++) lines.push(`let mr${r} = min(m0 + ${r}u, p.M - 1u);`);
  for (let j = 0; j < C; j++) lines.push(`let nc${j} = min(nb + ${j * lanes}u, p.N - 1u);`);
  for (let r = 0; r < R; r++) for (let j = 0; j < C; j++) lines.push(`var c${r}_${j} = 0.0;`);
  const body: string[] = [];
  for (let j = 0; j < C; j++) body.push(`let b${j} = b[bBase + ${bIdx(j)}];`);
  for (let r = 0; r < R; r++) {
    body.push(`{ let a${r} = a[aBase + ${aIdx(r)}];`);
    for (let j = 0; j < C; j++) body.push(`  c${r}_${j} = fma(a${r}, b${j}, c${r}_${j});`);
    body.push('}');
  }
  const store: string[] = [];
  for (let r = 0; r < R; r++) {
    store.push(`if (m0 + ${r}u < p.M) {`);
    for (let j = 0; j < C; j++) {
      store.push(`  if (nb + ${j * lanes}u < p.N) { c[cBase + (m0 + ${r}u) * p.N + nb + ${j * lanes}u] = c${r}_${j}; }`);
    }
    store.push('}');
  }
  return /* wgsl */ `
struct P { M: u32, N: u32, K: u32, sA: u32, sB: u32, sC: u32, z0: u32, pad: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@compute @workgroup_size(${lanes})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let z = wid.z + p.z0;
  let aBase = z * p.sA;
  let bBase = z * p.sB;
  let cBase = z * p.sC;
  let m0 = wid.y * ${R}u;
  let nb = wid.x * ${lanes * C}u + li;
  ${lines.join('\n  ')}
  for (var k = 0u; k < p.K; k = k + 1u) {
    ${body.join('\n    ')}
  }
  ${store.join('\n  ')}
}`;
}

/** Workgroup grid [x, y] (z = batch) for the rowcast kernels. */
export function rowcastGrid(d: MatmulDims, lanes: number): [number, number] {
  return [Math.ceil(d.N / (lanes * RC_COLS)), Math.ceil(d.M / RC_ROWS)];
}

/**
 * The vec4 variant for a row-major B (K, N) with N % 4 = 0: each invocation's 8 columns are
 * two vec4 groups strided by the workgroup (4 consecutive columns per load), and C is stored
 * as vec4. CPU adapters pay per load per lane, so a vec4 load fetches 4 values for the price
 * of ~1: measured 20–30% faster than the scalar kernel on lavapipe.
 */
export function rowcast4WGSL(transA: boolean, lanes: number): string {
  const R = RC_ROWS, G = RC_COLS / 4;
  const aIdx = (r: number) => (transA ? `k * p.M + mr${r}` : `mr${r} * p.K + k`);
  const lines: string[] = [];
  for (let r = 0; r < R; r++) lines.push(`let mr${r} = min(m0 + ${r}u, p.M - 1u);`);
  for (let g = 0; g < G; g++) lines.push(`let nc${g} = min(nb + ${g * lanes}u, N4 - 1u);`);
  for (let r = 0; r < R; r++) for (let g = 0; g < G; g++) lines.push(`var c${r}_${g} = vec4<f32>(0.0);`);
  const body: string[] = [];
  for (let g = 0; g < G; g++) body.push(`let b${g} = b[bBase + k * N4 + nc${g}];`);
  for (let r = 0; r < R; r++) {
    body.push(`{ let a${r} = vec4<f32>(a[aBase + ${aIdx(r)}]);`);
    for (let g = 0; g < G; g++) body.push(`  c${r}_${g} = fma(a${r}, b${g}, c${r}_${g});`);
    body.push('}');
  }
  const store: string[] = [];
  for (let r = 0; r < R; r++) {
    store.push(`if (m0 + ${r}u < p.M) {`);
    for (let g = 0; g < G; g++) {
      store.push(`  if (nb + ${g * lanes}u < N4) { c[cBase + (m0 + ${r}u) * N4 + nb + ${g * lanes}u] = c${r}_${g}; }`);
    }
    store.push('}');
  }
  return /* wgsl */ `
struct P { M: u32, N: u32, K: u32, sA: u32, sB: u32, sC: u32, z0: u32, pad: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> c: array<vec4<f32>>;
@compute @workgroup_size(${lanes})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let z = wid.z + p.z0;
  let N4 = p.N / 4u;
  let aBase = z * p.sA;
  let bBase = z * p.sB / 4u;
  let cBase = z * p.sC / 4u;
  let m0 = wid.y * ${R}u;
  let nb = wid.x * ${lanes * G}u + li;
  ${lines.join('\n  ')}
  for (var k = 0u; k < p.K; k = k + 1u) {
    ${body.join('\n    ')}
  }
  ${store.join('\n  ')}
}`;
}

/** out (batch, K, N) = in (batch, N, K)ᵀ per batch. Grid: (ceil(N/64), K, batch). */
export const TRANSPOSE_WGSL = /* wgsl */ `
struct P { N: u32, K: u32, z0: u32, pad: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let n = wid.x * 64u + li;
  if (n >= p.N) { return; }
  let k = wid.y;
  let base = (wid.z + p.z0) * p.N * p.K;
  y[base + k * p.N + n] = x[base + n * p.K + k];
}`;
