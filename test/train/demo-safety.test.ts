// The demo's options go through the same validation as every config and recipe, and its
// report is written only where it destroys nothing: a new, empty or earlier-demo folder, each
// file atomically, and a full disk (a real small tmpfs) leaves no file of this run behind.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCpuBackend } from '../../backends/cpu.ts';
import { UserError } from '../../src/errors.ts';
import { DEFAULT_DEMO, checkDemoOptions, checkDemoResources, runDemo, type DemoOptions, type DemoRun } from '../../cli/demo/experiment.ts';
import { DEMO_FILES, checkDemoOut, writeReport } from '../../cli/demo/report.ts';
import { listTree } from '../helpers/cli.ts';
import { tinyCorpus } from './helpers.ts';
import { userError } from '../helpers/user-error.ts';

const TINY: DemoOptions = {
  ...DEFAULT_DEMO, layers: 1, hidden: 16, heads: 2, qkvSlots: 4, projSlots: 4, ffnSlots: 8, batch: 2, seq: 16,
  stepsSmall: 2, stepsGrown: 2, stepsScratch: 2, evalEvery: 1, evalBatches: 1,
};

describe('demo options', () => {
  it('are validated like any config and recipe', () => {
    const cases: [Partial<DemoOptions>, RegExp][] = [
      [{ hidden: 8, heads: 3 }, /^demo small model .*: hidden_size 8 is not divisible by num_attention_heads 3$/],
      [{ layers: -1 }, /^--layers must be a positive integer, got -1$/],
      [{ layers: 1.5 }, /^--layers must be a positive integer, got 1.5$/],
      [{ stepsGrown: 0 }, /^--steps-grown must be a positive integer, got 0$/],
      [{ evalEvery: 0 }, /^--eval-every must be a positive integer, got 0$/],
      [{ lr: NaN }, /^--lr must be a finite number, got NaN$/],
      [{ growFactor: 10 ** 8 }, /^demo grown model .*: qkv_slot_num 400000000 exceeds the limit of 1048576/],
      [{ variant: 'relu' as never }, /^--variant must be one of/],
    ];
    for (const [over, re] of cases) expect(userError(() => checkDemoOptions({ ...TINY, ...over }))).toMatch(re);
    expect(userError(() => checkDemoResources({ ...DEFAULT_DEMO, seq: 100_000 })))
      .toMatch(/^training the demo's grown model \([\d,]+ parameters\) with batch 8 × seq 100000 needs about [\d.]+ TiB, over the .* memory limit/);
    expect(() => checkDemoOptions(DEFAULT_DEMO)).not.toThrow();
  });
});

describe('demo report files', () => {
  let run: DemoRun;
  const mnt = mkdtempSync(join(tmpdir(), 'tf-demo-full-'));
  let mounted = false;
  beforeAll(async () => {
    run = await runDemo(createCpuBackend(), tinyCorpus(), TINY, { stage: () => ({ step: () => {}, done: () => {} }), log: () => {} });
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=12k', 'tmpfs', mnt], { stdio: 'pipe' });
      mounted = true;
    } catch (e) {
      console.log(`skipping the full-disk case: cannot mount a tmpfs here (${String(e).split('\n')[0]})`);
    }
  });
  afterAll(() => {
    if (mounted) execFileSync('umount', [mnt]);
  });

  it('go into a new, empty or earlier-demo folder; a user folder, a file or a link is refused and untouched', async () => {
    const root = mkdtempSync(join(tmpdir(), 'tf-demo-out-'));
    await writeReport(join(root, 'new', 'demo'), run, TINY, 1);
    expect(readdirSync(join(root, 'new', 'demo')).sort()).toEqual([...DEMO_FILES].sort());
    expect(checkDemoOut(join(root, 'new', 'demo'))).toBe('report');
    await writeReport(join(root, 'new', 'demo'), run, TINY, 2); // an earlier demo's folder is replaced file by file
    expect(JSON.parse(readFileSync(join(root, 'new', 'demo', 'report.json'), 'utf8')).wallSeconds).toBe(2);
    mkdirSync(join(root, 'project'));
    writeFileSync(join(root, 'project', 'README.md'), 'mine');
    writeFileSync(join(root, 'project', 'report.md'), 'my own report');
    writeFileSync(join(root, 'file.txt'), 'mine');
    symlinkSync(join(root, 'new', 'demo'), join(root, 'link'));
    mkdirSync(join(root, 'lookalike'));
    writeFileSync(join(root, 'lookalike', 'report.json'), '{"not": "ours"}');
    const before = listTree(root);
    await expect(writeReport(join(root, 'project'), run, TINY, 1)).rejects.toThrow(/holds files that are not a demo's output \("README.md"\)/);
    await expect(writeReport(join(root, 'file.txt'), run, TINY, 1)).rejects.toThrow(/is a file, not a folder/);
    await expect(writeReport(join(root, 'link'), run, TINY, 1)).rejects.toThrow(/is a symbolic link/);
    await expect(writeReport(join(root, 'lookalike'), run, TINY, 1)).rejects.toThrow(/no report\.json of a tokenformer demo/);
    expect(listTree(root)).toEqual(before);
    expect(readFileSync(join(root, 'project', 'report.md'), 'utf8')).toBe('my own report');
  });

  it('on a full disk: one line, and no file (and no folder) of this run is left', async (ctx) => {
    if (!mounted) return ctx.skip();
    let msg = '';
    try {
      await writeReport(join(mnt, 'demo'), run, TINY, 1);
    } catch (e) {
      expect(e).toBeInstanceOf(UserError);
      msg = (e as Error).message;
    }
    expect(msg).toMatch(/^cannot write .*: .*ENOSPC.*; the demo's files from this run were removed$/);
    expect(msg).not.toMatch(/\n/);
    expect(readdirSync(mnt)).toEqual([]);
  });
});
