// Tests for src/safetensors.ts and src/atomic.ts: round trips, F16/BF16 decoding against known
// bit patterns, every validation rule, and fuzzing that malformed input is always a UserError.

import { describe, expect, it } from 'vitest';
import { fc, test } from '@fast-check/vitest';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  bf16ToNumber, f16ToNumber, findDuplicateKey, parseSafetensors, readSafetensors,
  serializeSafetensors, writeSafetensorsAtomic, type TensorIn,
} from '../src/safetensors.ts';
import { writeFileAtomic } from '../src/atomic.ts';
import { UserError } from '../src/errors.ts';

/** A file from a header (object or raw JSON text) and a data section. */
function build(header: unknown, data: Uint8Array = new Uint8Array(0), lenOverride?: bigint): Uint8Array {
  const text = typeof header === 'string' ? header : JSON.stringify(header);
  const h = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, lenOverride ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

function u16le(values: number[]): Uint8Array {
  const b = new Uint8Array(values.length * 2);
  const dv = new DataView(b.buffer);
  values.forEach((v, i) => dv.setUint16(2 * i, v, true));
  return b;
}

/** Runs fn and returns the UserError it throws (failing if it throws anything else or nothing). */
function userError(fn: () => unknown): UserError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    expect((e as Error).message).not.toMatch(/\n/);
    return e as UserError;
  }
  throw new Error('expected a UserError, got none');
}

function sameBits(a: Float32Array | Int32Array, b: Float32Array | Int32Array): boolean {
  const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

const shapeArb = fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 4 });
const tensorArb: fc.Arbitrary<TensorIn> = shapeArb.chain((shape) => {
  const n = shape.reduce((a, b) => a * b, 1);
  return fc.oneof(
    fc.array(fc.float(), { minLength: n, maxLength: n }).map((v) => ({ shape, data: new Float32Array(v) })),
    fc.array(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), { minLength: n, maxLength: n })
      .map((v) => ({ shape, data: new Int32Array(v) })),
  );
});
const nameArb = fc.string({ unit: 'grapheme', maxLength: 12 }).filter((s) => s !== '__metadata__');

describe('safetensors round trip', () => {
  test.prop([
    fc.dictionary(nameArb, tensorArb, { maxKeys: 6 }),
    fc.option(fc.dictionary(fc.string(), fc.string(), { maxKeys: 3 }), { nil: undefined }),
  ])('serialize → parse gives the same names, shapes, dtypes, bits and metadata', (tensors, meta) => {
    const bytes = serializeSafetensors(tensors, meta);
    const hlen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + hlen) % 8).toBe(0);
    const back = parseSafetensors(bytes, 'mem');
    expect(new Set(back.keys())).toEqual(new Set(Object.keys(tensors)));
    for (const [name, t] of Object.entries(tensors)) {
      const r = back.get(name)!;
      expect(r.shape).toEqual([...t.shape]);
      expect(r.dtype).toBe(t.data instanceof Float32Array ? 'F32' : 'I32');
      expect(r.data.constructor).toBe(t.data.constructor);
      expect(sameBits(r.data, t.data)).toBe(true);
    }
    expect(back.metadata).toEqual(meta ?? {});
  });

  it('handles 0-d scalars, empty tensors, a file with no tensors, and Map input', () => {
    const bytes = serializeSafetensors(
      new Map<string, TensorIn>([
        ['loss', { shape: [], data: new Float32Array([2.5]) }],
        ['empty', { shape: [0, 3], data: new Float32Array(0) }],
        ['ids', { shape: [2], data: new Int32Array([-7, 2 ** 31 - 1]) }],
      ]),
      { format: 'pt' },
    );
    const back = parseSafetensors(bytes, 'mem');
    expect(back.get('loss')).toEqual({ dtype: 'F32', shape: [], data: new Float32Array([2.5]) });
    expect(back.get('empty')!.shape).toEqual([0, 3]);
    expect(back.get('empty')!.data.length).toBe(0);
    expect(Array.from(back.get('ids')!.data)).toEqual([-7, 2 ** 31 - 1]);
    expect(back.metadata).toEqual({ format: 'pt' });
    const none = parseSafetensors(serializeSafetensors({}), 'mem');
    expect(none.size).toBe(0);
  });

  it('keeps odd names (quotes, unicode, __proto__) intact', () => {
    const names = ['a"b', 'ü\n\t', '__proto__', 'sequential.0.word_embeddings.weight'];
    const tensors = Object.fromEntries(names.map((n) => [n, { shape: [1], data: new Float32Array([1]) }]));
    const back = parseSafetensors(serializeSafetensors(tensors), 'mem');
    expect([...back.keys()].sort()).toEqual(names.slice().sort());
  });

  it('rejects bad writes: wrong element count, bad dims, reserved name, other arrays', () => {
    expect(userError(() => serializeSafetensors({ x: { shape: [2, 2], data: new Float32Array(3) } })).message)
      .toMatch(/needs 4 elements, data has 3/);
    userError(() => serializeSafetensors({ x: { shape: [-1], data: new Float32Array(0) } }));
    userError(() => serializeSafetensors({ __metadata__: { shape: [], data: new Float32Array(1) } }));
    userError(() => serializeSafetensors({ x: { shape: [1], data: new Float64Array(1) as unknown as Float32Array } }));
  });
});

