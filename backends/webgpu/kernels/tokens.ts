// Kernels indexed by token ids: embedding lookup and its scatter-add backward, cross-entropy
// forward (row log-sum-exp, then the mean) and backward. Shapes and dtypes come checked from
// the op table (src/op-specs.ts); the values of ids and targets are checked on the host from
// the upload's shadow copy with the CPU reference's own check (checkIds), so an out-of-range
// id throws the same UserError before any kernel runs.
// NOTE: the scatter-add is a gather: the host sorts positions by id (CSR: offsets (V+1),
// positions (N)), and one thread per (vocab row, channel) sums its positions in order. No
// atomics, deterministic, and the same summation order as the CPU reference.
// Omits: ignore_index, label smoothing, padding_idx.

import type { CrossEntropySizes, EmbeddingSizes } from '../../../src/backend.ts';
import { checkIds } from '../../../src/ops/embedding.ts';
import type { GHandle } from '../buffers.ts';
import type { KernelDef } from '../device.ts';
import { WGSL_MAIN_1D, WGSL_WGID, kernelDef, layoutKey, rowLayout, runElems, runRows, wgslRows, type Env, type RowLayout } from './common.ts';
import { reduceFinal } from './reduce.ts';

/** One invocation per token row, copying its table row (vec4 when C % 4 = 0): integer
 *  division per row, not per element (a CPU adapter scalarizes it). */
function embDef(vec: boolean): KernelDef {
  const T = vec ? 'vec4<f32>' : 'f32';
  return kernelDef(`embedding_${vec ? 'v4' : 's'}`, 'uuuuuuu', () => /* wgsl */ `
struct P { rows: u32, C: u32, r0: u32, v0: u32, v1: u32, ts: u32, os: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> ids: array<i32>;
@group(0) @binding(2) var<storage, read> table: array<${T}>;
@group(0) @binding(3) var<storage, read_write> out: array<${T}>;
@compute @workgroup_size(64)
fn main(${WGSL_MAIN_1D}) {
  ${WGSL_WGID}
  let r = wgid * 64u + li;
  if (r >= p.rows) { return; }
  let id = u32(ids[p.r0 + r]);
  if (id < p.v0 || id >= p.v1) { return; }
  let src = p.ts + (id - p.v0) * p.C;
  let dst = p.os + r * p.C;
  for (var c = 0u; c < p.C; c = c + 1u) { out[dst + c] = table[src + c]; }
}`);
}
const EMB = embDef(false);
const EMB4 = embDef(true);

/** ids: i32 [...] (z.rows); table: [V, C] → [..., C]. */
export function embedding(env: Env, z: EmbeddingSizes, ids: GHandle, table: GHandle): GHandle {
  const { V, C } = z;
  checkIds(env.mem.hostInts(ids), V); // the CPU reference's value check and message
  const out = env.mem.alloc(z.out);
  const vec = C % 4 === 0;
  const { mem } = env;
  const q = vec ? 4 : 1;
  // Over the binding limit: ranges of output rows × ranges of table rows; each dispatch
  // copies the rows whose id falls in its table range.
  for (const [r0, r1] of mem.rowRanges(z.rows, C, 'the embedding output')) {
    const wo = mem.window(out, r0 * C, r1 * C);
    for (const [v0, v1] of mem.rowRanges(V, C, 'the embedding table')) {
      const wt = mem.window(table, v0 * C, v1 * C);
      const params = [r1 - r0, C / q, r0, v0, v1, wt.shift / q, wo.shift / q];
      runElems(env, vec ? EMB4 : EMB, [mem.bind(ids), wt.bind, wo.bind], params, r1 - r0, 64);
    }
  }
  return out;
}

const EMB_BWD = kernelDef('embedding_bwd', 'uuuu', () => /* wgsl */ `
struct P { n: u32, C: u32, v0: u32, shift: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> offs: array<i32>; // (V + 1)
@group(0) @binding(2) var<storage, read> pos: array<i32>;  // (N) positions sorted by id
@group(0) @binding(3) var<storage, read> dOut: array<f32>;
@group(0) @binding(4) var<storage, read_write> dTable: array<f32>;
@compute @workgroup_size(256)
fn main(${WGSL_MAIN_1D}) {
  ${WGSL_WGID}
  let i = wgid * 256u + li;
  if (i >= p.n) { return; }
  let v = p.v0 + i / p.C;
  let c = i % p.C;
  var s = 0.0;
  for (var q = offs[v]; q < offs[v + 1u]; q = q + 1) { s = s + dOut[u32(pos[q]) * p.C + c]; }
  dTable[p.shift + i] = s;
}`);

/** Counting sort of positions by id: offsets (V+1) and positions (N). */
function csr(ids: Int32Array, V: number): { offs: Int32Array; pos: Int32Array } {
  const offs = new Int32Array(V + 1);
  for (let i = 0; i < ids.length; i++) offs[ids[i] + 1]++;
  for (let v = 0; v < V; v++) offs[v + 1] += offs[v];
  const fill = offs.slice(0, V);
  const pos = new Int32Array(Math.max(1, ids.length));
  for (let i = 0; i < ids.length; i++) pos[fill[ids[i]]++] = i;
  return { offs, pos };
}

