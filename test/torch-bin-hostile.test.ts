// Hostile PyTorch checkpoints (golden/torchbin/hostile/, see golden/gen_torchbin.py): each
// gives one UserError line naming its problem, runs nothing and writes nothing (checked again
// in a child Node with the permission model: no file writes, no child processes), and the
// 4 GB claims allocate nothing. Fuzzing: truncated and byte-flipped files, mutated data.pkl
// (CRC fixed so the pickle itself is exercised) and random opcode streams only ever raise
// UserError, and quickly.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import * as zlib from 'node:zlib';
import fc from 'fast-check';
import ts from 'typescript';
import { describe, expect, test } from 'vitest';
import { UserError } from '../src/errors.ts';
import { parseTorchBin, readTorchBin } from '../src/torch-bin.ts';
import { unpickle } from '../src/torch-bin/pickle.ts';
import { bufferSource } from '../src/torch-bin/source.ts';
import { torchHooks } from '../src/torch-bin/torch-globals.ts';
import { ZipArchive } from '../src/torch-bin/zip.ts';
import { GOLDEN_DIR } from './helpers/golden.ts';

interface Hostile {
  file: string;
  what: string;
  error: string;
}
const TB = join(GOLDEN_DIR, 'torchbin');
const tb = JSON.parse(readFileSync(join(TB, 'manifest.json'), 'utf8')) as { pwned_marker: string; hostile: Hostile[] };
const MARKER = tb.pwned_marker;
const ROOT = join(GOLDEN_DIR, '..');

function userErrorOf(fn: () => unknown): UserError {
  try {
    fn();
  } catch (e) {
    if (e instanceof UserError) return e;
    throw new Error(`not a UserError: ${e instanceof Error ? e.stack : String(e)}`);
  }
  throw new Error('loaded without an error');
}

describe('hostile files', () => {
  test('the manifest lists every file in hostile/', () => {
    expect(tb.hostile.map((h) => h.file).sort()).toEqual(readdirSync(join(TB, 'hostile')).map((f) => `hostile/${f}`).sort());
  });

  test.each(tb.hostile)('$file: $what', (h) => {
    rmSync(MARKER, { force: true });
    const before = readdirSync(join(TB, 'hostile')).length;
    const path = join(TB, h.file);
    const e = userErrorOf(() => readTorchBin(path));
    expect(e.message.startsWith(`${path}: `)).toBe(true);
    expect(e.message).toContain(h.error);
    expect(e.message).not.toMatch(/[\n\r]/);
    expect(e.message.length).toBeLessThanOrEqual(401);
    expect(existsSync(MARKER)).toBe(false);
    expect(readdirSync(join(TB, 'hostile')).length).toBe(before);
  });
});

/** src/torch-bin.ts and what it imports, transpiled to .js with TypeScript (a devDependency). */
function transpileReader(out: string): string {
  const todo = [join(ROOT, 'src/torch-bin.ts')];
  const done = new Set<string>();
  while (todo.length > 0) {
    const file = todo.pop()!;
    if (done.has(file)) continue;
    done.add(file);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/from '(\.{1,2}\/[^']+\.ts)'/g)) todo.push(join(dirname(file), m[1]));
    const js = ts.transpileModule(text, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, rewriteRelativeImportExtensions: true },
    }).outputText;
    const dest = join(out, relative(ROOT, file)).replace(/\.ts$/, '.js');
    mkdirSync(dirname(dest), { recursive: true });
    writeFileSync(dest, js);
  }
  return join(out, 'src/torch-bin.js');
}

/** Loads every hostile file in the child; prints one JSON line per file. */
const CHILD = `
const { readTorchBin } = await import(process.argv[2]);
for (const f of process.argv.slice(3)) {
  try { readTorchBin(f); console.log(JSON.stringify({ f, ok: true })); }
  catch (e) { console.log(JSON.stringify({ f, name: e?.name, code: e?.code ?? null, message: String(e?.message) })); }
}
`;

