// The training loop on the CPU reference: loss goes down, and a run stopped and resumed from
// its checkpoint has exactly the same loss curve as an uninterrupted one.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createCpuBackend } from '../../backends/cpu.ts';
import { loadCheckpoint } from '../../src/train/checkpoint.ts';
import { Trainer } from '../../src/train/trainer.ts';
import { tinyArgs, tinyConfig, tinyCorpus } from './helpers.ts';

const be = createCpuBackend();
const corpus = tinyCorpus();

describe('Trainer', () => {
  it('lowers the training loss', async () => {
    const t = Trainer.fresh(be, tinyConfig(), null, tinyArgs({ steps: 40, evalEvery: 40, lr: 1e-2, minLr: 1e-3 }), corpus);
    await t.run();
    const h = t.state.history;
    expect(h[0].valLoss!).toBeGreaterThan(5); // ≈ ln 256 at init
    expect(h[40].valLoss!).toBeLessThan(h[0].valLoss! - 1.5);
    expect(h[40].tokens).toBe(40 * 2 * 16);
    expect(h[40].flops).toBeGreaterThan(0);
  });

  it('resumes exactly: the loss curve equals the uninterrupted run (with accumulation)', async () => {
    const args = tinyArgs({ accum: 2 });
    const dirA = join(mkdtempSync(join(tmpdir(), 'tf-res-')), 'a');
    const dirB = join(mkdtempSync(join(tmpdir(), 'tf-res-')), 'b');
    const full = Trainer.fresh(be, tinyConfig(), null, args, corpus);
    await full.run({}, dirA);
    const first = Trainer.fresh(be, tinyConfig(), null, args, corpus);
    await first.run({}, dirB, 3); // "killed" after the step-3 checkpoint
    const ck = loadCheckpoint(dirB);
    expect(ck.state.step).toBe(3);
    const resumed = Trainer.resume(be, ck, corpus);
    await resumed.run({}, dirB);
    expect(resumed.state.history).toEqual(full.state.history); // bit-identical losses, lr, norms
    const wa = loadCheckpoint(dirA).weights;
    const wb = loadCheckpoint(dirB).weights;
    for (const [name, t] of wa) expect(Array.from(wb.get(name)!.data)).toEqual(Array.from(t.data));
  });
});
