// Every good PyTorch checkpoint in golden/torchbin/ (written by torch.save, see
// golden/gen_torchbin.py) loads to exactly the golden model's parameters (F16/BF16 files: the
// f32 values rounded to nearest-even here), and the model built from each f32 file gives the
// golden logits and loss on the CPU reference; readWeightsFile picks the right reader.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { loadBackend } from '../backends/index.ts';
import { readConfigFile } from '../src/config-parse.ts';
import { TokenFormer } from '../src/model.ts';
import { f16ToNumber, bf16ToNumber } from '../src/safetensors.ts';
import { readTorchBin } from '../src/torch-bin.ts';
import { loadTorchZip } from '../src/torch-bin/load.ts';
import { bufferSource } from '../src/torch-bin/source.ts';
import { readWeightsFile, weightsFormat } from '../src/weights.ts';
import { checkValues } from './helpers/compare.ts';
import { GOLDEN_DIR, goldenPath, loadFixture, loadManifest, need } from './helpers/golden.ts';

interface Good {
  file: string;
  model: string | null;
  dtype: string;
  what: string;
  expected?: Record<string, { shape: number[]; values: number[] }>;
}
const TB = join(GOLDEN_DIR, 'torchbin');
const tbManifest = JSON.parse(readFileSync(join(TB, 'manifest.json'), 'utf8')) as { good: Good[] };
const manifest = loadManifest();
const bits = (x: number) => new Uint32Array(new Float32Array([x]).buffer)[0];

/** float32 → binary16 bits, rounding to nearest, ties to even (what torch's .half() does). */
function f16Bits(x: number): number {
  const u = bits(x);
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  const mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 112; // rebias 127 → 15
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e;
    let h = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++; // a carry into the exponent is correct
  return sign | h;
}
const toF16 = (x: number) => f16ToNumber(f16Bits(x));
const toBF16 = (x: number) => bf16ToNumber((bits(x) + 0x7fff + ((bits(x) >>> 16) & 1)) >>> 16);

describe('f16/bf16 rounding used for the expected values', () => {
  test('known cases: ties to even, subnormals, overflow', () => {
    expect(toF16(1 + 2 ** -11)).toBe(1); // tie, 1 is even
    expect(toF16(1 + 3 * 2 ** -11)).toBe(1 + 2 ** -9); // tie, rounds up to even
    expect(toF16(2 ** -25)).toBe(0); // exactly half the smallest subnormal: ties to 0
    expect(toF16(3 * 2 ** -26)).toBe(2 ** -24);
    expect(toF16(65520)).toBe(Infinity);
    expect(toF16(65519)).toBe(65504);
    expect(toBF16(1 + 2 ** -8)).toBe(1);
    expect(toBF16(1 + 3 * 2 ** -8)).toBe(1 + 2 ** -6);
  });
});

function goldenParams(model: string) {
  const m = manifest.models.find((x) => x.name === model)!;
  const fx = loadFixture(m.file);
  return { m, fx, params: new Map([...fx].filter(([k]) => k.startsWith('sequential.'))) };
}

