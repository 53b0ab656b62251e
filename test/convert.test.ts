// `tokenformer convert`: .bin ↔ .safetensors round trips (bit-exact for f32), f16/bf16 storage
// equal to round-to-nearest-even computed here independently (a search over every f16/bf16
// value), the GPT-NeoX folder's structure in both layouts and the way back, and bad input
// (exit 2, one line, nothing left behind). PyTorch's own view of the same files:
// test/convert-torch.test.ts.

import fc from 'fast-check';
import { copyFileSync, linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { readSafetensors, serializeSafetensors } from '../src/safetensors.ts';
import { bf16ToNumber, f16ToNumber, f32BitsToBf16, f32BitsToF16, f32ToBits } from '../src/safetensors-dtypes.ts';
import { readTorchBin } from '../src/torch-bin.ts';
import { weightsFormat } from '../src/weights.ts';
import { edgeValues, SMALL, writeOfficialConfig, writeWeights } from './helpers/convert-fixtures.ts';
import { expectUserError, inPool, listTree, runCliAsync, type CliResult } from './helpers/cli.ts';

let dir: string;
let cfgTied: string;
let cfgPipe: string;
let weights: Map<string, Float32Array>;
let pipeWeights: Map<string, Float32Array>;
let edge: Float32Array;

const cli = (...args: string[]) => runCliAsync(args, { cwd: dir, timeout: 120_000 });
const ok = (r: CliResult) => expect({ code: r.code, err: r.err }).toEqual({ code: 0, err: '' });

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tf-convert-'));
  const tied = writeOfficialConfig(dir, 'tied', SMALL);
  const pipe = writeOfficialConfig(dir, 'pipe', { ...SMALL, tied: false, pipe: 2, layers: 3 });
  cfgTied = tied.path;
  cfgPipe = pipe.path;
  weights = writeWeights(join(dir, 'w.safetensors'), tied.config, 11);
  pipeWeights = writeWeights(join(dir, 'wp.safetensors'), pipe.config, 12);
  edge = edgeValues(3000, 5);
  writeFileSync(join(dir, 'edge.safetensors'), serializeSafetensors({
    edge: { shape: [edge.length], data: edge }, ids: { shape: [2, 2], data: Int32Array.from([-3, 0, 7, 2 ** 31 - 1]) },
  }));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// ------------------------------------------------------------- independent rounding reference

/** Every finite value of a 16-bit format, sorted, with its bit pattern (sign-symmetric). */
function finiteValues(decode: (bits: number) => number): { v: number; bits: number }[] {
  const out: { v: number; bits: number }[] = [];
  for (let b = 0; b < 0x8000; b++) {
    const v = decode(b);
    if (Number.isFinite(v)) out.push({ v, bits: b });
  }
  return out.sort((a, b) => a.v - b.v);
}

/**
 * Round to nearest, ties to the even bit pattern, by searching the format's values: |x| beyond
 * the largest value plus half its last step is ∞; NaN is any NaN.
 */
function nearest(x: number, table: { v: number; bits: number }[]): number {
  if (Number.isNaN(x)) return NaN;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  const top = table[table.length - 1];
  const step = top.v - table[table.length - 2].v;
  if (a >= top.v + step / 2) return sign | (top.bits + 1); // the next pattern is +∞
  let lo = 0;
  let hi = table.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (table[mid].v <= a) lo = mid;
    else hi = mid;
  }
  const dl = a - table[lo].v;
  const dh = table[hi].v - a;
  const pick = dl < dh ? table[lo] : dh < dl ? table[hi] : table[lo].bits % 2 === 0 ? table[lo] : table[hi];
  return sign | pick.bits;
}

const F16 = finiteValues(f16ToNumber);
const BF16 = finiteValues(bf16ToNumber);

function expectRounded(got: Float32Array, src: Float32Array, table: typeof F16, decode: (b: number) => number): void {
  for (let i = 0; i < src.length; i++) {
    const want = nearest(src[i], table);
    if (Number.isNaN(want)) expect(Number.isNaN(got[i]), `index ${i}`).toBe(true);
    else expect(Object.is(got[i], decode(want)), `index ${i}: ${src[i]} → ${got[i]}, want ${decode(want)}`).toBe(true);
  }
}

