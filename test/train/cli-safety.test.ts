// `tokenformer train` and `demo` as a user meets them (child processes through bin/): every
// red-team case of bad input exits 2 with one `error:` line, destroys nothing of the user's,
// leaves no file behind and costs seconds of CPU and bounded memory (measured in the child by
// fixtures/usage-report.cjs; wall time only guards against hangs, since the machine is shared).
// The cases run a few processes at a time.
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCpuBackend } from '../../backends/cpu.ts';
import { loadCheckpoint } from '../../src/train/checkpoint.ts';
import { Trainer } from '../../src/train/trainer.ts';
import { expectUserError, listTree, type CliResult } from '../helpers/cli.ts';
import { tinyArgs, tinyConfig, tinyCorpus } from './helpers.ts';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'tokenformer.mjs');
const root = mkdtempSync(join(tmpdir(), 'tf-safety-'));
const TINY_YML = 'num_layers: 1\nhidden_size: 16\nnum_attention_heads: 2\nqkv_slot_num: 8\nproj_slot_num: 8\n'
  + 'ffn_slot_num: 16\nmax_position_embeddings: 32\nrotary_pct: 0.5\nvocab_size: 256\n';
const CFG = join(root, 'tiny.yml');
const DATA = join(root, 'data.txt');
/** A short run on the tiny config and a small text file (the default Brown corpus takes seconds to load). */
const TRAIN = ['train', '--config', CFG, '--data', DATA, '--steps', '3', '--batch', '2', '--seq', '16', '--eval-every', '1', '--eval-batches', '1', '--backend', 'cpu'];

const USAGE = join(import.meta.dirname, 'fixtures', 'usage-report.cjs');
interface Run extends CliResult {
  cpuSeconds: number;
  maxRssBytes: number;
}
let runs = 0;
const usageDir = mkdtempSync(join(tmpdir(), 'tf-safety-usage-')); // outside root, whose tree the tests compare

