// Deterministic reductions to a scalar: per-workgroup partial sums (of x or x²) into a
// partials buffer, then one workgroup summing the partials in a fixed tree order.
// Omits: float atomics (WGSL has none); Kahan compensation (f32 tree sums err ~log₂(n)·ε).

import type { GHandle } from '../buffers.ts';
import type { Binding, KernelDef } from '../device.ts';
import { WGSL_MAIN_1D, WGSL_WGID, kernelDef, wgslReduce, type Env } from './common.ts';

/** Elements per workgroup in the partial stage (256 invocations × 8). */
export const CHUNK = 2048;

/**
 * Partial sums of x (or x²) over CHUNK-element chunks. 'gpu' style: one partial per
 * workgroup (a tree in workgroup memory); 'cpu' style: one partial per invocation (no
 * barriers, 256 partials per chunk). vec4: reads four elements per load (size % 4 = 0).
 */
function getPartial(square: boolean, vec: boolean, perLane: boolean): KernelDef {
  const key = `reduce_partial_${square ? 'sq' : 'sum'}_${vec ? 'v4' : 's'}_${perLane ? 'lane' : 'wg'}`;
  return kernelDef(key, 'uu', () => partialWGSL(square, vec, perLane));
}

function partialWGSL(square: boolean, vec: boolean, perLane: boolean): string {
  const T = vec ? 'vec4<f32>' : 'f32';
  const per = vec ? 2 : 8; // loads per invocation: CHUNK / 256 elements
  const term = vec ? (square ? 'dot(v, v)' : 'v.x + v.y + v.z + v.w') : square ? 'v * v' : 'v';
  return /* wgsl */ `
struct P { n: u32, at: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<${T}>;
@group(0) @binding(2) var<storage, read_write> part: array<f32>;
${perLane ? '' : wgslReduce(256)}
@compute @workgroup_size(256)
fn main(${WGSL_MAIN_1D}) {
  ${WGSL_WGID}
  let i0 = wgid * ${256 * per}u;
  var s = 0.0;
  for (var k = 0u; k < ${per}u; k = k + 1u) {
    let i = i0 + k * 256u + li;
    if (i < p.n) { let v = x[i]; s = s + ${term}; }
  }
  ${perLane ? 'part[p.at + wgid * 256u + li] = s;' : 's = wg_sum(s, li);\n  if (li == 0u) { part[p.at + wgid] = s; }'}
}`;
}

/**
 * The vec4 partial stage over T tensors in one dispatch (a training step's Σg² covers ~20
 * parameters; each dispatch costs ~45 µs on lavapipe before any work). Workgroups [e(i−1),
 * e(i)) read tensor i; partials land where T separate dispatches would put them.
 */
function getMulti(square: boolean, perLane: boolean, T: number): KernelDef {
  const key = `reduce_multi_${square ? 'sq' : 'sum'}_${perLane ? 'lane' : 'wg'}_${T}`;
  return kernelDef(key, 'u'.repeat(2 * T + 1), () => multiWGSL(square, perLane, T));
}

function multiWGSL(square: boolean, perLane: boolean, T: number): string {
  const term = square ? 'dot(v, v)' : 'v.x + v.y + v.z + v.w';
  const fields = ['at: u32', ...Array.from({ length: T }, (_, i) => `n${i}: u32`), ...Array.from({ length: T }, (_, i) => `e${i}: u32`)];
  const binds = Array.from({ length: T }, (_, i) => `@group(0) @binding(${i + 1}) var<storage, read> x${i}: array<vec4<f32>>;`);
  const branches = Array.from({ length: T }, (_, i) => `${i ? 'else ' : ''}if (wgid < p.e${i}) {
    let w = wgid${i ? ` - p.e${i - 1}` : ''};
    for (var k = 0u; k < 2u; k = k + 1u) {
      let j = w * 512u + k * 256u + li;
      if (j < p.n${i}) { let v = x${i}[j]; s = s + ${term}; }
    }
  }`);
  return /* wgsl */ `
struct P { ${fields.join(', ')} }
@group(0) @binding(0) var<uniform> p: P;
${binds.join('\n')}
@group(0) @binding(${T + 1}) var<storage, read_write> part: array<f32>;
${perLane ? '' : wgslReduce(256)}
@compute @workgroup_size(256)
fn main(${WGSL_MAIN_1D}) {
  ${WGSL_WGID}
  var s = 0.0;
  ${branches.join(' ')}
  ${perLane ? `if (wgid < p.e${T - 1}) { part[p.at + wgid * 256u + li] = s; }` : `s = wg_sum(s, li);\n  if (li == 0u && wgid < p.e${T - 1}) { part[p.at + wgid] = s; }`}
}`;
}

