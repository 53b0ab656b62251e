// The matmul for CPU-emulated adapters with 8-wide subgroups (lavapipe/llvmpipe on AVX2):
// no workgroup memory, no barriers, and each operand element loaded once per subgroup.
// NOTE: why: llvmpipe runs a subgroup's 8 invocations as the lanes of one SIMD register and
// loads every storage-buffer element lane by lane (a bounds check and a branch per lane and
// component; even a uniform address is loaded 8 times). Loads, not FMAs, bound the rowcast
// kernel. Here the 8 lanes of a subgroup load 8 different rows of op(A) and hand them to
// each other with subgroupBroadcast (an extract and a splat in llvmpipe), so each A element
// costs one lane-load instead of eight; B is loaded as vec4 over 4 columns (row-major B) or
// over 4 k (transposed B, no transpose pass). Measured 2–3× the rowcast kernel on lavapipe
// (256×128×128: 29–31 GFLOP/s against 10–17 on 2 threads; 256×512×128: 43–46).
// Operands may be strided batches (Strided: attention reads (B, T, H, D) heads in place).
// Omits: the Θ prologue, N or K not multiples of 4 (rowcast handles those).

import type { MatmulDims } from '../../../src/backend.ts';

/** Rows per workgroup: RS groups of 8 (one per subgroup lane). */
export interface SgShape {
  RS: number;
  /** vec4 column groups per invocation. */
  G: number;
  /** Invocations per workgroup (a multiple of 8). */
  lanes: number;
}

/** Picks the block shape for the product: a workgroup covers 8·RS rows × 4·G·lanes columns. */
export function sgShape(d: MatmulDims): SgShape {
  // Measured on lavapipe: 16 rows × 64 columns per workgroup was at or near the best of
  // 8–32 rows × 32–128 columns on every bench-model shape.
  return { RS: d.M >= 16 ? 2 : 1, G: 1, lanes: d.N / 4 >= 16 ? 16 : 8 };
}

export function sgGrid(d: MatmulDims, s: SgShape): [number, number] {
  return [Math.ceil(d.N / 4 / (s.lanes * s.G)), Math.ceil(d.M / (8 * s.RS))];
}

/** True when the subgroup kernel applies (vec4 columns and vec4 k steps). */
export function sgApplies(d: MatmulDims): boolean {
  return d.N % 4 === 0 && d.K % 4 === 0;
}

/**
 * Where batch z's matrix of an operand starts, (z / zh)·outer + (z mod zh)·inner, and its row
 * stride ld (elements). Lets attention read q, k, v and write its outputs in the (B, T, H, D)
 * layout directly: batch z = b·H + h, zh = H, outer T·H·D, inner D, ld H·D.
 */
export interface Strided {
  outer: number;
  inner: number;
  ld: number;
}

/** The contiguous layout of a batch of (rows, cols) matrices (B shared when `shared`). */
export function dense(rows: number, cols: number, shared = false): Strided {
  return { outer: shared ? 0 : rows * cols, inner: 0, ld: cols };
}

/** Uniform params of the kernel for batches from z0 (`zh` inner batches per outer one). */
export function sgParams(d: MatmulDims, z0: number, zh: number, a: Strided, b: Strided, c: Strided): number[] {
  return [d.M, d.N, d.K, z0, zh, a.outer, a.inner, a.ld, b.outer, b.inner, b.ld, c.outer, c.inner, c.ld, 0, 0];
}

/** Offsets and strides the vec4 loads and stores need (every one a multiple of 4). */
export function sgAligned(...ops: Strided[]): boolean {
  return ops.every((o) => o.outer % 4 === 0 && o.inner % 4 === 0 && o.ld % 4 === 0);
}

/**
 * WGSL for op(A)·op(B), A (M, K) or (K, M) when transA, B (K, N) or (N, K) when transB.
 * Each loop iteration takes 4 k steps: the 4 products of an accumulator are summed first and
 * added once (llvmpipe masks every write to a loop-carried variable with a blend, and the
 * accumulators spill: one write per 4 products measured 1.1–1.4× faster).
 * accumulate: C += op(A)·op(B) (the K ranges of matmul_split.ts after the first).
 */