describe('float32 → f16/bf16 encoders', () => {
  test('equal round-to-nearest-even by search, for any float32 bit pattern', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), (bits) => {
      const x = new Float32Array(new Uint32Array([bits]).buffer)[0];
      const h = nearest(x, F16);
      const b = nearest(x, BF16);
      if (Number.isNaN(x)) return Number.isNaN(f16ToNumber(f32BitsToF16(bits))) && Number.isNaN(bf16ToNumber(f32BitsToBf16(bits)));
      return f32BitsToF16(bits) === h && f32BitsToBf16(bits) === b;
    }), { numRuns: 20000 });
  });
  test('and for the edge values (ties, subnormals, overflow)', () => {
    for (const x of edgeValues(0, 1)) {
      const bits = f32ToBits(x);
      if (Number.isNaN(x)) continue;
      expect(f32BitsToF16(bits), `f16 of ${x}`).toBe(nearest(x, F16));
      expect(f32BitsToBf16(bits), `bf16 of ${x}`).toBe(nearest(x, BF16));
    }
    expect(f32BitsToF16(f32ToBits(65520))).toBe(0x7c00); // halfway to the next binade: ∞
    expect(f32BitsToF16(f32ToBits(2 ** -25))).toBe(0); // a tie between 0 and 2⁻²⁴: even is 0
  });
});

// ------------------------------------------------------------------------------ round trips

function expectSameF32(got: ReturnType<typeof readSafetensors>, want: Map<string, Float32Array>): void {
  expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
  for (const [name, w] of want) {
    const g = got.get(name)!;
    expect(g.dtype, name).toBe('F32');
    expect(new Uint32Array(g.data.buffer, g.data.byteOffset, g.data.length), name).toEqual(new Uint32Array(w.buffer, w.byteOffset, w.length));
  }
}

describe('convert between .bin and .safetensors', () => {
  test('safetensors → bin → safetensors → bin is bit-exact for f32, and the two .bin files are identical', async () => {
    const r = await inPool([() => cli('convert', 'w.safetensors', 'a.bin'), () => cli('convert', 'edge.safetensors', 'e.bin')]);
    r.forEach(ok);
    ok(await cli('convert', 'a.bin', 'b.safetensors'));
    ok(await cli('convert', 'b.safetensors', 'c.bin'));
    expect(weightsFormat(readFileSync(join(dir, 'a.bin')).subarray(0, 9))).toBe('torch');
    expectSameF32(readTorchBin(join(dir, 'a.bin')), weights);
    expectSameF32(readSafetensors(join(dir, 'b.safetensors')), weights);
    expect(readFileSync(join(dir, 'b.safetensors'))).toEqual(readFileSync(join(dir, 'w.safetensors'))); // our writers agree
    expect(readFileSync(join(dir, 'c.bin')).equals(readFileSync(join(dir, 'a.bin')))).toBe(true);
    expectSameF32(readTorchBin(join(dir, 'c.bin')), weights);
    const e = readTorchBin(join(dir, 'e.bin'));
    expect(new Uint32Array(e.get('edge')!.data.buffer)).toEqual(new Uint32Array(edge.buffer)); // NaN payloads too
    expect({ dtype: e.get('ids')!.dtype, data: [...e.get('ids')!.data] }).toEqual({ dtype: 'I32', data: [-3, 0, 7, 2 ** 31 - 1] });
  }, 120_000);

  test('--dtype f16 / bf16 store the round-to-nearest-even values, in both formats', async () => {
    const outs = ['e16.bin', 'e16.safetensors', 'eb16.bin', 'eb16.safetensors'];
    const r = await inPool(outs.map((o) => () => cli('convert', 'edge.safetensors', o, '--dtype', o.startsWith('e16') ? 'f16' : 'bf16')));
    r.forEach(ok);
    for (const o of outs) {
      const t = (o.endsWith('.bin') ? readTorchBin : readSafetensors)(join(dir, o));
      const half = o.startsWith('e16');
      expect(t.get('edge')!.dtype).toBe(half ? 'F16' : 'BF16');
      expect(t.get('ids')!.dtype).toBe('I32'); // integers keep their dtype
      expectRounded(t.get('edge')!.data as Float32Array, edge, half ? F16 : BF16, half ? f16ToNumber : bf16ToNumber);
    }
    // f16 stays f16 when converted again without --dtype: the same values (NOTE: not the same
    // bytes where a NaN's sign or payload differs: the reader decodes every f16 NaN to one NaN)
    ok(await cli('convert', 'e16.bin', 'e16b.safetensors'));
    const again = readSafetensors(join(dir, 'e16b.safetensors')).get('edge')!;
    expect(again.dtype).toBe('F16');
    expect([...again.data]).toEqual([...readSafetensors(join(dir, 'e16.safetensors')).get('edge')!.data]);
  }, 120_000);
});