describe('half-precision decoding', () => {
  it('F16 known bit patterns: zeros, normals, subnormals, max, inf, NaN', () => {
    const cases: [number, number][] = [
      [0x0000, 0], [0x3c00, 1], [0xc000, -2], [0x3555, 0.333251953125], [0x7bff, 65504],
      [0x0400, 2 ** -14], [0x0001, 2 ** -24], [0x03ff, 1023 * 2 ** -24], [0x8001, -(2 ** -24)],
      [0x7c00, Infinity], [0xfc00, -Infinity],
    ];
    for (const [bits, v] of cases) expect(f16ToNumber(bits)).toBe(v);
    expect(Object.is(f16ToNumber(0x8000), -0)).toBe(true);
    expect(f16ToNumber(0x7e00)).toBeNaN();
    expect(f16ToNumber(0x7c01)).toBeNaN();
    expect(f16ToNumber(0xfe00)).toBeNaN();
  });

  it('F16: positive patterns increase strictly, and the sign bit negates', () => {
    const bad: number[] = [];
    for (let h = 1; h <= 0x7c00; h++) {
      if (!(f16ToNumber(h) > f16ToNumber(h - 1)) || f16ToNumber(h | 0x8000) !== -f16ToNumber(h)) bad.push(h);
    }
    expect(bad).toEqual([]);
  });

  it('BF16 known bit patterns', () => {
    const cases: [number, number][] = [
      [0x3f80, 1], [0xc000, -2], [0x4049, 3.140625], [0x7f7f, 3.3895313892515355e38],
      [0x0080, 2 ** -126], [0x0001, 2 ** -133], [0x7f80, Infinity], [0xff80, -Infinity],
    ];
    for (const [bits, v] of cases) expect(bf16ToNumber(bits)).toBe(v);
    expect(Object.is(bf16ToNumber(0x8000), -0)).toBe(true);
    expect(bf16ToNumber(0x7fc0)).toBeNaN();
    expect(bf16ToNumber(0xffc1)).toBeNaN();
  });

  it('reads F16, BF16 and I64 tensors from a file', () => {
    const f16 = u16le([0x3c00, 0x0001, 0xfc00, 0x7e00]);
    const bf16 = u16le([0x3f80, 0x4049]);
    const i64 = new Uint8Array(24);
    const dv = new DataView(i64.buffer);
    [-1n, 2147483647n, -2147483648n].forEach((v, i) => dv.setBigInt64(8 * i, v, true));
    const data = new Uint8Array([...f16, ...bf16, ...i64]);
    const file = build({
      h: { dtype: 'F16', shape: [2, 2], data_offsets: [0, 8] },
      b: { dtype: 'BF16', shape: [2], data_offsets: [8, 12] },
      i: { dtype: 'I64', shape: [3], data_offsets: [12, 36] },
    }, data);
    const t = parseSafetensors(file, 'mem');
    const h = t.get('h')!;
    expect(h.data).toBeInstanceOf(Float32Array);
    expect(Array.from(h.data).slice(0, 3)).toEqual([1, Math.fround(2 ** -24), -Infinity]);
    expect(h.data[3]).toBeNaN();
    expect(Array.from(t.get('b')!.data)).toEqual([1, 3.140625]);
    expect(t.get('i')!.data).toBeInstanceOf(Int32Array);
    expect(Array.from(t.get('i')!.data)).toEqual([-1, 2147483647, -2147483648]);
  });

  it('reads the small integer dtypes and BOOL losslessly into Int32Array', () => {
    // BOOL [2] | U8 [2] | I8 [2] | I16 [2] | U16 [2]: an official checkpoint's buffers may be these
    const data = new Uint8Array([1, 0, 0, 255, 0x80, 0x7f, 0, 0x80, 0xff, 0x7f, 0xff, 0xff, 0x01, 0x00]);
    const file = build({
      t: { dtype: 'BOOL', shape: [2], data_offsets: [0, 2] },
      u: { dtype: 'U8', shape: [2], data_offsets: [2, 4] },
      s: { dtype: 'I8', shape: [2], data_offsets: [4, 6] },
      w: { dtype: 'I16', shape: [2], data_offsets: [6, 10] },
      v: { dtype: 'U16', shape: [2], data_offsets: [10, 14] },
    }, data);
    const t = parseSafetensors(file, 'mem');
    for (const k of ['t', 'u', 's', 'w', 'v']) expect(t.get(k)!.data).toBeInstanceOf(Int32Array);
    expect(Array.from(t.get('t')!.data)).toEqual([1, 0]);
    expect(Array.from(t.get('u')!.data)).toEqual([0, 255]);
    expect(Array.from(t.get('s')!.data)).toEqual([-128, 127]);
    expect(Array.from(t.get('w')!.data)).toEqual([-32768, 32767]);
    expect(Array.from(t.get('v')!.data)).toEqual([65535, 1]);
  });

  it('rejects I64 values outside int32', () => {
    for (const v of [2147483648n, -2147483649n, 1n << 40n]) {
      const d = new Uint8Array(8);
      new DataView(d.buffer).setBigInt64(0, v, true);
      const file = build({ i: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, d);
      expect(userError(() => parseSafetensors(file, 'x.st')).message).toMatch(/x\.st: .*outside the int32 range/);
    }
  });
});

describe('safetensors validation: each rule has its message', () => {
  const ok = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  const d8 = new Uint8Array(8);
  const cases: [string, () => Uint8Array, RegExp][] = [
    ['short file', () => new Uint8Array(5), /5 bytes, shorter than the 8-byte header length/],
    ['header past the file', () => build(ok, d8, 1000n), /header length 1000 exceeds the file/],
    ['absurd header length', () => build(ok, d8, 1n << 40n), /exceeds the 100000000-byte limit/],
    ['tiny header length', () => build(ok, d8, 1n), /too short/],
    ['invalid UTF-8', () => { const b = build('{"\u00e9":1}'); b[10] = 0xff; return b; }, /not valid UTF-8/],
    ['BOM', () => build('\ufeff{}'), /does not start with "\{"/],
    ['invalid JSON', () => build('{"a": }'), /not valid JSON/],
    ['not an object', () => build('{}  ]'), /not valid JSON/],
    ['entry not object', () => build({ a: [1] }), /tensor "a": entry is not an object/],
    ['missing field', () => build({ a: { dtype: 'F32', shape: [0] } }), /missing field "data_offsets"/],
    ['extra field', () => build({ a: { ...ok.a, x: 1 } }, d8), /unexpected field "x"/],
    ['unknown dtype', () => build({ a: { ...ok.a, dtype: 'F33' } }, d8), /unknown dtype "F33"/],
    ['toString dtype', () => build({ a: { ...ok.a, dtype: 'toString' } }, d8), /unknown dtype/],
    ['unsupported dtype', () => build({ a: { ...ok.a, dtype: 'F64', shape: [1] } }, d8), /unsupported dtype F64/],
    ['negative dim', () => build({ a: { ...ok.a, shape: [-2] } }, d8), /not a non-negative integer/],
    ['fractional dim', () => build({ a: { ...ok.a, shape: [1.5] } }, d8), /not a non-negative integer/],
    ['string dim', () => build({ a: { ...ok.a, shape: ['2'] } }, d8), /not a non-negative integer/],
    ['shape not array', () => build({ a: { ...ok.a, shape: 2 } }, d8), /shape is not an array/],
    ['offsets length 3', () => build({ a: { ...ok.a, data_offsets: [0, 8, 8] } }, d8), /data_offsets must be/],
    ['offsets float', () => build({ a: { ...ok.a, data_offsets: [0, 7.5] } }, d8), /data_offsets must be/],
    ['offsets reversed', () => build({ a: { ...ok.a, shape: [0], data_offsets: [8, 0] } }, d8), /begin > end/],
    ['offsets past data', () => build(ok, new Uint8Array(4)), /run past the data section \(4 bytes\)/],
    ['size mismatch', () => build({ a: { ...ok.a, shape: [3] } }, d8), /needs 12 bytes but data_offsets span 8/],
    ['huge lying shape', () => build({ a: { ...ok.a, shape: [2 ** 40, 2 ** 40] } }, d8), /needs .* bytes but/],
    ['overlap', () => build({ ...ok, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, d8), /"a" and "b" overlap/],
    ['hole', () => build({ a: { ...ok.a, shape: [1], data_offsets: [4, 8] } }, d8), /hole of 4 bytes at data offset 0/],
    ['trailing bytes', () => build(ok, new Uint8Array(12)), /4 trailing bytes/],
    ['data without tensors', () => build({}, d8), /8 trailing bytes/],
    ['duplicate key', () => build('{"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}'), /repeats the key "a"/],
    ['duplicate via escape', () => build('{"__metadata__":{"k":"1","\\u006b":"2"}}'), /repeats the key "k"/],
    ['metadata not strings', () => build({ __metadata__: { k: 1 } }), /__metadata__ value of "k" is not a string/],
    ['metadata null', () => build({ __metadata__: null }), /__metadata__ must be an object/],
  ];
  for (const [label, make, re] of cases) {
    it(label, () => {
      const e = userError(() => parseSafetensors(make(), 'bad.safetensors'));
      expect(e.message).toMatch(/^bad\.safetensors: /);
      expect(e.message).toMatch(re);
    });
  }

  it('accepts space padding after the JSON and zero-size tensors sharing an offset', () => {
    const f = build('{"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"b":{"dtype":"I32","shape":[2,0],"data_offsets":[0,0]}}     ');
    expect(parseSafetensors(f, 'mem').size).toBe(2);
  });

  it('findDuplicateKey: nested objects, arrays and strings with braces', () => {
    expect(findDuplicateKey('{"a":{"a":1},"b":["a","a"],"c":"{\\"a\\":1}"}')).toBeNull();
    expect(findDuplicateKey('{"a":[{"x":1,"x":2}]}')).toBe('x');
    expect(findDuplicateKey('[' .repeat(10000) + ']'.repeat(10000))).toBeNull();
  });
});

describe('safetensors fuzz: malformed input is always a UserError, quickly', () => {
  const runs = { numRuns: 400 };
  const valid = serializeSafetensors(
    {
      'sequential.0.word_embeddings.weight': { shape: [3, 4], data: new Float32Array(12).fill(0.5) },
      'sequential.2.mlp.key_param_tokens': { shape: [2, 4], data: new Float32Array(8).fill(-1) },
      ids: { shape: [3], data: new Int32Array([1, 2, 3]) },
    },
    { format: 'pt' },
  );
  const headerEnd = 8 + Number(new DataView(valid.buffer).getBigUint64(0, true));

  /** Parses; returns normally on success or UserError, rethrows anything else. */
  function parseOrUserError(bytes: Uint8Array): void {
    try {
      parseSafetensors(bytes, 'fuzz');
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      expect(e.message).not.toMatch(/\n/);
    }
  }

  test.prop([fc.integer({ min: 0, max: valid.length - 1 })], runs)('every truncation is rejected', (n) => {
    userError(() => parseSafetensors(valid.slice(0, n), 'fuzz'));
  });

  test.prop([
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
  ], runs)('random byte changes in the length prefix and header', (flips) => {
    const b = valid.slice();
    for (const [pos, byte] of flips) b[pos % headerEnd] = byte;
    parseOrUserError(b);
  });

  test.prop([fc.bigInt({ min: 0n, max: (1n << 64n) - 1n })], runs)('a lying header length', (len) => {
    const b = valid.slice();
    new DataView(b.buffer).setBigUint64(0, len, true);
    parseOrUserError(b);
  });

  const lie = fc.oneof(
    fc.integer({ min: -10, max: 200 }), fc.constant(2 ** 53), fc.constant(1e300), fc.double(),
    fc.string({ maxLength: 3 }), fc.constant(null),
  );
  test.prop([
    fc.constantFrom('sequential.0.word_embeddings.weight', 'sequential.2.mlp.key_param_tokens', 'ids'),
    fc.constantFrom('shape', 'data_offsets'),
    fc.array(lie, { maxLength: 4 }),
  ], runs)('lying shapes and offsets', (name, field, value) => {
    const header = JSON.parse(new TextDecoder().decode(valid.subarray(8, headerEnd)));
    header[name][field] = value;
    parseOrUserError(build(header, valid.subarray(headerEnd)));
  });

  test.prop([fc.uint8Array({ maxLength: 300 })], runs)('garbage bytes', (bytes) => {
    userError(() => parseSafetensors(bytes, 'fuzz'));
  });

  test.prop([fc.json({ maxDepth: 4 }), fc.uint8Array({ maxLength: 64 })], runs)('random JSON headers', (json, data) => {
    parseOrUserError(build(json, data));
  });
});

describe('atomic writes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tf-st-'));

  it('writes, reads back, and replaces an existing file', () => {
    const p = join(dir, 'w.safetensors');
    writeSafetensorsAtomic(p, { x: { shape: [2], data: new Float32Array([1, 2]) } });
    writeSafetensorsAtomic(p, { x: { shape: [1], data: new Float32Array([3]) } }, { step: '7' });
    const t = readSafetensors(p);
    expect(Array.from(t.get('x')!.data)).toEqual([3]);
    expect(t.metadata).toEqual({ step: '7' });
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('on failure leaves no temp file and the old target intact', () => {
    const target = join(dir, 'occupied');
    mkdirSync(join(target, 'child'), { recursive: true }); // rename over a non-empty dir fails
    expect(userError(() => writeFileAtomic(target, 'data')).message).toMatch(/^cannot write .*occupied/);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(readdirSync(target)).toEqual(['child']);
    userError(() => writeFileAtomic(join(dir, 'no-such-dir', 'f.json'), '{}'));
  });

  it('writes strings as UTF-8', () => {
    const p = join(dir, 'r.json');
    writeFileSync(p, 'old');
    writeFileAtomic(p, '{"ü":1}');
    expect(readFileSync(p, 'utf8')).toBe('{"ü":1}');
  });

  it('readSafetensors reports missing files and directories as UserErrors', () => {
    expect(userError(() => readSafetensors(join(dir, 'missing.safetensors'))).message).toMatch(/cannot read/);
    userError(() => readSafetensors(dir));
  });
});

it('parses from a Node Buffer view (pooled, unaligned) without reading outside it', () => {
  const bytes = serializeSafetensors({ x: { shape: [2], data: new Float32Array([1, 2]) } });
  const pooled = Buffer.concat([Buffer.from([9, 9, 9]), Buffer.from(bytes)]).subarray(3);
  expect(Array.from(parseSafetensors(pooled, 'buf').get('x')!.data)).toEqual([1, 2]);
});

it('deeply nested header values are rejected without a stack overflow', () => {
  const deep = '['.repeat(100_000) + ']'.repeat(100_000);
  for (const field of ['shape', 'data_offsets', 'dtype']) {
    const entry = { dtype: '"F32"', shape: '[]', data_offsets: '[0,0]', [field]: deep };
    const text = `{"a":{"dtype":${entry.dtype},"shape":${entry.shape},"data_offsets":${entry.data_offsets}}}`;
    userError(() => parseSafetensors(build(text), 'deep'));
  }
  userError(() => parseSafetensors(build(`{"__metadata__":{"k":${deep}}}`), 'deep'));
});
