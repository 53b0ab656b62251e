// GPU.js kernels for the attention pieces: partial rotary (GPT-NeoX rotate_half) and the
// causal softmax with its backward. Attention itself is composed (src/compose.ts).
// Omits: a fused attention kernel (no shared memory in GPU.js); on-device sin/cos.
//
// Dimension legend: B, T, H, D as in src/backend.ts; rd = rotaryDim, half = rd/2; G = B·H.
// NOTE: the rotary angles t·base^(−2i/rd) reach hundreds of radians, where a float32
// device sin/cos loses digits; the cos/sin tables are computed on the host in float64
// (src/ops/rotary.ts `rotaryTables`, the reference's own) and uploaded once per (len, rd, base).
// Row t sits at position off + t (z.offset, the KV-cache decode path); off is a kernel argument,
// not a constant, so decoding one token at a time does not compile a kernel per position.
// Sizes and parameters come checked from the op table (src/op-specs.ts).

import type { CausalSizes, RotaryOpSizes, RotaryParams } from '../../../src/backend.ts';
import { rotaryTables } from '../../../src/ops/rotary.ts';
import type { GHandle, Runtime } from '../runtime.ts';
import { blocks, divmod, inv, kernelSource, sum } from './snippets.ts';
import { upload } from './linalg.ts';

const ROTARY = kernelSource(['x', 'cs', 'sn', 'off'], `const i = this.thread.x;
  ${divmod('r1', 'd', 'i', 'D')}
  ${divmod('r2', 'h', 'r1', 'H')}
  ${divmod('bb', 'tr', 'r2', 'T')}
  const t = tr + off;
  const half = this.constants.half;
  let y = x[i];
  if (d < half) {
    const k = t * half + d;
    y = x[i] * cs[k] - x[i + half] * sn[k] * this.constants.sign;
  } else if (d < 2 * half) {
    const k = t * half + d - half;
    y = x[i] * cs[k] + x[i - half] * sn[k] * this.constants.sign;
  }
  return y;`);

/** Rows of positions an offset rotary needs: T without an offset (as before), else off + T
 *  rounded up to a power of two (decoding reuses a few tables, not one per position). */
function tableLength(off: number, T: number): number {
  return off === 0 ? T : 2 ** Math.ceil(Math.log2(off + T));
}

/** Host-computed cos/sin tables [len, half] of positions 0…len−1, once per (len, rd, base). */
function tables(rt: Runtime, len: number, p: RotaryParams): [GHandle, GHandle] {
  const key = `rotary:${len}:${p.rotaryDim}:${p.base}`;
  let t = rt.resident.get(key);
  if (!t) {
    const { cos, sin } = rotaryTables(len, p);
    const half = p.rotaryDim / 2;
    t = [upload(rt, Float32Array.from(cos), [len, half]), upload(rt, Float32Array.from(sin), [len, half])];
    rt.resident.set(key, t);
  }
  return [t[0], t[1]];
}

export function rotary(rt: Runtime, z: RotaryOpSizes, x: GHandle, p: RotaryParams, inverse: boolean): GHandle {
  const { T, H, D, offset: off } = z;
  if (x.size === 0) return rt.make(z.out);
  const half = p.rotaryDim / 2;
  if (half === 0) return rt.launch(`copy:${x.size}`, kernelSource(['a'], 'return a[this.thread.x];'), z.out, {}, [x]);
  const [cs, sn] = tables(rt, tableLength(off, T), p);
  const k = inv({ D, H, T, half, sign: inverse ? -1 : 1 }, 'D', 'H', 'T');
  // The table length is part of the key: GPU.js compiles a texture's size into the kernel.
  return rt.launch(`rotary:${x.shape}:${p.rotaryDim}:${p.base}:${inverse}:${cs.size}`, ROTARY, z.out, k, [x, cs, sn, off]);
}

/** Per row r = (g, i): lse_i = log Σ_{j≤i} e^{scale·s_ij} (max-shifted). */
const CAUSAL_LSE = kernelSource(['s'], `const r = this.thread.x;
  ${divmod('g', 'i', 'r', 'T')}
  const o = r * this.constants.T;
  const sc = this.constants.scale;
  let m = sc * s[o];
  for (let j = 1; j < this.constants.T; j++) { if (j <= i) { m = Math.max(m, sc * s[o + j]); } }
  ${sum('z', 'j', 'T', 'j <= i ? Math.exp(sc * s[o + j] - m) : 0.0')}
  return m + Math.log(z);`);

const CAUSAL_P = kernelSource(['s', 'lse'], `const x = this.thread.x;
  ${divmod('r', 'j', 'x', 'T')}
  ${divmod('g', 'i', 'r', 'T')}
  let p = 0.0;
  if (j <= i) { p = Math.exp(this.constants.scale * s[x] - lse[r]); }
  return p;`);

/** Per row: Σ_{j≤i} P·dP (masked entries of P are 0 already). */
const CAUSAL_DOT = kernelSource(['p', 'dP'], `const o = this.thread.x * this.constants.T;
  ${sum('acc', 'j', 'T', 'p[o + j] * dP[o + j]')}
  return acc;`);

const CAUSAL_DS = kernelSource(['p', 'dP', 'dot'], `const x = this.thread.x;
  ${divmod('r', 'j', 'x', 'T')}
  ${divmod('g', 'i', 'r', 'T')}
  let ds = 0.0;
  if (j <= i) { ds = this.constants.scale * p[x] * (dP[x] - dot[r]); }
  return ds;`);

export function causalSoftmax(rt: Runtime, z: CausalSizes, s: GHandle, scale: number): GHandle {
  const { G, T } = z;
  if (s.size === 0) return rt.make(z.out);
  const k = blocks(inv({ T, scale }, 'T'), 'T');
  const lse = rt.launch(`csLse:${G}:${T}:${scale}`, CAUSAL_LSE, [G * T], k, [s]);
  const p = rt.launch(`csP:${G}:${T}:${scale}`, CAUSAL_P, z.out, k, [s, lse]);
  rt.free(lse.store.data);
  return p;
}

export function causalSoftmaxBackward(rt: Runtime, z: CausalSizes, p: GHandle, dP: GHandle, scale: number): GHandle {
  const { G, T } = z;
  if (p.size === 0) return rt.make(z.out);
  const k = blocks(inv({ T, scale }, 'T'), 'T');
  const dot = rt.launch(`csDot:${G}:${T}`, CAUSAL_DOT, [G * T], k, [p, dP]);
  const dS = rt.launch(`csDS:${G}:${T}:${scale}`, CAUSAL_DS, z.out, k, [p, dP, dot]);
  rt.free(dot.store.data);
  return dS;
}
