// Causal softmax over the last dim of (…, T, T) scores, forward and backward, one workgroup
// per row; row i (i = row mod T) keeps columns j ≤ i (spec/ops/causal_softmax.md).
// Omits: padding masks, key length ≠ query length.

import { check as assert } from '../../../src/errors.ts';
import type { GHandle } from '../buffers.ts';
import { WGSL_MAIN_1D, WGSL_WGID, rowWorkgroup, rowsCols, runRows, sameShape, wgslReduce, type Env } from './common.ts';

type Def = { key: string; params: string; wgsl: string };
const defs = new Map<string, Def>();

function def(wg: number, backward: boolean): Def {
  const key = `causal_softmax_${backward ? 'bwd' : 'fwd'}_${wg}`;
  let d = defs.get(key);
  if (d) return d;
  const binds = backward
    ? `@group(0) @binding(1) var<storage, read> pr: array<f32>;
@group(0) @binding(2) var<storage, read> dP: array<f32>;
@group(0) @binding(3) var<storage, read_write> dS: array<f32>;`
    : `@group(0) @binding(1) var<storage, read> s: array<f32>;
@group(0) @binding(2) var<storage, read_write> pr: array<f32>;`;
  const body = backward
    ? `
  var dot = 0.0;
  for (var j = li; j <= t; j = j + ${wg}u) { dot = dot + pr[o + j] * dP[o + j]; }
  dot = wg_sum(dot, li);
  for (var j = li; j < p.T; j = j + ${wg}u) {
    dS[o + j] = select(0.0, p.scale * pr[o + j] * (dP[o + j] - dot), j <= t);
  }`
    : `
  var mx = -0x1.fffffep+127f;
  for (var j = li; j <= t; j = j + ${wg}u) { mx = max(mx, p.scale * s[o + j]); }
  mx = wg_max(mx, li);
  var z = 0.0;
  for (var j = li; j <= t; j = j + ${wg}u) { z = z + exp(p.scale * s[o + j] - mx); }
  z = wg_sum(z, li);
  for (var j = li; j < p.T; j = j + ${wg}u) {
    pr[o + j] = select(0.0, exp(p.scale * s[o + j] - mx) / z, j <= t);
  }`;
  const wgsl = /* wgsl */ `
struct P { rows: u32, T: u32, scale: f32, pad: u32 }
@group(0) @binding(0) var<uniform> p: P;
${binds}
${wgslReduce(wg)}
@compute @workgroup_size(${wg})
fn main(${WGSL_MAIN_1D}) {
  ${WGSL_WGID}
  if (wgid >= p.rows) { return; }
  let t = wgid % p.T;
  let o = wgid * p.T;
  ${body}
}`;
  defs.set(key, (d = { key, params: 'uufu', wgsl }));
  return d;
}

function check(s: GHandle, op: string): { rows: number; T: number } {
  const { rows, cols } = rowsCols(s.shape);
  assert(s.shape.length >= 2 && s.shape[s.shape.length - 2] === cols, () => `${op}: want (…, T, T) scores, got [${s.shape}]`);
  return { rows, T: cols };
}

/** P = causal softmax of scale·s. */
export function causalSoftmax(env: Env, s: GHandle, scale: number): GHandle {
  const { rows, T } = check(s, 'causalSoftmax');
  const pr = env.mem.alloc(s.shape);
  runRows(env, def(rowWorkgroup(T), false), [env.mem.bind(s), env.mem.bind(pr)], [rows, T, scale, 0], rows);
  return pr;
}

/** dS (w.r.t. the unscaled s) from P and dP. */
export function causalSoftmaxBackward(env: Env, pr: GHandle, dP: GHandle, scale: number): GHandle {
  sameShape(pr, dP, 'causalSoftmaxBackward');
  const { rows, T } = check(pr, 'causalSoftmaxBackward');
  const dS = env.mem.alloc(pr.shape);
  const binds = [env.mem.bind(pr), env.mem.bind(dP), env.mem.bind(dS)];
  runRows(env, def(rowWorkgroup(T), true), binds, [rows, T, scale, 0], rows);
  return dS;
}