describe.each(tbManifest.good.filter((g) => g.model !== null))('$file', (g) => {
  const { m, fx, params } = goldenParams(g.model!);
  const loaded = readTorchBin(join(TB, g.file));

  test(`holds exactly the ${g.model} parameters (${g.dtype})`, () => {
    expect([...loaded.keys()].sort()).toEqual([...params.keys()].sort());
    const round = g.dtype === 'F16' ? toF16 : g.dtype === 'BF16' ? toBF16 : (x: number) => x;
    for (const [name, want] of params) {
      const got = loaded.get(name)!;
      expect(got.dtype, name).toBe(g.dtype);
      expect(got.shape, name).toEqual(want.shape);
      expect(got.data).toBeInstanceOf(Float32Array);
      const expected = Float32Array.from(want.data, round);
      expect(new Uint32Array(got.data.buffer, got.data.byteOffset, got.data.length), name)
        .toEqual(new Uint32Array(expected.buffer));
    }
  });

  // Half-precision files round every weight, so their logits are judged at the conformance
  // kit's f16/bf16 value classes (spec/conformance.md), F32 files at the reference class.
  test(`the model built from it gives the golden logits and loss (cpu, ${g.dtype === 'F32' ? 'reference' : g.dtype} tolerance)`, async () => {
    const be = await loadBackend('cpu');
    const config = readConfigFile(goldenPath(m.config), {});
    const weights = new Map([...loaded].map(([k, t]) => [k, t.data as Float32Array]));
    const model = TokenFormer.fromHost(be, config, weights);
    const ids = need(fx, 'input_ids');
    const tg = need(fx, 'targets');
    const fwd = model.forward(be.uploadInt(ids.data as Int32Array, ids.shape), be.uploadInt(tg.data as Int32Array, tg.shape));
    const tol = g.dtype === 'F16' ? { atol: 2e-2, rtol: 2e-2 } : g.dtype === 'BF16' ? { atol: 1.5e-1, rtol: 1e-1 }
      : manifest.tolerances.reference.values;
    expect(checkValues('logits', await be.read(fwd.logits), need(fx, 'logits').data, tol)).toBeNull();
    expect(checkValues('loss', await be.read(fwd.loss!), need(fx, 'loss').data, tol)).toBeNull();
    model.dispose();
  });
});

describe('int_buffers.bin', () => {
  const g = tbManifest.good.find((x) => x.file === 'int_buffers.bin')!;
  const loaded = readTorchBin(join(TB, g.file));
  const DTYPES: Record<string, string> = {
    position_ids: 'I64', neg_i64: 'I64', count: 'I32', mask: 'BOOL', u8: 'U8', i8: 'I8', i16: 'I16',
    empty: 'F32', scalar_f32: 'F32',
  };
  test.each(Object.entries(g.expected!))('%s', (name, want) => {
    const got = loaded.get(name)!;
    expect(got.dtype).toBe(DTYPES[name]);
    expect(got.shape).toEqual(want.shape);
    expect(got.data).toBeInstanceOf(want.values.every(Number.isInteger) && DTYPES[name] !== 'F32' ? Int32Array : Float32Array);
    expect(Array.from(got.data)).toEqual(want.values);
  });
});

describe('records over the whole-read limit are read view by view', () => {
  test.each(tbManifest.good.map((g) => g.file))('%s', (file) => {
    const bytes = readFileSync(join(TB, file));
    const whole = loadTorchZip(bufferSource(bytes, file), file);
    const byView = loadTorchZip(bufferSource(bytes, file), file, {}, 0);
    expect([...byView.keys()]).toEqual([...whole.keys()]);
    for (const [name, t] of whole) expect(byView.get(name), name).toEqual(t);
  });
});

describe('filter and readWeightsFile', () => {
  const f32 = join(TB, 'tiny_l2_tied.f32.bin');
  test('filter loads only the tensors it passes', () => {
    const t = readTorchBin(f32, { filter: (n) => n.includes('.mlp.') });
    expect(t.size).toBeGreaterThan(0);
    expect([...t.keys()].every((n) => n.includes('.mlp.'))).toBe(true);
  });
  test('a .bin and the golden .safetensors read to the same parameters', () => {
    const bin = readWeightsFile(f32);
    const st = readWeightsFile(goldenPath('models/tiny_l2_tied.safetensors'));
    for (const [name, t] of bin) expect(t.data, name).toEqual(st.get(name)!.data);
  });
  test('dispatch is on content', () => {
    const st = readFileSync(goldenPath('models/tiny_l2_tied.safetensors'));
    expect(weightsFormat(st.subarray(0, 9))).toBe('safetensors');
    expect(weightsFormat(readFileSync(f32).subarray(0, 9))).toBe('torch');
    expect(weightsFormat(readFileSync(join(TB, 'hostile/legacy_format.bin')).subarray(0, 9))).toBe('torch');
    // a safetensors header of 128 bytes starts with 0x80, like a pickle
    expect(weightsFormat(Uint8Array.from([0x80, 0, 0, 0, 0, 0, 0, 0, 0x7b]))).toBe('safetensors');
  });
  test('a missing file is a UserError', () => {
    expect(() => readWeightsFile(join(TB, 'no-such.bin'))).toThrow(/cannot read/);
  });
});