/** Runs the CLI in a child process (killed after 120 s: a hang), with its CPU time and peak memory. */
function cli(args: readonly string[], cwd = root): Promise<Run> {
  const usageFile = join(usageDir, `usage-${runs++}.json`);
  const env = { ...process.env, TF_TEST_USAGE_FILE: usageFile, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require ${USAGE}` };
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', rej);
    child.on('close', (code, signal) => {
      const usage = existsSync(usageFile) ? JSON.parse(readFileSync(usageFile, 'utf8')) : { cpuSeconds: NaN, maxRssBytes: NaN };
      res({ code, signal, out, err, ...usage });
    });
  });
}

/** Runs the cases `width` at a time (the machine has two cores). */
async function inBatches<T>(cases: (() => Promise<T>)[], width = 3): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < cases.length; i += width) out.push(...await Promise.all(cases.slice(i, i + width).map((f) => f())));
  return out;
}

/** Exit 2, one `error:` line matching re, a few CPU seconds and under 1 GiB (the 10⁶-layer config took 15 s and 2.4 GB). */
function bad(r: Run, re: RegExp): void {
  expectUserError(r, re);
  expect(r.cpuSeconds, 'CPU seconds').toBeLessThan(15);
  expect(r.maxRssBytes, 'peak memory').toBeLessThan(2 ** 30);
}

let mounted = false;
const mnt = join(root, 'small-disk');
beforeAll(async () => {
  writeFileSync(CFG, TINY_YML);
  writeFileSync(DATA, 'the cat sat on the mat. a dog ran in the fog. '.repeat(60));
  // a checkpoint to corrupt, made in-process
  await Trainer.fresh(createCpuBackend(), tinyConfig(), null, tinyArgs({ steps: 2, saveEvery: 0 }), tinyCorpus()).run({}, join(root, 'good'));
  mkdirSync(mnt);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=120k', 'tmpfs', mnt], { stdio: 'pipe' });
    mounted = true;
  } catch (e) {
    console.log(`skipping the full-disk case: cannot mount a tmpfs here (${String(e).split('\n')[0]})`);
  }
});
afterAll(() => {
  if (mounted) execFileSync('umount', [mnt]);
});

describe('train --out never destroys what is not ours', () => {
  it('refuses a user folder, a project folder as ".", a file and a link, changing nothing', async () => {
    const d = join(root, 'd');
    mkdirSync(join(d, 'sub'), { recursive: true });
    writeFileSync(join(d, 'thesis.txt'), 'keep\n');
    const project = join(root, 'project');
    mkdirSync(join(project, 'src'), { recursive: true });
    writeFileSync(join(project, 'README.md'), '# mine\n');
    writeFileSync(join(project, 'src', 'main.ts'), 'export {};\n');
    writeFileSync(join(root, 'somefile.txt'), 'precious\n');
    symlinkSync(join(root, 'good'), join(root, 'link'));
    const before = listTree(root);
    const [r1, r2, r3, r4] = await inBatches([
      () => cli([...TRAIN, '--out', d]),
      () => cli([...TRAIN, '--out', '.'], project),
      () => cli([...TRAIN, '--out', join(root, 'somefile.txt')]),
      () => cli([...TRAIN, '--out', join(root, 'link')]),
    ], 4);
    bad(r1, /--out ".*d" holds files that are not part of a tokenformer checkpoint \("sub", "thesis.txt"\)/);
    bad(r2, /--out "\." holds files that are not part of a tokenformer checkpoint \("README.md", "src"\)/);
    bad(r3, /is a file, not a checkpoint folder/);
    bad(r4, /is a symbolic link/);
    for (const r of [r1, r2, r3, r4]) expect(r.out, 'refused before training').not.toMatch(/step \d/);
    expect(listTree(root)).toEqual(before);
    expect(readFileSync(join(d, 'thesis.txt'), 'utf8')).toBe('keep\n');
    expect(readFileSync(join(root, 'somefile.txt'), 'utf8')).toBe('precious\n');
  });

  it('a full disk during a save: exit 2, one line, no temp folder, the previous checkpoint intact', async (ctx) => {
    if (!mounted) return ctx.skip();
    const r = await cli([...TRAIN, '--save-every', '1', '--out', join(mnt, 'ck')]);
    bad(r, /^error: cannot save the checkpoint \(step 2\) to ".*ck": ENOSPC: .*; the previous checkpoint in ".*ck" is intact$/);
    expect(readdirSync(mnt)).toEqual(['ck']);
    expect(loadCheckpoint(join(mnt, 'ck')).state.step).toBe(1);
  });

  it('a diverging run (--lr 1e30) stops at the first NaN and keeps the last finite checkpoint', async () => {
    const out = join(root, 'nan');
    const r = await cli([...TRAIN, '--steps', '6', '--lr', '1e30', '--save-every', '1', '--out', out]);
    bad(r, /^error: step \d+: .*(NaN|Infinity).* \(diverged; try a lower --lr\)[;,] (not saved, )?the last finite checkpoint in ".*nan" is step \d+$/);
    const m = /is step (\d+)$/.exec(r.err.trim());
    expect(m, r.err).not.toBeNull();
    expect(loadCheckpoint(out).state.step).toBe(Number(m![1])); // and load checks every tensor is finite
  });
});

describe('bad input is one line, exit 2, within seconds, nothing written', () => {
  // Representative cases only: every field, value and special file is covered in-process
  // (test/config-fuzz.test.ts, state-schema.test.ts, checkpoint-safety.test.ts).
  it('an absurd config, a memory limit, special files', async () => {
    const cfg = (name: string, extra: string) => {
      const p = join(root, name);
      writeFileSync(p, TINY_YML.replace(new RegExp(`^${extra.split(':')[0]}:.*$`, 'm'), '') + `${extra}\n`);
      return p;
    };
    const fifo = join(root, 'fifo.yml');
    execFileSync('mkfifo', [fifo]);
    const out = join(root, 'never');
    const withCfg = (c: string, ...more: string[]) => [...TRAIN.map((a) => (a === CFG ? c : a)), ...more, '--out', out];
    const rs = await inBatches([
      () => cli(withCfg(cfg('layers.yml', 'num_layers: 1000000'))),
      () => cli(withCfg(CFG, '--max-memory', '100K')),
      () => cli(withCfg(fifo)),
      () => cli([...TRAIN.map((a) => (a === DATA ? '/dev/zero' : a)), '--out', out]),
    ], 4);
    bad(rs[0], /layers\.yml: num_layers 1000000 exceeds the limit of 1024/);
    bad(rs[1], /^error: training this 5,664-parameter model with batch 2 × seq 16 needs about [\d.]+ KiB, over the 100 KiB memory limit/);
    bad(rs[2], /config ".*fifo\.yml" is a FIFO, not a regular file/);
    bad(rs[3], /"\/dev\/zero" is a device, not a regular file/);
    expect(existsSync(out)).toBe(false);
  });

  it('a corrupted state.json on --resume', async () => {
    const corrupt = (name: string, mutate: (s: Record<string, unknown>) => void) => {
      const dir = join(root, name);
      cpSync(join(root, 'good'), dir, { recursive: true });
      const s = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8'));
      mutate(s);
      writeFileSync(join(dir, 'state.json'), JSON.stringify(s));
      return { dir, tree: listTree(dir) };
    };
    const lastVal = (s: Record<string, unknown>) => (s.history as Record<string, unknown>[]).filter((p) => 'valLoss' in p).pop()!;
    const cases = [
      corrupt('nanval', (s) => (lastVal(s).valLoss = null)), // what JSON makes of a NaN validation loss (was "reading 'toFixed'")
      corrupt('huge', (s) => ((s.args as Record<string, unknown>).batch = 1e9)), // was "Invalid typed array length"
    ];
    const rs = await inBatches(cases.map((c) => () => cli(['train', '--resume', c.dir, '--backend', 'cpu'])), 4);
    bad(rs[0], /state\.json: history\[\d+\]\.valLoss must be a finite number, got null/);
    bad(rs[1], /with batch 1000000000 × seq 16 needs about [\d.]+ TiB, over the .* memory limit/);
    cases.forEach((c) => expect(listTree(c.dir)).toEqual(c.tree));
  });
});

describe('demo validates like every other command', () => {
  it('refuses impossible models, absurd sizes and a file as --out, before training', async () => {
    writeFileSync(join(root, 'report.txt'), 'mine\n');
    const out = join(root, 'demo-out');
    const rs = await inBatches([
      () => cli(['demo', '--hidden', '8', '--heads', '3', '--out', out]),
      () => cli(['demo', '--seq', '100000', '--out', out]),
      () => cli(['demo', '--out', join(root, 'report.txt')]),
    ], 4);
    bad(rs[0], /demo small model .*: hidden_size 8 is not divisible by num_attention_heads 3/);
    bad(rs[1], /training the demo's grown model \([\d,]+ parameters\) with batch 8 × seq 100000 needs about [\d.]+ TiB, over the .* memory limit/);
    bad(rs[2], /--out ".*report\.txt" is a file, not a folder/);
    expect(existsSync(out)).toBe(false);
    expect(readFileSync(join(root, 'report.txt'), 'utf8')).toBe('mine\n');
  });
});
