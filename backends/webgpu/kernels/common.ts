// Shared WGSL pieces for the WebGPU kernels: the erf-form GELU, workgroup reductions and the
// linear workgroup index of a 2-D-split launch, plus the host-side helpers every kernel uses.
// Omits: subgroup operations (not every adapter has them; these reductions are portable).

import type { Shape } from '../../../src/backend.ts';
import { check } from '../../../src/errors.ts';
import type { GpuContext } from '../device.ts';
import type { GHandle, Mem } from '../buffers.ts';

/** What a kernel wrapper needs: the device context and tensor memory. */
export interface Env {
  ctx: GpuContext;
  mem: Mem;
}

/** The leading-dims product and last dim of a shape ([] counts as 1 × 1). */
export function rowsCols(shape: Shape): { rows: number; cols: number } {
  const cols = shape.length ? shape[shape.length - 1] : 1;
  let rows = 1;
  for (let i = 0; i < shape.length - 1; i++) rows *= shape[i];
  return { rows, cols };
}

export function sameShape(a: GHandle, b: GHandle, op: string): void {
  check(a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i]),
    () => `${op}: shapes [${a.shape}] and [${b.shape}] differ`);
}

/**
 * GELU in the exact erf form, float32. erfc is the Chebyshev fit `erfcc` of W. H. Press et
 * al., Numerical Recipes in C, 2nd ed. (1992), §6.2: fractional error < 1.2e-7 everywhere
 * (measured 1.05e-7 against src/ops/erf.ts over [−9, 9]). Using erfc for Φ keeps gelu's
 * relative accuracy for negative x, like the CPU reference (src/ops/gelu.ts).
 */
export const WGSL_GELU = /* wgsl */ `
fn erfc_f32(x: f32) -> f32 {
  let z = abs(x);
  let t = 1.0 / (1.0 + 0.5 * z);
  let poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
    t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
    t * (-0.82215223 + t * 0.17087277))))))));
  let r = t * exp(-z * z + poly);
  return select(2.0 - r, r, x >= 0.0);
}
fn normal_cdf(x: f32) -> f32 { return 0.5 * erfc_f32(-x * 0.70710678118654752); }
fn gelu(x: f32) -> f32 { return x * normal_cdf(x); }
fn gelu_grad(x: f32) -> f32 {
  return normal_cdf(x) + x * 0.39894228040143268 * exp(-0.5 * x * x);
}
`;

/**
 * Workgroup reductions over WG threads (WG a power of two). Must be called from uniform
 * control flow by every thread of the workgroup; `li` is local_invocation_index.
 */
export function wgslReduce(wg: number): string {
  return /* wgsl */ `
var<workgroup> red: array<f32, ${wg}>;
fn wg_sum(v: f32, li: u32) -> f32 {
  red[li] = v;
  workgroupBarrier();
  for (var s = ${wg / 2}u; s > 0u; s = s >> 1u) {
    if (li < s) { red[li] = red[li] + red[li + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}
fn wg_max(v: f32, li: u32) -> f32 {
  red[li] = v;
  workgroupBarrier();
  for (var s = ${wg / 2}u; s > 0u; s = s >> 1u) {
    if (li < s) { red[li] = max(red[li], red[li + s]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}
`;
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

/** Launches one workgroup per row. */
export function runRows(
  env: Env, def: Parameters<GpuContext['run']>[0], bindings: Parameters<GpuContext['run']>[1],
  params: readonly number[], rows: number,
): void {
  env.ctx.run(def, bindings, params, env.ctx.grid1D(rows));
}

/** Launches ceil(n / wg) workgroups of wg threads, one thread per element. */
export function runElems(
  env: Env, def: Parameters<GpuContext['run']>[0], bindings: Parameters<GpuContext['run']>[1],
  params: readonly number[], n: number, wg = 256,
): void {
  env.ctx.run(def, bindings, params, env.ctx.grid1D(Math.ceil(n / wg)));
}
