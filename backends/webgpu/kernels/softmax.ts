// Causal softmax over the last dim of (…, T, T) scores, forward and backward, a workgroup or
// an invocation per row (common.ts RowLayout); row i (i = row mod T) keeps columns j ≤ i (spec/ops/causal_softmax.md).
// Scores over the binding limit are processed in ranges of rows (mem.rowRanges).
// Omits: padding masks, key length ≠ query length.

import type { CausalSizes } from '../../../src/backend.ts';
import type { GHandle } from '../buffers.ts';
import type { KernelDef } from '../device.ts';
import { kernelDef, layoutKey, rowLayout, runRows, wgslRows, type Env, type RowLayout } from './common.ts';

function def(l: RowLayout, backward: boolean): KernelDef {
  return kernelDef(`causal_softmax_${backward ? 'bwd' : 'fwd'}_${layoutKey(l)}`, 'uufuu', () => softmaxWGSL(l, backward));
}

function softmaxWGSL(l: RowLayout, backward: boolean): string {
  const loop = (end: string, body: string) => `for (var j = lane; j ${end}; j = j + ${l.tpr}u) { ${body} }`;
  const binds = backward
    ? `@group(0) @binding(1) var<storage, read> pr: array<f32>;
@group(0) @binding(2) var<storage, read> dP: array<f32>;
@group(0) @binding(3) var<storage, read_write> dS: array<f32>;`
    : `@group(0) @binding(1) var<storage, read> s: array<f32>;
@group(0) @binding(2) var<storage, read_write> pr: array<f32>;`;
  const body = backward
    ? `
  var dot = 0.0;
  ${loop('<= t', 'dot = dot + pr[o + j] * dP[o + j];')}
  dot = wg_sum(dot, li);
  if (live) { ${loop('< p.T', 'dS[o + j] = select(0.0, p.scale * pr[o + j] * (dP[o + j] - dot), j <= t);')} }`
    : `
  var mx = -0x1.fffffep+127f;
  ${loop('<= t', 'mx = max(mx, p.scale * s[o + j]);')}
  mx = wg_max(mx, li);
  var z = 0.0;
  ${loop('<= t', 'z = z + exp(p.scale * s[o + j] - mx);')}
  z = wg_sum(z, li);
  if (live) { ${loop('< p.T', 'pr[o + j] = select(0.0, exp(p.scale * s[o + j] - mx) / z, j <= t);')} }`;
  const { decls, main } = wgslRows(l);
  return /* wgsl */ `
struct P { rows: u32, T: u32, scale: f32, r0: u32, lo: u32 }
@group(0) @binding(0) var<uniform> p: P;
${binds}
${decls}
${main}
  let t = (p.r0 + row) % p.T;
  let o = p.lo + row * p.T;
  ${body}
}`;
}

/** P = causal softmax of scale·s: z.G groups of T × T. */
export function causalSoftmax(env: Env, z: CausalSizes, s: GHandle, scale: number): GHandle {
  const { T } = z, rows = z.G * T;
  const { mem } = env;
  const pr = mem.alloc(z.out);
  const l = rowLayout(env, T);
  // Over the binding limit: ranges of rows, every tensor windowed alike (the same shift).
  for (const [r0, r1] of mem.rowRanges(rows, T, 'the scores')) {
    const ws = mem.window(s, r0 * T, r1 * T), wp = mem.window(pr, r0 * T, r1 * T);
    runRows(env, def(l, false), [ws.bind, wp.bind], [r1 - r0, T, scale, r0, ws.shift], r1 - r0, l);
  }
  return pr;
}

/** dS (w.r.t. the unscaled s) from P and dP. */
export function causalSoftmaxBackward(env: Env, z: CausalSizes, pr: GHandle, dP: GHandle, scale: number): GHandle {
  const { T } = z, rows = z.G * T;
  const { mem } = env;
  const dS = mem.alloc(z.out);
  const l = rowLayout(env, T);
  for (const [r0, r1] of mem.rowRanges(rows, T, 'the scores')) {
    const w = [pr, dP, dS].map((t) => mem.window(t, r0 * T, r1 * T));
    runRows(env, def(l, true), w.map((x) => x.bind), [r1 - r0, T, scale, r0, w[0].shift], r1 - r0, l);
  }
  return dS;
}
