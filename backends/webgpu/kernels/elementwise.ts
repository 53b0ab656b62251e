// Elementwise and index-map kernels: add, permute0213, rotary (GPT-NeoX rotate_half).
// Omits: broadcasting (the contract has none), position offsets for rotary.

import { check } from '../../../src/errors.ts';
import type { RotaryParams } from '../../../src/backend.ts';
import { rotaryTables } from '../../../src/ops/rotary.ts';
import type { GHandle } from '../buffers.ts';
import { WGSL_MAIN_1D, WGSL_WGID, runElems, sameShape, type Env } from './common.ts';

const ADD = {
  key: 'add',
  params: 'u',
  wgsl: /* wgsl */ `
struct P { n: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(256)
fn main(${WGSL_MAIN_1D}) {
  ${WGSL_WGID}
  let i = wgid * 256u + li;
  if (i < p.n) { y[i] = a[i] + b[i]; }
}`,
};

/** y = a + b, equal shapes. */
export function add(env: Env, a: GHandle, b: GHandle): GHandle {
  sameShape(a, b, 'add');
  const y = env.mem.alloc(a.shape);
  runElems(env, ADD, [env.mem.bind(a), env.mem.bind(b), env.mem.bind(y)], [a.size], a.size);
  return y;
}

const PERMUTE = {
  key: 'permute0213',
  params: 'uuuuu',
  wgsl: /* wgsl */ `
struct P { n: u32, B: u32, C: u32, D: u32, pad: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(256)
fn main(${WGSL_MAIN_1D}) {
  ${WGSL_WGID}
  let o = wgid * 256u + li; // index into y (a, c, b, d)
  if (o >= p.n) { return; }
  let d = o % p.D;
  let r = o / p.D;
  let bi = r % p.B;
  let r2 = r / p.B;
  let ci = r2 % p.C;
  let ai = r2 / p.C;
  y[o] = x[((ai * p.B + bi) * p.C + ci) * p.D + d];
}`,
};

/** [a, b, c, d] → [a, c, b, d]. */
export function permute0213(env: Env, x: GHandle): GHandle {
  check(x.shape.length === 4, () => `permute0213: want a 4-D tensor, got [${x.shape}]`);
  const [A, B, C, D] = x.shape;
  const y = env.mem.alloc([A, C, B, D]);
  runElems(env, PERMUTE, [env.mem.bind(x), env.mem.bind(y)], [x.size, B, C, D, 0], x.size);
  return y;
}

const ROTARY = {
  key: 'rotary',
  params: 'uuuuuf',
  wgsl: /* wgsl */ `
struct P { n: u32, T: u32, H: u32, D: u32, half: u32, sign: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> cs: array<vec2<f32>>; // (T, half): cos, sin
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(256)
fn main(${WGSL_MAIN_1D}) {
  ${WGSL_WGID}
  let i = wgid * 256u + li;
  if (i >= p.n) { return; }
  let d = i % p.D;
  let t = (i / (p.D * p.H)) % p.T;
  if (d >= 2u * p.half) { y[i] = x[i]; return; }
  let j = d % p.half;
  let r = cs[t * p.half + j];
  let s = p.sign * r.y;
  if (d < p.half) {
    y[i] = x[i] * r.x - x[i + p.half] * s;
  } else {
    y[i] = x[i] * r.x + x[i - p.half] * s;
  }
}`,
};

/** Rotary tables (T, half) as interleaved cos/sin, computed once per (T, rd, base). */
function tables(env: Env, cache: Map<string, GHandle>, T: number, p: RotaryParams): GHandle {
  const key = `${T}/${p.rotaryDim}/${p.base}`;
  let t = cache.get(key);
  if (!t) {
    const { cos, sin } = rotaryTables(T, p); // float64, as the CPU reference
    const cs = new Float32Array(2 * cos.length);
    for (let i = 0; i < cos.length; i++) { cs[2 * i] = cos[i]; cs[2 * i + 1] = sin[i]; }
    t = env.mem.upload(cs, [cos.length, 2], 'f32');
    cache.set(key, t);
  }
  return t;
}

/** Returns the rotary kernel with its table cache (freed by the returned `free`). */
export function makeRotary(env: Env) {
  const cache = new Map<string, GHandle>();
  return {
    rotary(x: GHandle, p: RotaryParams, inverse: boolean): GHandle {
      check(x.shape.length === 4, () => `rotary: want [B, T, H, D], got [${x.shape}]`);
      const [, T, H, D] = x.shape;
      check(Number.isInteger(p.rotaryDim) && p.rotaryDim >= 0 && p.rotaryDim % 2 === 0 && p.rotaryDim <= D,
        () => `rotary: rotaryDim must be even and in [0, ${D}], got ${p.rotaryDim}`);
      check(p.base > 0, () => `rotary: base must be > 0, got ${p.base}`);
      const y = env.mem.alloc(x.shape);
      if (p.rotaryDim === 0) {
        runElems(env, ROTARY, [env.mem.bind(x), env.mem.bind(tables(env, cache, 1, { ...p, rotaryDim: 2 })), env.mem.bind(y)],
          [x.size, T, H, D, 0, 1], x.size);
        return y;
      }
      const cs = tables(env, cache, T, p);
      const binds = [env.mem.bind(x), env.mem.bind(cs), env.mem.bind(y)];
      runElems(env, ROTARY, binds, [x.size, T, H, D, p.rotaryDim / 2, inverse ? -1 : 1], x.size);
      return y;
    },
    free(): void {
      for (const t of cache.values()) env.mem.dispose(t);
      cache.clear();
    },
  };
}
