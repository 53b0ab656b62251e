// Shared WGSL pieces for the WebGPU kernels: the erf-form GELU, workgroup reductions and the
// linear workgroup index of a 2-D-split launch, plus the host-side helpers every kernel uses
// and the one registry of kernel definitions (kernelDef).
// Omits: subgroup operations (not every adapter has them; these reductions are portable).

import type { GpuContext, KernelDef } from '../device.ts';
import type { Mem } from '../buffers.ts';

/** What a kernel wrapper needs: the device context and tensor memory. */
export interface Env {
  ctx: GpuContext;
  mem: Mem;
}

/**
 * GELU in the exact erf form, float32. erfc is the Chebyshev fit `erfcc` of W. H. Press et
 * al., Numerical Recipes in C, 2nd ed. (1992), §6.2: fractional error < 1.2e-7 everywhere
 * (measured 1.05e-7 against src/ops/erf.ts over [−9, 9]). Using erfc for Φ keeps gelu's
 * relative accuracy for negative x, like the CPU reference (src/ops/gelu.ts).
 */
export const WGSL_GELU = geluWGSL('f32', '');

/** The GELU functions above for T (f32 or vec4<f32>), their names suffixed with sfx. */
export function geluWGSL(T: string, sfx: string): string {
  return /* wgsl */ `
fn erfc${sfx}(x: ${T}) -> ${T} {
  let z = abs(x);
  let t = 1.0 / (1.0 + 0.5 * z);
  let poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
    t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
    t * (-0.82215223 + t * 0.17087277))))))));
  let r = t * exp(-z * z + poly);
  return select(2.0 - r, r, x >= ${T}(0.0));
}
fn normal_cdf${sfx}(x: ${T}) -> ${T} { return 0.5 * erfc${sfx}(-x * 0.70710678118654752); }
fn gelu${sfx}(x: ${T}) -> ${T} { return x * normal_cdf${sfx}(x); }
fn gelu_grad${sfx}(x: ${T}) -> ${T} {
  return normal_cdf${sfx}(x) + x * 0.39894228040143268 * exp(-0.5 * x * x);
}
`;
}

/**
 * How a row kernel maps rows to invocations: `tpr` invocations per row, `rpw` rows per
 * workgroup. 'gpu' style: a workgroup per row (64–256 invocations, tree reductions in
 * workgroup memory). 'cpu' style: one invocation per row, 64 rows per workgroup, no barriers.
 */
export interface RowLayout {
  tpr: number;
  rpw: number;
}

export function rowLayout(env: Env, cols: number): RowLayout {
  return env.ctx.style === 'cpu' ? { tpr: 1, rpw: 64 } : { tpr: rowWorkgroup(cols), rpw: 1 };
}

export function layoutKey(l: RowLayout): string {
  return `${l.tpr}x${l.rpw}`;
}

/**
 * WGSL for a row kernel with layout l: module-scope `wg_sum`/`wg_max` (reductions over the
 * tpr invocations of a row; identity when tpr = 1) and `rowMain(params)`, a compute entry
 * header defining `lane` (0…tpr−1, the stride of a row loop), `row` (clamped to the last
 * row so that every invocation reaches the barriers) and `live` (whether row is real; guard
 * every write with it). Uniform control flow is kept: no early return.
 */