export function subgroupWGSL(transA: boolean, transB: boolean, s: SgShape, accumulate = false): string {
  const { RS, G, lanes } = s;
  const R = 8 * RS;
  const pre: string[] = [];
  for (let q = 0; q < RS; q++) pre.push(`let mr${q} = min(m0 + ${8 * q}u + sl, p.M - 1u);`);
  for (let g = 0; g < G; g++) pre.push(`let nc${g} = min(nb + ${g * lanes}u, N4 - 1u);`);
  for (let r = 0; r < R; r++) for (let g = 0; g < G; g++) pre.push(`var c${r}_${g} = vec4<f32>(0.0);`);
  const body: string[] = [];
  // A: lane sl holds row m0 + 8q + sl at k .. k+3 (a vec4 over k).
  for (let q = 0; q < RS; q++) {
    if (transA) {
      const e = [0, 1, 2, 3].map((u) => `a[aBase + (k + ${u}u) * p.ldA + mr${q}]`).join(', ');
      body.push(`let av${q} = vec4<f32>(${e});`);
    } else {
      body.push(`let av${q} = a4[aBase4 + mr${q} * ldA4 + kq];`);
    }
  }
  for (let g = 0; g < G; g++) {
    if (transB) {
      // Column n = 4·nc + j of op(B) is row n of the stored B: a vec4 over k per column.
      for (let j = 0; j < 4; j++) body.push(`let bt${g}_${j} = b4[bBase4 + min(4u * nc${g} + ${j}u, p.N - 1u) * ldB4 + kq];`);
      for (let u = 0; u < 4; u++) body.push(`let b${u}_${g} = vec4<f32>(bt${g}_0[${u}], bt${g}_1[${u}], bt${g}_2[${u}], bt${g}_3[${u}]);`);
    } else {
      for (let u = 0; u < 4; u++) body.push(`let b${u}_${g} = b4[bBase4 + (k + ${u}u) * ldB4 + nc${g}];`);
    }
  }
  for (let r = 0; r < R; r++) {
    const x = (u: number) => `vec4<f32>(subgroupBroadcast(av${r >> 3}[${u}], ${r & 7}u))`;
    for (let g = 0; g < G; g++) {
      body.push(`c${r}_${g} = c${r}_${g} + fma(${x(3)}, b3_${g}, fma(${x(2)}, b2_${g}, fma(${x(1)}, b1_${g}, ${x(0)} * b0_${g})));`);
    }
  }
  const store: string[] = [];
  for (let r = 0; r < R; r++) {
    store.push(`if (m0 + ${r}u < p.M) {`);
    for (let g = 0; g < G; g++) {
      const ci = `cBase4 + (m0 + ${r}u) * ldC4 + nb + ${g * lanes}u`;
      store.push(`  if (nb + ${g * lanes}u < N4) { c[${ci}] = ${accumulate ? `c[${ci}] + ` : ''}c${r}_${g}; }`);
    }
    store.push('}');
  }
  return /* wgsl */ `enable subgroups;
struct P { M: u32, N: u32, K: u32, z0: u32, zh: u32, soA: u32, siA: u32, ldA: u32,
  soB: u32, siB: u32, ldB: u32, soC: u32, siC: u32, ldC: u32, p0: u32, p1: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> ${transA ? 'a: array<f32>' : 'a4: array<vec4<f32>>'};
@group(0) @binding(2) var<storage, read> b4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> c: array<vec4<f32>>;
@compute @workgroup_size(${lanes})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32,
        @builtin(subgroup_invocation_id) sl: u32) {
  let z = wid.z + p.z0;
  let N4 = p.N / 4u;
  let zo = z / p.zh;
  let zi = z % p.zh;
  let aBase = zo * p.soA + zi * p.siA;
  let aBase4 = aBase / 4u;
  let bBase4 = (zo * p.soB + zi * p.siB) / 4u;
  let cBase4 = (zo * p.soC + zi * p.siC) / 4u;
  let ldA4 = p.ldA / 4u;
  let ldB4 = p.ldB / 4u;
  let ldC4 = p.ldC / 4u;
  let m0 = wid.y * ${R}u;
  let nb = wid.x * ${lanes * G}u + li;
  ${pre.join('\n  ')}
  for (var k = 0u; k < p.K; k = k + 4u) {
    let kq = k / 4u;
    ${body.join('\n    ')}
  }
  ${store.join('\n  ')}
}`;
}