/** out[0] = scale · Σ part[0..n); one workgroup. */
const FINAL = kernelDef('reduce_final', 'uf', () => /* wgsl */ `
struct P { n: u32, scale: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
${wgslReduce(256)}
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32) {
  var s = 0.0;
  for (var i = li; i < p.n; i = i + 256u) { s = s + part[i]; }
  s = wg_sum(s, li);
  if (li == 0u) { out[0] = s * p.scale; }
}`);

/** Encodes out[0] = scale · Σ part over n partials. */
export function reduceFinal(env: Env, part: Binding, n: number, out: GHandle, scale: number): void {
  env.ctx.run(FINAL, [part, env.mem.bind(out)], [n, scale], [1]);
}

/**
 * [] = scale · Σ x (or Σ x²) over every element of every tensor. A tensor over the binding
 * limit is read as aligned element ranges (mem.ranges), each a piece of its own.
 */
export function sumAll(env: Env, ts: readonly GHandle[], square: boolean, scale = 1): GHandle {
  const { mem, ctx } = env;
  const perLane = ctx.style === 'cpu';
  const pieces: { bind: Binding; n: number }[] = [];
  for (const t of ts) {
    for (const [lo, hi] of mem.ranges(t.size)) pieces.push({ bind: mem.window(t, lo, hi).bind, n: hi - lo });
  }
  const groups = pieces.map((t) => Math.ceil(t.n / CHUNK));
  const total = groups.reduce((a, b) => a + b, 0) * (perLane ? 256 : 1);
  const part = mem.alloc([Math.max(1, total)]);
  const maxT = Math.min(8, ctx.device.limits.maxStorageBuffersPerShaderStage - 1);
  const per = perLane ? 256 : 1;
  const maxParts = (ctx.maxBinding - ctx.bindAlign) / 4; // partials one window of part holds
  let at = 0;
  let batch: number[] = []; // indices of vec4 pieces waiting for one multi-tensor dispatch
  let batchParts = 0;
  const runBatch = () => {
    if (batch.length === 0) return;
    const ends: number[] = [];
    let g = 0;
    for (const i of batch) ends.push((g += groups[i]));
    const def = getMulti(square, perLane, batch.length);
    const wp = mem.window(part, at, at + g * per);
    const binds = [...batch.map((i) => pieces[i].bind), wp.bind];
    ctx.run(def, binds, [wp.shift, ...batch.map((i) => pieces[i].n / 4), ...ends], ctx.grid1D(g));
    at += g * per;
    batch = [];
    batchParts = 0;
  };
  pieces.forEach((t, i) => {
    if (groups[i] === 0) return;
    if (t.n % 4 === 0 && maxT >= 2) {
      if (batchParts + groups[i] * per > maxParts) runBatch();
      batchParts += groups[i] * per;
      batch.push(i);
      if (batch.length === maxT) runBatch();
      return;
    }
    runBatch();
    const vec = t.n % 4 === 0;
    const n = vec ? t.n / 4 : t.n;
    const wp = mem.window(part, at, at + groups[i] * per);
    ctx.run(getPartial(square, vec, perLane), [t.bind, wp.bind], [n, wp.shift], ctx.grid1D(groups[i]));
    at += groups[i] * per;
  });
  runBatch();
  // More partials than one binding holds: sum them as a tensor of their own (≥ 8× fewer).
  if (!mem.fits(part)) {
    const out = sumAll(env, [part], false, scale);
    mem.dispose(part);
    return out;
  }
  const out = mem.alloc([]);
  reduceFinal(env, mem.bind(part), total, out, scale);
  mem.dispose(part);
  return out;
}

/** Σ x² over every element of every tensor → [] (the global gradient norm²). */
export function sumSquares(env: Env, ts: readonly GHandle[]): GHandle {
  return sumAll(env, ts, true);
}
