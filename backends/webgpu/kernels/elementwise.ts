// Elementwise and index-map kernels: add, permute0213, rotary (GPT-NeoX rotate_half). The
// index maps run one invocation per contiguous row, so integer division (scalarized on CPU
// adapters) happens per row, not per element.
// Each takes its checked sizes from the op table (src/op-specs.ts) and validates nothing.
// Omits: broadcasting (the contract has none).

import type { ElementwiseSizes, PermuteSizes, RotaryOpSizes, RotaryParams } from '../../../src/backend.ts';
import { rotaryTables } from '../../../src/ops/rotary.ts';
import type { GHandle } from '../buffers.ts';
import type { KernelDef } from '../device.ts';
import { WGSL_MAIN_1D, WGSL_WGID, kernelDef, runElems, type Env } from './common.ts';

/**
 * Elements (or vec4s) per invocation of add and AdamW. llvmpipe pays ~80 ns per 8-lane group
 * of a dispatch before any work; four per invocation measured 1.5× faster on add.
 */
export const PER = 4;

function addDef(vec: boolean): KernelDef {
  const T = vec ? 'vec4<f32>' : 'f32';
  return kernelDef(`add_${vec ? 'v4' : 's'}`, 'u', () => /* wgsl */ `
struct P { n: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> a: array<${T}>;
@group(0) @binding(2) var<storage, read> b: array<${T}>;
@group(0) @binding(3) var<storage, read_write> y: array<${T}>;
@compute @workgroup_size(256)
fn main(${WGSL_MAIN_1D}) {
  ${WGSL_WGID}
  for (var q = 0u; q < ${PER}u; q = q + 1u) {
    let i = (wgid * ${PER}u + q) * 256u + li;
    if (i < p.n) { y[i] = a[i] + b[i]; }
  }
}`);
}
const ADD = addDef(false);
const ADD4 = addDef(true);

/** y = a + b, equal shapes; vec4 loads when the size allows (4× fewer memory ops). */
export function add(env: Env, z: ElementwiseSizes, a: GHandle, b: GHandle): GHandle {
  const { mem } = env;
  const y = mem.alloc(z.out);
  const vec = z.size % 4 === 0;
  // Over the binding limit: aligned element ranges, one dispatch each (mem.ranges).
  for (const [lo, hi] of mem.ranges(z.size)) {
    const n = vec ? (hi - lo) / 4 : hi - lo;
    const binds = [a, b, y].map((t) => mem.window(t, lo, hi).bind);
    runElems(env, vec ? ADD4 : ADD, binds, [n], Math.ceil(n / PER));
  }
  return y;
}

/** One invocation per contiguous run of D elements (a row), copied as vec4 when D allows. */
function permuteDef(vec: boolean): KernelDef {
  const T = vec ? 'vec4<f32>' : 'f32';
  return kernelDef(`permute0213_${vec ? 'v4' : 's'}`, 'uuuu', () => /* wgsl */ `
struct P { rows: u32, B: u32, C: u32, D: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<${T}>;
@group(0) @binding(2) var<storage, read_write> y: array<${T}>;
@compute @workgroup_size(64)
fn main(${WGSL_MAIN_1D}) {
  ${WGSL_WGID}
  let r = wgid * 64u + li; // output row (a, c, b)
  if (r >= p.rows) { return; }
  let bi = r % p.B;
  let r2 = r / p.B;
  let ci = r2 % p.C;
  let ai = r2 / p.C;
  let src = ((ai * p.B + bi) * p.C + ci) * p.D;
  let dst = r * p.D;
  for (var d = 0u; d < p.D; d = d + 1u) { y[dst + d] = x[src + d]; }
}`);
}
const PERMUTE = permuteDef(false);
const PERMUTE4 = permuteDef(true);

