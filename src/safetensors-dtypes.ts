// Safetensors dtypes: element sizes, which ones we read, and decoding little-endian bytes into
// Float32Array (F32, F16, BF16) or Int32Array (I32, I64 in range, I16, U16, I8, U8, BOOL);
// and the inverse, encoding those arrays into any of these dtypes (float32 → binary16 and
// bfloat16 rounded to nearest even, exactly as torch's .half() and .bfloat16() do).
// Omits: F64, U32/U64 and the F8 formats (recognised, rejected with a clear message).

import { UserError } from './errors.ts';

/** Bytes per element of every dtype the format defines (so unknown ≠ unsupported). */
export const ITEMSIZE: Record<string, number> = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1, F8_E8M0: 1,
  I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4,
  I64: 8, U64: 8, F64: 8,
};
/** Read into Float32Array (floats) or, losslessly, Int32Array (integers and BOOL). */
export const READABLE = new Set(['F32', 'F16', 'BF16', 'I32', 'I64', 'I16', 'U16', 'I8', 'U8', 'BOOL']);
export const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** One-line message: collapses whitespace and truncates long detail. */
export function oneLine(s: string, max = 240): string {
  const t = s.replace(/\s+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max)}…` : t;
}

export function fail(source: string, problem: string): never {
  throw new UserError(oneLine(`${source}: ${problem}`, 400));
}

/** A tensor name for messages: JSON-quoted (escapes control chars), truncated. */
export function q(name: string): string {
  return oneLine(JSON.stringify(name), 80);
}

// ---------------------------------------------------------------------------------- decoding

let f16Table: Float32Array | null = null;

/** IEEE 754 binary16 → number, for every one of the 65536 bit patterns (built once). */
function halfTable(): Float32Array {
  if (f16Table) return f16Table;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    let v: number;
    if (exp === 0) v = mant * 2 ** -24; // zero and subnormals: mant · 2^-14 · 2^-10
    else if (exp === 31) v = mant === 0 ? Infinity : NaN;
    else v = (1 + mant / 1024) * 2 ** (exp - 15);
    t[h] = sign * v;
  }
  f16Table = t;
  return t;
}

/** binary16 bits → value (exported for tests). */
export function f16ToNumber(bits: number): number {
  return halfTable()[bits & 0xffff];
}

/** bfloat16 bits → value: the top half of a float32 (exported for tests). */
export function bf16ToNumber(bits: number): number {
  const u = new Uint32Array([(bits & 0xffff) << 16]);
  return new Float32Array(u.buffer)[0];
}

/** A fresh, aligned copy. NOTE: not `bytes.slice`: on a Node Buffer that is a view of a pool. */
function copyBytes(bytes: Uint8Array, off: number, len: number): ArrayBuffer {
  const out = new Uint8Array(len);
  out.set(bytes.subarray(off, off + len));
  return out.buffer;
}

/** Decodes `count` elements of `dtype` starting at bytes[off]. Lengths are pre-validated. */
export function decode(
  bytes: Uint8Array, off: number, count: number, dtype: string, source: string, name: string,
): Float32Array | Int32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset + off, count * ITEMSIZE[dtype]);
  switch (dtype) {
    case 'F32': {
      if (LITTLE_ENDIAN) return new Float32Array(copyBytes(bytes, off, 4 * count));
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
      return out;
    }
    case 'I32': {
      if (LITTLE_ENDIAN) return new Int32Array(copyBytes(bytes, off, 4 * count));
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt32(4 * i, true);
      return out;
    }
    case 'F16': {
      const table = halfTable();
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = table[view.getUint16(2 * i, true)];
      return out;
    }
    case 'BF16': {
      const out = new Float32Array(count);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) bits[i] = view.getUint16(2 * i, true) << 16;
      return out;
    }
    case 'I64': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) {
        const lo = view.getInt32(8 * i, true);
        const hi = view.getInt32(8 * i + 4, true);
        // In int32 range iff the high word is the sign extension of the low word.
        if (hi !== lo >> 31) {
          const v = view.getBigInt64(8 * i, true);
          fail(source, `tensor ${q(name)}: I64 value ${v} at index ${i} is outside the int32 range`);
        }
        out[i] = lo;
      }
      return out;
    }
    case 'BOOL':
    case 'U8':
      return Int32Array.from(bytes.subarray(off, off + count));
    case 'I8':
      return Int32Array.from(new Int8Array(copyBytes(bytes, off, count)));
    case 'I16':
    case 'U16': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = dtype === 'I16' ? view.getInt16(2 * i, true) : view.getUint16(2 * i, true);
      return out;
    }
    default:
      return fail(source, `tensor ${q(name)}: unsupported dtype ${dtype}`);
  }
}

// ---------------------------------------------------------------------------------- encoding

/** Dtypes `encode` writes: the readable ones (every one round-trips through `decode`). */
export const WRITABLE = READABLE;

const f32Bits = new Uint32Array(1);
const f32View = new Float32Array(f32Bits.buffer);

/** The IEEE bits of a float32 value (numbers are rounded to float32 first). */
export function f32ToBits(v: number): number {
  f32View[0] = v;
  return f32Bits[0];
}

/**
 * float32 bits → binary16 bits, round to nearest even (torch's c10::Half conversion): overflow
 * gives ±∞, values below half the smallest subnormal (2⁻²⁵) give ±0, and NaN the quiet NaN
 * 0x7E00 with the sign kept.
 */
export function f32BitsToF16(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | (mant !== 0 ? 0x7e00 : 0x7c00);
  const e = exp - 127 + 15; // the binary16 biased exponent
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // below 2⁻²⁵: rounds to zero
    const m = mant | 0x800000; // 24 bits with the implicit one
    const shift = 14 - e; // 14..24
    let h = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (h & 1) === 1)) h++;
    return sign | h; // a carry into bit 10 is the smallest normal, as it should be
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++; // a carry may reach ∞: correct
  return sign | h;
}

/**
 * float32 bits → bfloat16 bits, round to nearest even (torch's c10::BFloat16 conversion);
 * NaN becomes 0x7FC0. NOTE: torch's vectorized CPU kernels write NaN as 0xFFFF instead; both
 * decode to NaN, which is all any reader can rely on.
 */
export function f32BitsToBf16(x: number): number {
  if ((x & 0x7fffffff) > 0x7f800000) return 0x7fc0;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** `data` as little-endian bytes of `dtype` (lengths and ranges are the caller's). */
export function encode(data: Float32Array | Int32Array, dtype: string): Uint8Array {
  const n = data.length;
  const out = new Uint8Array(n * ITEMSIZE[dtype]);
  const dv = new DataView(out.buffer);
  switch (dtype) {
    case 'F32':
    case 'I32':
      if (LITTLE_ENDIAN) {
        out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
        return out;
      }
      for (let i = 0; i < n; i++) {
        if (data instanceof Float32Array) dv.setFloat32(4 * i, data[i], true);
        else dv.setInt32(4 * i, data[i], true);
      }
      return out;
    case 'F16':
    case 'BF16': {
      const bits = data instanceof Float32Array ? new Uint32Array(data.buffer, data.byteOffset, n) : null;
      const conv = dtype === 'F16' ? f32BitsToF16 : f32BitsToBf16;
      for (let i = 0; i < n; i++) dv.setUint16(2 * i, conv(bits ? bits[i] : f32ToBits(data[i])), true);
      return out;
    }
    case 'I64':
      for (let i = 0; i < n; i++) {
        dv.setInt32(8 * i, data[i], true);
        dv.setInt32(8 * i + 4, data[i] < 0 ? -1 : 0, true);
      }
      return out;
    case 'I16':
    case 'U16':
      for (let i = 0; i < n; i++) dv.setUint16(2 * i, data[i] & 0xffff, true);
      return out;
    case 'I8':
    case 'U8':
    case 'BOOL':
      for (let i = 0; i < n; i++) out[i] = data[i] & 0xff;
      return out;
    default:
      throw new UserError(`cannot write dtype ${dtype}`);
  }
}