// ------------------------------------------------------------------------------ GPT-NeoX folder

describe('convert --to neox', () => {
  test('module layout (pipe_parallel_size 1): latest, global_step<N>/mp_rank_00_model_states.pt, neox.yml; and back', async () => {
    ok(await cli('convert', 'w.safetensors', 'neox', '--to', 'neox', '--config', cfgTied, '--iteration', '7'));
    expect(listTree(join(dir, 'neox'))).toEqual(['global_step7', 'global_step7/mp_rank_00_model_states.pt', 'latest', 'neox.yml', 'tokenformer-export.json']);
    expect(readFileSync(join(dir, 'neox', 'latest'), 'utf8')).toBe('global_step7');
    const yml = parseYaml(readFileSync(join(dir, 'neox', 'neox.yml'), 'utf8')) as Record<string, unknown>;
    const official = parseYaml(readFileSync(cfgTied, 'utf8')) as Record<string, unknown>;
    expect(yml.load).toBe(resolve(dir, 'neox'));
    expect(yml.finetune).toBe(true);
    expect(yml).not.toHaveProperty('vocab_size');
    const norm = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k.replace(/-/g, '_'), v]));
    expect({ ...norm(yml), load: 0, finetune: 0 }).toEqual({ ...norm(official), load: 0, finetune: 0 });
    const r = await inPool([() => cli('convert', 'neox', 'back.safetensors'), () => cli('convert', 'neox/global_step7', 'back2.bin')]);
    r.forEach(ok);
    expectSameF32(readSafetensors(join(dir, 'back.safetensors')), weights);
    expectSameF32(readTorchBin(join(dir, 'back2.bin')), weights);
    // a rerun may replace the folder it wrote
    ok(await cli('convert', 'w.safetensors', 'neox', '--to', 'neox', '--config', cfgTied, '--dtype', 'bf16'));
    expect(listTree(join(dir, 'neox'))).toEqual(['global_step0', 'global_step0/mp_rank_00_model_states.pt', 'latest', 'neox.yml', 'tokenformer-export.json']);
    const back = await cli('convert', 'neox', 'back16.safetensors');
    ok(back);
    const emb = readSafetensors(join(dir, 'back16.safetensors')).get('sequential.0.word_embeddings.weight')!;
    expect(emb.dtype).toBe('BF16');
    expectRounded(emb.data as Float32Array, weights.get('sequential.0.word_embeddings.weight')!, BF16, bf16ToNumber);
  }, 120_000);

  test('pipeline layout (pipe_parallel_size 2): one layer_XX-model_00 file per layer with parameters, names without sequential.N.', async () => {
    ok(await cli('convert', 'wp.safetensors', 'pneox', '--to', 'neox', '--config', cfgPipe));
    const L = 3;
    const layerFiles = [0, 2, 3, 4, L + 3, L + 4].map((i) => `global_step0/layer_${String(i).padStart(2, '0')}-model_00-model_states.pt`);
    expect(listTree(join(dir, 'pneox'))).toEqual(['global_step0', ...layerFiles, 'global_step0/mp_rank_00_model_states.pt', 'latest', 'neox.yml', 'tokenformer-export.json'].sort());
    const block = readTorchBin(join(dir, 'pneox', layerFiles[1]));
    expect([...block.keys()].sort()).toEqual(['query', 'key', 'value', 'proj'].flatMap((p) => [`attention.${p}.key_param_tokens`, `attention.${p}.value_param_tokens`])
      .concat(['mlp.key_param_tokens', 'mlp.value_param_tokens']).sort());
    expect([...readTorchBin(join(dir, 'pneox', layerFiles[4])).keys()]).toEqual(['norm.weight', 'norm.bias']);
    expect([...readTorchBin(join(dir, 'pneox', layerFiles[5])).keys()]).toEqual(['final_linear.weight']);
    ok(await cli('convert', 'pneox', 'pback.safetensors'));
    expectSameF32(readSafetensors(join(dir, 'pback.safetensors')), pipeWeights);
  }, 120_000);
});

// ------------------------------------------------------------------------------ bad input