/** [a, b, c, d] → [a, c, b, d]. */
export function permute0213(env: Env, z: PermuteSizes, x: GHandle): GHandle {
  const { a: A, b: B, c: C, d: D } = z;
  const y = env.mem.alloc(z.out);
  const vec = D % 4 === 0;
  const rows = A * B * C;
  runElems(env, vec ? PERMUTE4 : PERMUTE, [env.mem.bind(x), env.mem.bind(y)], [rows, B, C, vec ? D / 4 : D], rows, 64);
  return y;
}

/** One invocation per (b, t, h) head row: rotates the first rotaryDim dims, copies the rest.
 *  Row t sits at position off + t (the table holds positions 0…len−1, len ≥ off + T). */
const ROTARY = kernelDef('rotary', 'uuuuuuf', () => /* wgsl */ `
struct P { rows: u32, T: u32, H: u32, D: u32, half: u32, off: u32, sign: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> cs: array<vec2<f32>>; // (len, half): cos, sin
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(64)
fn main(${WGSL_MAIN_1D}) {
  ${WGSL_WGID}
  let r = wgid * 64u + li;
  if (r >= p.rows) { return; }
  let t = p.off + (r / p.H) % p.T;
  let o = r * p.D;
  for (var j = 0u; j < p.half; j = j + 1u) {
    let k = cs[t * p.half + j];
    let s = p.sign * k.y;
    let x1 = x[o + j];
    let x2 = x[o + j + p.half];
    y[o + j] = x1 * k.x - x2 * s;
    y[o + j + p.half] = x2 * k.x + x1 * s;
  }
  for (var j = 2u * p.half; j < p.D; j = j + 1u) { y[o + j] = x[o + j]; }
}`);

/**
 * Rows of positions a rotary at offset `off` needs: T itself without an offset (training: one
 * table per sequence length, as before), else off + T rounded up to a power of two, so that
 * decoding one token at a time reuses a few tables instead of uploading one per position.
 */
function tableLength(off: number, T: number): number {
  return off === 0 ? T : 2 ** Math.ceil(Math.log2(off + T));
}

/** Rotary tables (len, half) of positions 0…len−1 as interleaved cos/sin, once per (len, rd, base). */
function tables(env: Env, cache: Map<string, GHandle>, len: number, p: RotaryParams): GHandle {
  const key = `${len}/${p.rotaryDim}/${p.base}`;
  let t = cache.get(key);
  if (!t) {
    const { cos, sin } = rotaryTables(len, p); // float64, as the CPU reference
    const cs = new Float32Array(2 * cos.length);
    for (let i = 0; i < cos.length; i++) { cs[2 * i] = cos[i]; cs[2 * i + 1] = sin[i]; }
    t = env.mem.upload(cs, [cos.length, 2], 'f32');
    cache.set(key, t);
  }
  return t;
}

/**
 * Returns the rotary kernel with its table cache (freed by the returned `free`). The cache
 * holds tensors, not kernels: the cos/sin tables uploaded to this backend's device, which
 * kernelDef's registry (of device-independent WGSL) cannot hold; one per backend instance.
 */
export function makeRotary(env: Env) {
  const cache = new Map<string, GHandle>();
  return {
    /** x: [B, T, H, D] at positions z.offset + t. */
    rotary(z: RotaryOpSizes, x: GHandle, p: RotaryParams, inverse: boolean): GHandle {
      const { T, H, D, offset: off } = z;
      const y = env.mem.alloc(z.out);
      const rows = z.B * T * H;
      // rotaryDim 0 binds a dummy table: the kernel only copies.
      const cs = p.rotaryDim === 0
        ? tables(env, cache, 1, { ...p, rotaryDim: 2 })
        : tables(env, cache, tableLength(off, T), p);
      const binds = [env.mem.bind(x), env.mem.bind(cs), env.mem.bind(y)];
      runElems(env, ROTARY, binds, [rows, T, H, D, p.rotaryDim / 2, off, inverse ? -1 : 1], rows, 64);
      return y;
    },
    free(): void {
      for (const t of cache.values()) env.mem.dispose(t);
      cache.clear();
    },
  };
}