describe('sandboxed: nothing written, nothing spawned', () => {
  test('a child Node without write or child-process permission loads them all into UserErrors', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tf-torchbin-'));
    try {
      const entry = transpileReader(dir);
      writeFileSync(join(dir, 'child.mjs'), CHILD);
      rmSync(MARKER, { force: true });
      const files = tb.hostile.map((h) => join(TB, h.file));
      const r = spawnSync(process.execPath, [
        '--experimental-permission', `--allow-fs-read=${dir}/*`, `--allow-fs-read=${TB}/*`,
        join(dir, 'child.mjs'), entry, ...files,
      ], { encoding: 'utf8', timeout: 60_000 });
      expect(r.status, r.stderr).toBe(0);
      const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { f: string; name: string; code: string | null });
      expect(lines.map((l) => l.f)).toEqual(files);
      for (const l of lines) expect(l, l.f).toMatchObject({ name: 'UserError', code: null });
      expect(existsSync(MARKER)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the reader imports no process, vm, worker or write API and never evaluates strings', () => {
    const dir = join(ROOT, 'src/torch-bin');
    const files = [join(ROOT, 'src/torch-bin.ts'), ...readdirSync(dir).map((f) => join(dir, f))];
    for (const f of files) {
      const text = readFileSync(f, 'utf8');
      expect(text, f).not.toMatch(/child_process|node:vm|worker_threads|\beval\(|new Function|require\(/);
      expect(text, f).not.toMatch(/write(File)?Sync|appendFile|createWriteStream|mkdirSync|renameSync|unlinkSync/);
    }
  });
});

describe('bounds: a lying size allocates nothing', () => {
  test.each(['claims_4gb.bin', 'expanded_view.bin', 'storage_past_record.bin'])('%s', (f) => {
    const bytes = readFileSync(join(TB, 'hostile', f));
    expect(bytes.length).toBeLessThan(1024);
    const before = process.memoryUsage().arrayBuffers;
    userErrorOf(() => parseTorchBin(bytes, f));
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(1 << 20);
  });
});

// ------------------------------------------------------------------------------------ fuzzing

const GOOD = readFileSync(join(TB, 'int_buffers.bin'));
const MODEL = readFileSync(join(TB, 'tiny_gelu_l2_untied.f16.bin'));

/** Runs parse on bytes: it may succeed or raise a UserError, nothing else, within 2 s. */
function onlyUserErrors(bytes: Uint8Array): void {
  const t0 = performance.now();
  try {
    parseTorchBin(bytes, 'fuzz.bin');
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    expect(e.message).not.toMatch(/[\n\r]/);
  }
  expect(performance.now() - t0).toBeLessThan(2000);
}

/** data.pkl's bytes in `file` and where its CRC sits in the central directory. */
function pickleSpan(file: Uint8Array) {
  const zip = new ZipArchive(bufferSource(file, 'x'), 'x');
  const e = [...zip.entries.values()].find((x) => x.name.endsWith('/data.pkl'))!;
  const name = new TextEncoder().encode(e.name);
  let crcAt = -1;
  for (let p = file.length - 46; p >= 0 && crcAt < 0; p--) {
    const sig = file[p] === 0x50 && file[p + 1] === 0x4b && file[p + 2] === 1 && file[p + 3] === 2;
    if (sig && name.every((b, i) => file[p + 46 + i] === b)) crcAt = p + 16;
  }
  return { start: zip.dataOffset(e), size: e.size, crcAt };
}

function withPickle(file: Uint8Array, mutate: (pkl: Uint8Array) => void): Uint8Array {
  const out = Uint8Array.from(file);
  const { start, size, crcAt } = pickleSpan(out);
  const pkl = out.subarray(start, start + size);
  mutate(pkl);
  new DataView(out.buffer).setUint32(crcAt, zlib.crc32(pkl) >>> 0, true);
  return out;
}

describe('fuzzing: only UserError, never a hang', () => {
  test('the unmutated files load (the harness itself works)', () => {
    expect(parseTorchBin(GOOD, 'good').size).toBe(9);
    expect(parseTorchBin(withPickle(MODEL, () => {}), 'model').size).toBe(14);
  });

  test('a flipped byte in a storage record is caught by its CRC-32', () => {
    const b = Uint8Array.from(GOOD);
    const zip = new ZipArchive(bufferSource(b, 'x'), 'x');
    const rec = [...zip.entries.values()].find((e) => /\/data\/0$/.test(e.name))!;
    b[zip.dataOffset(rec)] ^= 1;
    expect(userErrorOf(() => parseTorchBin(b, 'flip.bin')).message).toContain('CRC-32 mismatch');
  });

  test('LONG1 integers are two\'s complement (2^31, -1, 2^40)', () => {
    const long1 = (bytes: number[]) => unpickle(Uint8Array.of(0x80, 2, 0x8a, bytes.length, ...bytes, 0x2e), torchHooks('t'), 't');
    expect(long1([0, 0, 0, 0x80, 0])).toBe(2 ** 31);
    expect(long1([0xff])).toBe(-1);
    expect(long1([0, 0, 0, 0, 0, 1])).toBe(2 ** 40);
    expect(long1([])).toBe(0);
  });

  test('every truncation of a small checkpoint', () => {
    for (let n = 0; n < GOOD.length; n++) expect(() => parseTorchBin(GOOD.subarray(0, n), 'cut')).toThrow(UserError);
  });

  test('random byte changes anywhere in the file', () => {
    fc.assert(fc.property(
      fc.constantFrom(GOOD, MODEL),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
      (file, edits) => {
        const b = Uint8Array.from(file);
        for (const [p, v] of edits) b[p % b.length] = v;
        onlyUserErrors(b);
      },
    ), { numRuns: 300 });
  });

  test('random byte changes in data.pkl, CRC fixed (the pickle interpreter sees them)', () => {
    let loaded = 0;
    fc.assert(fc.property(
      fc.constantFrom(GOOD, MODEL),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
      (file, edits) => {
        const b = withPickle(file, (pkl) => {
          for (const [p, v] of edits) pkl[p % pkl.length] = v;
        });
        try {
          parseTorchBin(b, 'fuzz.bin');
          loaded++;
        } catch (e) {
          if (!(e instanceof UserError)) throw e;
        }
      },
    ), { numRuns: 400 });
    expect(loaded).toBeLessThan(400); // the edits did reach the checks
  });

  const OPS = [0x28, 0x2e, 0x4e, 0x88, 0x89, 0x4a, 0x4b, 0x4d, 0x8a, 0x47, 0x58, 0x8c, 0x29, 0x74, 0x85, 0x86,
    0x87, 0x5d, 0x61, 0x65, 0x7d, 0x73, 0x75, 0x71, 0x72, 0x94, 0x68, 0x6a, 0x63, 0x93, 0x52, 0x51, 0x62, 0x80, 0x95];
  test('random opcode streams', () => {
    const snippets = ['ctorch._utils\n_rebuild_tensor_v2\n', 'ccollections\nOrderedDict\n', 'ctorch\nFloatStorage\n',
      'X\x07\x00\x00\x00storage', 'X\x01\x00\x00\x000', 'ctorch._utils\n_rebuild_parameter\n'].map((s) =>
      Uint8Array.from(s, (c) => c.charCodeAt(0)));
    const piece = fc.oneof(
      fc.constantFrom(...OPS).map((o) => Uint8Array.of(o)),
      fc.constantFrom(...snippets),
      fc.uint8Array({ minLength: 1, maxLength: 4 }),
    );
    fc.assert(fc.property(fc.array(piece, { maxLength: 60 }), (pieces) => {
      const bytes = new Uint8Array(pieces.reduce((a, p) => a + p.length, 0));
      let o = 0;
      for (const p of pieces) {
        bytes.set(p, o);
        o += p.length;
      }
      try {
        unpickle(bytes, torchHooks('fuzz.pkl'), 'fuzz.pkl');
      } catch (e) {
        if (!(e instanceof UserError)) throw e;
      }
    }), { numRuns: 2000 });
  });
});
