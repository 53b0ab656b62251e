// AdamW (decoupled decay) in place on param, m, v, with the global-norm clip coefficient
// computed on the device from gradNormSq (a [] tensor from sumSquares): a training step
// needs no readback. Order and formulas follow src/ops/adamw.ts (spec/ops/adamw.md).
// Omits: amsgrad, per-group settings (the caller passes weightDecay per parameter).
// NOTE: bias corrections and the decay factor are computed in float64 on the host and
// rounded to f32 once; the update itself is f32.

import type { AdamWParams, AdamWSizes } from '../../../src/backend.ts';
import type { GHandle } from '../buffers.ts';
import type { KernelDef } from '../device.ts';
import { WGSL_MAIN_1D, WGSL_WGID, kernelDef, runElems, type Env } from './common.ts';
import { PER } from './elementwise.ts';

function adamwDef(clip: boolean, vec: boolean): KernelDef {
  const T = vec ? 'vec4<f32>' : 'f32';
  return kernelDef(`adamw_${clip ? 'clip' : 'noclip'}_${vec ? 'v4' : 's'}`, 'ufffffffff', () => /* wgsl */ `
struct P { n: u32, lr: f32, b1: f32, b2: f32, eps: f32, decay: f32, bc1: f32, bc2: f32, scale: f32, maxNorm: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> param: array<${T}>;
@group(0) @binding(2) var<storage, read> grad: array<${T}>;
@group(0) @binding(3) var<storage, read_write> m: array<${T}>;
@group(0) @binding(4) var<storage, read_write> v: array<${T}>;
${clip ? '@group(0) @binding(5) var<storage, read> gns: array<f32>;' : ''}
@compute @workgroup_size(256)
fn main(${WGSL_MAIN_1D}) {
  ${WGSL_WGID}
  ${clip ? 'let coef = min(1.0, p.maxNorm / (sqrt(gns[0]) + 1e-6));' : 'let coef = 1.0;'}
  for (var q = 0u; q < ${PER}u; q = q + 1u) {
    let i = (wgid * ${PER}u + q) * 256u + li;
    if (i < p.n) {
      let g = p.scale * coef * grad[i];
      let mi = p.b1 * m[i] + (1.0 - p.b1) * g;
      let vi = p.b2 * v[i] + (1.0 - p.b2) * g * g;
      m[i] = mi;
      v[i] = vi;
      param[i] = param[i] * p.decay - (p.lr * (mi / p.bc1)) / (sqrt(vi / p.bc2) + p.eps);
    }
  }
}`);
}
const DEFS = [adamwDef(false, false), adamwDef(false, true), adamwDef(true, false), adamwDef(true, true)];

/** One in-place AdamW step (see src/ops/adamw.ts for the order of operations). */
export function adamw(
  env: Env, z: AdamWSizes, param: GHandle, grad: GHandle, m: GHandle, v: GHandle, p: AdamWParams, gradNormSq: GHandle | null,
): void {
  const clip = p.maxGradNorm > 0; // the op table checked gradNormSq is given then
  const { mem } = env;
  const vec = z.size % 4 === 0; // vec4 loads: 4× fewer memory ops
  const rest = [
    p.lr, p.beta1, p.beta2, p.eps, 1 - p.lr * p.weightDecay,
    1 - Math.pow(p.beta1, p.step), 1 - Math.pow(p.beta2, p.step), p.gradScale, p.maxGradNorm,
  ];
  // Over the binding limit: aligned element ranges, one dispatch each (mem.ranges).
  for (const [lo, hi] of mem.ranges(z.size)) {
    const binds = [param, grad, m, v].map((t) => mem.window(t, lo, hi).bind);
    if (clip) binds.push(mem.bind(gradNormSq!));
    const n = vec ? (hi - lo) / 4 : hi - lo;
    runElems(env, DEFS[(clip ? 2 : 0) + (vec ? 1 : 0)], binds, [n, ...rest], Math.ceil(n / PER));
  }
}