const BAD: Array<[what: string, args: string[], re: RegExp]> = [
  ['unknown extension', ['w.safetensors', 'out.pth'], /extension "\.pth"/],
  ['no extension', ['w.safetensors', 'out'], /expected \.safetensors, \.bin or \.pt/],
  ['--dtype nonsense', ['w.safetensors', 'o.bin', '--dtype', 'fp8'], /--dtype must be f32, f16 or bf16, got "fp8"/],
  ['OUT equal to IN', ['w.safetensors', 'w.safetensors'], /is the input/],
  ['OUT a hard link to IN', ['w.safetensors', 'hard.safetensors'], /is the input/],
  ['OUT a symlink', ['w.safetensors', 'link.bin'], /symbolic link/],
  ['missing IN', ['nope.bin', 'o.bin'], /cannot read weights "nope\.bin"/],
  ['IN not weights', ['tied.yml', 'o.bin'], /tied\.yml/],
  ['--to something else', ['w.safetensors', 'd', '--to', 'hf'], /--to must be neox/],
  ['--to neox without --config', ['w.safetensors', 'd', '--to', 'neox'], /needs --config/],
  ['--config without --to neox', ['w.safetensors', 'o.bin', '--config', 'tied.yml'], /only used with --to neox/],
  ['weights not of the config', ['wp.safetensors', 'd', '--to', 'neox', '--config', 'tied.yml'], /unexpected (\d+ )?tensor|missing (\d+ )?parameter|has shape/],
  ['a non-empty folder we did not write', ['w.safetensors', 'theirs', '--to', 'neox', '--config', 'tied.yml'], /not empty and was not written by tokenformer/],
  ['our folder with a user file added', ['w.safetensors', 'ours2', '--to', 'neox', '--config', 'tied.yml'], /not empty and was not written by tokenformer/],
  ['OUT a symlink to a folder', ['w.safetensors', 'oursLink', '--to', 'neox', '--config', 'tied.yml'], /symbolic link/],
  ['IN inside the OUT folder', ['ours/global_step0', 'ours', '--to', 'neox', '--config', 'tied.yml'], /holds the input/],
  ['a grown config (pinned normalization counts)', ['w.safetensors', 'd', '--to', 'neox', '--config', 'grown.yml'], /cannot be expressed in the official code/],
  ['model_parallel_size 2', ['w.safetensors', 'd', '--to', 'neox', '--config', 'mp2.yml'], /model_parallel_size 2/],
  ['--iteration nonsense', ['w.safetensors', 'd', '--to', 'neox', '--config', 'tied.yml', '--iteration', '-1'], /--iteration/],
];

describe('bad input: exit 2, one line, nothing written or removed', () => {
  test(`${BAD.map(([w]) => w).join('; ')}`, async () => {
    const bad = join(dir, 'bad');
    mkdirSync(bad);
    for (const f of ['w.safetensors', 'wp.safetensors', 'tied.yml']) copyFileSync(join(dir, f), join(bad, f));
    linkSync(join(bad, 'w.safetensors'), join(bad, 'hard.safetensors'));
    writeFileSync(join(bad, 'target.bin'), 'keep');
    symlinkSync('target.bin', join(bad, 'link.bin'));
    mkdirSync(join(bad, 'theirs'));
    writeFileSync(join(bad, 'theirs', 'notes.txt'), 'mine');
    const tied = readFileSync(join(bad, 'tied.yml'), 'utf8');
    writeFileSync(join(bad, 'grown.yml'), `${tied.replace(/\}\s*$/, '')}, "tokenformer_norm_slots": {"sequential.2.mlp": 10}}\n`);
    writeFileSync(join(bad, 'mp2.yml'), tied.replace('"model_parallel_size": 1', '"model_parallel_size": 2'));
    const made = await inPool(['ours', 'ours2'].map((d) => () => runCliAsync(['convert', 'w.safetensors', d, '--to', 'neox', '--config', 'tied.yml'], { cwd: bad })));
    made.forEach(ok);
    writeFileSync(join(bad, 'ours2', 'global_step0', 'extra.pt'), 'user data');
    symlinkSync('ours', join(bad, 'oursLink'));
    const snapshot = () => listTree(bad).map((f) => [f, readIfFile(join(bad, f))]);
    const before = snapshot();
    const results = await inPool(BAD.map(([, args]) => () => runCliAsync(['convert', ...args], { cwd: bad, timeout: 120_000 })));
    results.forEach((r, i) => {
      try {
        expectUserError(r, BAD[i][2]);
      } catch (e) {
        throw new Error(`${BAD[i][0]}: ${(e as Error).message}`);
      }
    });
    expect(snapshot()).toEqual(before);
  }, 600_000);
});

function readIfFile(p: string): string | null {
  try {
    return readFileSync(p).toString('base64');
  } catch {
    return null; // a folder
  }
}
