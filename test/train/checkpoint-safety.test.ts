// Checkpoint folders never destroy what is not ours (in-process): what --out may be, the
// leftover sweep touching only exact temp/old names that hold only our files, failed saves
// cleaning up and keeping the previous checkpoint, tensors validated on load, a diverging run
// stopping without saving non-finite weights; --data folders with links, loops and FIFOs;
// and the memory estimates against the exact parameter count.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createCpuBackend } from '../../backends/cpu.ts';
import { UserError } from '../../src/errors.ts';
import { paramFloats, trainBytes } from '../../src/limits.ts';
import { checkTrainResources } from '../../src/train/args.ts';
import { checkOutputDir, loadCheckpoint, saveCheckpoint, type Checkpoint } from '../../src/train/checkpoint.ts';
import { loadCorpus } from '../../src/train/data.ts';
import { paramCount } from '../../src/train/flops.ts';
import { Trainer } from '../../src/train/trainer.ts';
import { serializeSafetensors } from '../../src/safetensors.ts';
import { numberFlag } from '../../cli/train.ts';
import { listTree } from '../helpers/cli.ts';
import { fixtureState } from './fixtures/ckpt-state.ts';
import { tinyArgs, tinyConfig, tinyCorpus } from './helpers.ts';
import { userError } from '../helpers/user-error.ts';

const tmp = (tag: string) => mkdtempSync(join(tmpdir(), `tf-safe-${tag}-`));

function ck(step: number, fill = step): Checkpoint {
  const t = () => ({ shape: [4], data: new Float32Array(4).fill(fill) });
  return { weights: new Map([['w', t()]]), moments: new Map([['m.w', t()], ['v.w', t()]]), state: fixtureState(step) };
}