/** dTable [V, C] = scatter-add of dOut [..., C] rows at ids. */
export function embeddingBackward(env: Env, z: EmbeddingSizes, ids: GHandle, dOut: GHandle): GHandle {
  const { V: vocab, C } = z;
  const host = env.mem.hostInts(ids);
  checkIds(host, vocab); // the CPU reference's value check and message
  const { offs, pos } = csr(host, vocab);
  const mem = env.mem;
  const o = mem.upload(offs, [offs.length], 'i32'), p = mem.upload(pos, [pos.length], 'i32');
  const dT = mem.alloc(z.out);
  // Over the binding limit: ranges of vocab rows of dTable (dOut and the CSR bound whole).
  for (const [v0, v1] of mem.rowRanges(vocab, C, 'the embedding gradient')) {
    const w = mem.window(dT, v0 * C, v1 * C);
    const n = (v1 - v0) * C;
    runElems(env, EMB_BWD, [mem.bind(o), mem.bind(p), mem.bind(dOut), w.bind], [n, C, v0, w.shift], n);
  }
  mem.dispose(o);
  mem.dispose(p);
  return dT;
}

function ceFwdDef(l: RowLayout): KernelDef {
  return kernelDef(`ce_fwd_${layoutKey(l)}`, 'uuuu', () => ceFwdWGSL(l));
}

function ceFwdWGSL(l: RowLayout): string {
  const loop = (body: string) => `for (var j = lane; j < p.V; j = j + ${l.tpr}u) { ${body} }`;
  const { decls, main } = wgslRows(l);
  return /* wgsl */ `
struct P { rows: u32, V: u32, r0: u32, lo: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> l: array<f32>;
@group(0) @binding(2) var<storage, read> tgt: array<i32>;
@group(0) @binding(3) var<storage, read_write> lse: array<f32>;
@group(0) @binding(4) var<storage, read_write> rowLoss: array<f32>;
${decls}
${main}
  let o = p.lo + row * p.V;
  let g = p.r0 + row;
  var mx = -0x1.fffffep+127f;
  ${loop('mx = max(mx, l[o + j]);')}
  mx = wg_max(mx, li);
  var z = 0.0;
  ${loop('z = z + exp(l[o + j] - mx);')}
  z = wg_sum(z, li);
  if (live && lane == 0u) {
    let r = mx + log(z);
    lse[g] = r;
    rowLoss[g] = r - l[o + u32(tgt[g])];
  }
}`;
}

/** loss [] (mean over rows) and lse [N]. */
export function crossEntropy(env: Env, z: CrossEntropySizes, logits: GHandle, targets: GHandle): { loss: GHandle; lse: GHandle } {
  const { N, V } = z;
  checkIds(env.mem.hostInts(targets), V, 'target'); // the CPU reference's value check and message
  const { mem } = env;
  const l = rowLayout(env, V);
  const d = ceFwdDef(l);
  const lse = mem.alloc([N]), rowLoss = mem.alloc([N]);
  // Over the binding limit: ranges of logit rows (lse, rowLoss and targets bound whole).
  for (const [r0, r1] of mem.rowRanges(N, V, 'the logits')) {
    const w = mem.window(logits, r0 * V, r1 * V);
    runRows(env, d, [w.bind, mem.bind(targets), mem.bind(lse), mem.bind(rowLoss)], [r1 - r0, V, r0, w.shift], r1 - r0, l);
  }
  const loss = mem.alloc([]);
  reduceFinal(env, mem.bind(rowLoss), N, loss, 1 / N);
  mem.dispose(rowLoss);
  return { loss, lse };
}

/** One invocation per row (vec4 when V % 4 = 0): no integer division per element. */
function ceBwdDef(vec: boolean): KernelDef {
  const T = vec ? 'vec4<f32>' : 'f32';
  const hit = vec
    ? 'select(vec4<f32>(0.0), vec4<f32>(1.0), vec4<u32>(4u * j) + vec4<u32>(0u, 1u, 2u, 3u) == vec4<u32>(t))'
    : 'select(0.0, 1.0, j == t)';
  return kernelDef(`ce_bwd_${vec ? 'v4' : 's'}`, 'uufuu', () => /* wgsl */ `
struct P { rows: u32, V: u32, c: f32, r0: u32, lo: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> l: array<${T}>;
@group(0) @binding(2) var<storage, read> lse: array<f32>;
@group(0) @binding(3) var<storage, read> tgt: array<i32>;
@group(0) @binding(4) var<storage, read_write> dl: array<${T}>;
@compute @workgroup_size(64)
fn main(${WGSL_MAIN_1D}) {
  ${WGSL_WGID}
  let r = wgid * 64u + li;
  if (r >= p.rows) { return; }
  let m = lse[p.r0 + r];
  let t = u32(tgt[p.r0 + r]);
  let o = p.lo + r * p.V;
  for (var j = 0u; j < p.V; j = j + 1u) { dl[o + j] = p.c * (exp(l[o + j] - m) - ${hit}); }
}`);
}
const CE_BWD = ceBwdDef(false);
const CE_BWD4 = ceBwdDef(true);

/** dLogits = dLoss · (softmax(logits) − onehot) / N. */
export function crossEntropyBackward(
  env: Env, z: CrossEntropySizes, logits: GHandle, lse: GHandle, targets: GHandle, dLoss: number,
): GHandle {
  const { N, V } = z;
  checkIds(env.mem.hostInts(targets), V, 'target'); // the CPU reference's value check and message
  const { mem } = env;
  const dl = mem.alloc(logits.shape);
  const vec = V % 4 === 0;
  // Over the binding limit: ranges of rows; logits and dLogits windows share their shift.
  for (const [r0, r1] of mem.rowRanges(N, V, 'the logits')) {
    const wl = mem.window(logits, r0 * V, r1 * V), wd = mem.window(dl, r0 * V, r1 * V);
    const binds = [wl.bind, mem.bind(lse), mem.bind(targets), wd.bind];
    const params = [r1 - r0, vec ? V / 4 : V, dLoss / N, r0, vec ? wl.shift / 4 : wl.shift];
    runElems(env, vec ? CE_BWD4 : CE_BWD, binds, params, r1 - r0, 64);
  }
  return dl;
}