export function wgslRows(l: RowLayout): { decls: string; main: string } {
  const wg = l.tpr * l.rpw;
  const main = /* wgsl */ `@compute @workgroup_size(${wg})
fn main(${WGSL_MAIN_1D}) {
  ${WGSL_WGID}
  let lane = li % ${l.tpr}u;
  let row0 = wgid * ${l.rpw}u + li / ${l.tpr}u;
  let live = row0 < p.rows;
  let row = min(row0, p.rows - 1u);`;
  if (l.tpr === 1) {
    const decls = 'fn wg_sum(v: f32, li: u32) -> f32 { return v; }\nfn wg_max(v: f32, li: u32) -> f32 { return v; }';
    return { main, decls };
  }
  const tree = (op: string) => /* wgsl */ `
  red[li] = v;
  workgroupBarrier();
  for (var s = ${l.tpr / 2}u; s > 0u; s = s >> 1u) {
    if (li % ${l.tpr}u < s) { red[li] = ${op}; }
    workgroupBarrier();
  }
  let r = red[li - li % ${l.tpr}u];
  workgroupBarrier();
  return r;`;
  return {
    main,
    decls: /* wgsl */ `var<workgroup> red: array<f32, ${wg}>;
fn wg_sum(v: f32, li: u32) -> f32 {${tree('red[li] + red[li + s]')}
}
fn wg_max(v: f32, li: u32) -> f32 {${tree('max(red[li], red[li + s])')}
}`,
  };
}

/**
 * Workgroup reductions over all WG threads (WG a power of two), for single-workgroup
 * kernels. Call from uniform control flow; `li` is local_invocation_index.
 */
export function wgslReduce(wg: number): string {
  return wgslRows({ tpr: wg, rpw: 1 }).decls;
}

/** Builtins of a kernel launched with ctx.grid1D: `wgid` is the linear workgroup index. */
export const WGSL_MAIN_1D = /* wgsl */ `@builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) li: u32`;
export const WGSL_WGID = 'let wgid = wid.y * nwg.x + wid.x;';

/** Threads per workgroup for a row kernel over rows of `cols` elements. */
export function rowWorkgroup(cols: number): number {
  return cols <= 128 ? 64 : cols <= 2048 ? 128 : 256;
}

/** Launches the row kernel def over `rows` rows with layout l. */
export function runRows(
  env: Env, def: Parameters<GpuContext['run']>[0], bindings: Parameters<GpuContext['run']>[1],
  params: readonly number[], rows: number, l: RowLayout,
): void {
  env.ctx.run(def, bindings, params, env.ctx.grid1D(Math.ceil(rows / l.rpw)));
}

/** Launches ceil(n / wg) workgroups of wg threads, one thread per element. */
export function runElems(
  env: Env, def: Parameters<GpuContext['run']>[0], bindings: Parameters<GpuContext['run']>[1],
  params: readonly number[], n: number, wg = 256,
): void {
  env.ctx.run(def, bindings, params, env.ctx.grid1D(Math.ceil(n / wg)));
}

/** A registered kernel and the generators (by source text) checked to give its WGSL. */
interface Registered {
  def: KernelDef;
  makers: Set<string>;
}
const kernelDefs = new Map<string, Registered>();

/**
 * The kernel named `key`, its WGSL built by `make` on first use: the only cache of kernel
 * definitions (device.ts caches pipelines by key, groups.ts bind groups). A key is unique
 * across files; reusing one with other params, or from a generator whose WGSL differs,
 * throws (two kernels sharing a key is a bug: the second would run the first's pipeline).
 * NOTE: generators are told apart by their source text; each is rebuilt and compared on its
 * first reuse of a key only, not on every call (a rowcast or subgroup matmul takes ~50 µs to
 * build, measured, against ~3 µs to encode its dispatch). So a key that omits an input of its
 * own generator is caught only when that first reuse has a different input.
 */
export function kernelDef(key: string, params: string, make: () => string): KernelDef {
  const r = kernelDefs.get(key);
  if (!r) {
    const def = { key, params, wgsl: make() } as KernelDef;
    kernelDefs.set(key, { def, makers: new Set() });
    return def;
  }
  if (r.def.params !== params) {
    throw new Error(`kernelDef: key '${key}' reused with params '${params}', registered with '${r.def.params}'`);
  }
  const maker = make.toString();
  if (!r.makers.has(maker)) {
    if (make() !== r.def.wgsl) throw new Error(`kernelDef: key '${key}' reused for a kernel with different WGSL`);
    r.makers.add(maker);
  }
  return r.def;
}