describe('what --out may be', () => {
  it('absent, empty or our checkpoint; anything else is refused and left as it was', () => {
    const root = tmp('out');
    expect(checkOutputDir(join(root, 'new', 'ck'))).toBe('absent');
    mkdirSync(join(root, 'empty'));
    expect(checkOutputDir(join(root, 'empty'))).toBe('empty');
    saveCheckpoint(join(root, 'ours'), ck(1), '');
    expect(checkOutputDir(join(root, 'ours'))).toBe('checkpoint');
    mkdirSync(join(root, 'user', 'sub'), { recursive: true });
    writeFileSync(join(root, 'user', 'thesis.txt'), 'keep');
    writeFileSync(join(root, 'file.txt'), 'keep');
    symlinkSync(join(root, 'ours'), join(root, 'link'));
    mkdirSync(join(root, 'fake'));
    writeFileSync(join(root, 'fake', 'weights.safetensors'), 'mine');
    mkdirSync(join(root, 'bogus'));
    writeFileSync(join(root, 'bogus', 'state.json'), '{"version": 1}');
    mkdirSync(join(root, 'dirname', 'state.json'), { recursive: true });
    const before = listTree(root);
    expect(userError(() => checkOutputDir(join(root, 'user')))).toMatch(/holds files that are not part of a tokenformer checkpoint \("sub", "thesis.txt"\)/);
    expect(userError(() => checkOutputDir(join(root, 'file.txt')))).toMatch(/is a file, not a checkpoint folder/);
    expect(userError(() => checkOutputDir(join(root, 'link')))).toMatch(/is a symbolic link/);
    expect(userError(() => checkOutputDir(join(root, 'fake')))).toMatch(/has no state\.json/);
    expect(userError(() => checkOutputDir(join(root, 'bogus')))).toMatch(/is not a valid tokenformer checkpoint \(.*step must be an integer/);
    expect(userError(() => checkOutputDir(join(root, 'dirname')))).toMatch(/holds files that are not part of a tokenformer checkpoint \("state.json"\)/);
    expect(userError(() => checkOutputDir(join(root, 'file.txt', 'ck')))).toMatch(/file\.txt" is not a folder/);
    expect(userError(() => checkOutputDir(''))).toMatch(/^--out "" is empty;/);
    // a save re-checks: it refuses the user's folder too, and changes nothing
    expect(userError(() => saveCheckpoint(join(root, 'user'), ck(2), ''))).toMatch(/holds files that are not part/);
    expect(listTree(root)).toEqual(before);
    expect(readFileSync(join(root, 'user', 'thesis.txt'), 'utf8')).toBe('keep');
  });

  it('the leftover sweep removes only exact <dir>.tmp-/.old-<pid>-<8 hex> folders of our files', () => {
    const root = tmp('sweep');
    const dead = 99_999_999; // above any pid_max: no such process
    const mk = (name: string, files: Record<string, string>) => {
      mkdirSync(join(root, name));
      for (const [f, text] of Object.entries(files)) writeFileSync(join(root, name, f), text);
    };
    mk(`ck.tmp-${dead}-deadbeef`, { 'thesis.txt': 'keep' }); // right name, a user's file inside
    mk(`ck.tmp-${dead}-0123abcd`, { 'weights.safetensors': 'partial' }); // a dead save's temp folder: ours
    mk(`ck.old-${dead}-0a1b2c3d`, { 'state.json': '{}', 'config.yml': '' }); // a kill between the renames: ours
    mk('ck.old-12-notahex1', { 'state.json': '{}' }); // not our pattern
    mk('ck.tmpfoo', { 'state.json': '{}' });
    mk(`other.tmp-${dead}-0123abcd`, { 'state.json': '{}' }); // another checkpoint's name
    mkdirSync(join(root, 'precious'));
    writeFileSync(join(root, 'precious', 'state.json'), 'user data');
    symlinkSync(join(root, 'precious'), join(root, `ck.old-${dead}-11112222`)); // a link with our name
    writeFileSync(join(root, `ck.old-${dead}-33334444`), 'a file, not a folder');
    mk(`ck.tmp-${process.ppid}-55556666`, { 'state.json': '{}' }); // a live process's save in progress
    saveCheckpoint(join(root, 'ck'), ck(1), '');
    expect(readdirSync(root).sort()).toEqual([
      'ck', 'ck.old-12-notahex1', `ck.old-${dead}-11112222`, `ck.old-${dead}-33334444`, `ck.tmp-${dead}-deadbeef`,
      `ck.tmp-${process.ppid}-55556666`, 'ck.tmpfoo', `other.tmp-${dead}-0123abcd`, 'precious',
    ].sort());
    expect(readFileSync(join(root, 'precious', 'state.json'), 'utf8')).toBe('user data');
    expect(readFileSync(join(root, `ck.tmp-${dead}-deadbeef`, 'thesis.txt'), 'utf8')).toBe('keep');
  });
});

describe('a failed save', () => {
  const failAt = (phase: string) => (f: string) => {
    if (f === phase) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  };

  for (const phase of ['weights.safetensors', 'optimizer.safetensors', 'state.json', '(renamed aside)']) {
    it(`at "${phase}" removes its temp folder and keeps the previous checkpoint`, () => {
      const root = tmp('fail');
      const dir = join(root, 'ck');
      saveCheckpoint(dir, ck(1), '');
      const msg = userError(() => saveCheckpoint(dir, ck(2), '', failAt(phase)));
      expect(msg).toBe(`cannot save the checkpoint (step 2) to ${JSON.stringify(dir)}: ENOSPC: no space left on device, write; `
        + `the previous checkpoint in ${JSON.stringify(dir)} is intact`);
      expect(readdirSync(root)).toEqual(['ck']);
      const back = loadCheckpoint(dir);
      expect(back.state.step).toBe(1);
      expect(Array.from(back.weights.get('w')!.data)).toEqual([1, 1, 1, 1]);
    });
  }

  it('on the first save leaves nothing behind', () => {
    const root = tmp('fail1');
    expect(userError(() => saveCheckpoint(join(root, 'ck'), ck(1), '', failAt('weights.safetensors')))).toMatch(/nothing was left in/);
    expect(readdirSync(root)).toEqual([]);
  });
});

describe('tensors are validated on load', () => {
  const withFile = (file: string, tensors: Map<string, { shape: number[]; data: Float32Array }>) => {
    const dir = join(tmp('load'), 'ck');
    saveCheckpoint(dir, ck(3), '');
    writeFileSync(join(dir, file), serializeSafetensors(tensors));
    return dir;
  };
  const t = (...v: number[]) => ({ shape: [v.length], data: Float32Array.from(v) });

  it('NaN or infinite weights and moments, and negative second moments, are refused', () => {
    expect(userError(() => loadCheckpoint(withFile('weights.safetensors', new Map([['w', t(1, NaN, 3, 4)]])))))
      .toMatch(/weights\.safetensors: "w" holds NaN at index 1 \(a checkpoint must be finite\)/);
    expect(userError(() => loadCheckpoint(withFile('optimizer.safetensors', new Map([['m.w', t(0, 0, Infinity, 0)], ['v.w', t(0, 0, 0, 0)]])))))
      .toMatch(/"m\.w" holds Infinity at index 2/);
    expect(userError(() => loadCheckpoint(withFile('optimizer.safetensors', new Map([['m.w', t(0, 0, 0, 0)], ['v.w', t(0, 1, -0.5, 0)]])))))
      .toMatch(/"v\.w" holds -0\.5 at index 2; Adam's second moment is never negative/);
  });
});

describe('a diverging run', () => {
  it('stops at the first non-finite value, names the last finite checkpoint and never saves NaN', async () => {
    const dir = join(tmp('nan'), 'ck');
    const t = Trainer.fresh(createCpuBackend(), tinyConfig(), null, tinyArgs({ lr: 1e30, minLr: 0, steps: 8, saveEvery: 1, evalEvery: 1 }), tinyCorpus());
    let msg = '';
    try {
      await t.run({}, dir);
    } catch (e) {
      expect(e).toBeInstanceOf(UserError);
      msg = (e as Error).message;
    }
    const m = /^step (\d+): (loss is|gradient norm is|validation loss is|(?:weight|optimizer moment) '[^']+' holds) (NaN|-?Infinity)[^;]*diverged; try a lower --lr\)[;,] .*the last finite checkpoint in (.*) is step (\d+)$/.exec(msg);
    expect(m, msg).not.toBeNull();
    expect(m![4]).toBe(JSON.stringify(dir));
    const saved = loadCheckpoint(dir); // finite by construction: load validates every tensor
    expect(saved.state.step).toBe(Number(m![5]));
    expect(saved.state.step).toBeLessThan(Number(m![1]));
    expect(saved.state.history.every((p) => [p.loss ?? 0, p.gradNorm ?? 0, p.valLoss ?? 0].every(Number.isFinite))).toBe(true);
  });
});

describe('--data folders', () => {
  it('follow links to files and folders; refuse loops, dangling links and FIFOs by name; keep the walk order', () => {
    const root = tmp('data');
    mkdirSync(join(root, 'a'));
    writeFileSync(join(root, 'a', 'b.txt'), 'B'.repeat(100));
    writeFileSync(join(root, 'a-c.txt'), 'C'.repeat(100));
    writeFileSync(join(root, 'outside.txt'), 'O'.repeat(100));
    const d = join(root, 'd');
    mkdirSync(d);
    symlinkSync(join(root, 'a'), join(d, 'a'));
    symlinkSync(join(root, 'a-c.txt'), join(d, 'a-c.txt'));
    const c = loadCorpus(d);
    expect(c.source).toMatch(/2 files/);
    // a/b.txt before a-c.txt: a folder's entries by name, depth first (not a sort of full paths)
    expect(new TextDecoder().decode(c.train).startsWith('BBBB')).toBe(true);
    symlinkSync(d, join(root, 'a', 'loop'));
    expect(userError(() => loadCorpus(d))).toMatch(/^--data: ".*loop" leads back to a folder already read \(a symbolic link loop/);
    execFileSync('rm', [join(root, 'a', 'loop')]);
    symlinkSync(join(root, 'nowhere'), join(d, 'dangling'));
    expect(userError(() => loadCorpus(d))).toMatch(/^--data: ".*dangling" is a dangling symbolic link$/);
    execFileSync('rm', [join(d, 'dangling')]);
    execFileSync('mkfifo', [join(d, 'pipe')]);
    const t0 = performance.now();
    expect(userError(() => loadCorpus(d))).toMatch(/^--data: ".*pipe" is a FIFO; a data folder may hold only regular files and folders$/);
    expect(userError(() => loadCorpus(join(d, 'pipe')))).toMatch(/is a FIFO, not a regular file/);
    expect(userError(() => loadCorpus('/dev/zero'))).toMatch(/"\/dev\/zero" is a device, not a regular file/);
    expect(performance.now() - t0).toBeLessThan(1000);
  });
});

describe('memory estimates', () => {
  it('count parameters exactly (as paramCount), layer slots included, and refuse with the estimate and the limit', () => {
    for (const c of [tinyConfig(), tinyConfig({ tied: false, numLayers: 3 }), tinyConfig({ layerSlots: { 'sequential.3.mlp': 40, 'sequential.2.attention.key': 2 }, numLayers: 2 })]) {
      expect(paramFloats(c)).toBe(paramCount(c));
    }
    const c = tinyConfig();
    expect(trainBytes(c, 8, 64, 2)).toBeGreaterThan(trainBytes(c, 8, 64, 1));
    // weights, gradients, two moments; a save's three host copies and the serialized moments
    expect(trainBytes(c, 8, 64)).toBeGreaterThan(4 * 9 * paramFloats(c));
    expect(userError(() => checkTrainResources(c, tinyArgs(), 'training this model', '100K')))
      .toMatch(/^training this model with batch 2 × seq 16 needs about [\d.]+ KiB, over the 100 KiB memory limit \(raise it with --max-memory/);
    expect(userError(() => checkTrainResources(c, tinyArgs({ batch: 1e6, seq: 64 }), 'x', '1T')))
      .toMatch(/^x: the logits \(batch × seq × vocab_size\) would have 1\.64e\+10 elements, over the 4294967296 one array can hold$/);
    expect(() => checkTrainResources(c, tinyArgs(), 'x', '1G')).not.toThrow();
  });
});

describe('numeric flags', () => {
  it('parse as finite numbers, integers where counts are meant; ranges are judged once, later', () => {
    const batch = numberFlag('batch', true);
    expect(batch('8')).toBe(8);
    expect(batch('1e3')).toBe(1000);
    expect(batch('-1')).toBe(-1); // checkArgValues refuses it with the range
    expect(userError(() => batch('1.5'))).toBe('--batch expects an integer, got "1.5"');
    expect(userError(() => batch('1e300'))).toBe('--batch expects an integer, got "1e300"');
    expect(userError(() => numberFlag('lr', false)('NaN'))).toBe('--lr expects a number, got "NaN"');
    expect(userError(() => numberFlag('lr', false)(' '))).toBe('--lr expects a number, got " "');
    expect(numberFlag('lr', false)('1e-3')).toBe(1e-3);
  });
});
