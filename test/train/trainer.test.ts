// The training loop on the CPU reference: loss goes down, and a run stopped and resumed from
// its checkpoint has exactly the same loss curve as an uninterrupted one.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createCpuBackend } from '../../backends/cpu.ts';
import { loadCheckpoint } from '../../src/train/checkpoint.ts';
import { Trainer } from '../../src/train/trainer.ts';
import { growModel } from '../../src/grow.ts';
import { Rng } from '../../src/rng.ts';
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

  it('grows mid-training: validation loss unchanged, old moments carried, new moments zero', async () => {
    const t = Trainer.fresh(be, tinyConfig(), null, tinyArgs({ steps: 4, evalEvery: 0 }), corpus);
    await t.run();
    const before = await t.evaluate();
    const name = 'sequential.2.mlp.key_param_tokens';
    const m0 = await be.read(t.opt.m.get(name)!);
    const g = growModel(t.config, await t.model.toHost(), { qkv: 16, proj: 16, ffn: 32 }, 'zero', new Rng(1));
    await t.grow(g.config, g.weights);
    expect(await t.evaluate()).toBe(before);
    const m1 = await be.read(t.opt.m.get(name)!);
    expect(Array.from(m1.subarray(0, m0.length))).toEqual(Array.from(m0));
    expect(m1.subarray(m0.length).every((v) => v === 0)).toBe(true);
    expect(m1.length).toBe(2 * m0.length);
    const p = await t.trainStep(); // and it keeps training
    expect(Number.isFinite(p.loss!)).toBe(true);
  });
});
