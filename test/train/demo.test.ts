// The demo pipeline at toy size: three trainings, growth check, report and plots on disk;
// and the FLOPs-to-reach interpolation.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createCpuBackend } from '../../backends/cpu.ts';
import { DEFAULT_DEMO, runDemo } from '../../cli/demo/experiment.ts';
import { flopsToReach, writeReport } from '../../cli/demo/report.ts';
import { tinyCorpus } from './helpers.ts';

describe('flopsToReach', () => {
  it('interpolates the first crossing linearly', () => {
    const pts = [{ flops: 0, loss: 5 }, { flops: 10, loss: 3 }, { flops: 20, loss: 1 }, { flops: 30, loss: 0.5 }];
    expect(flopsToReach(pts, 2)).toBe(15);
    expect(flopsToReach(pts, 5)).toBe(0);
    expect(flopsToReach(pts, 0.1)).toBeNull();
  });
});

describe.each(['continue', 'restart'] as const)('demo (schedule %s)', (schedule) => {
  it('runs small → grow → train and from scratch, and writes report and plots', async () => {
    const be = createCpuBackend();
    const o = { ...DEFAULT_DEMO, schedule, layers: 1, hidden: 16, heads: 2, qkvSlots: 4, projSlots: 4, ffnSlots: 8, batch: 2, seq: 16,
      stepsSmall: 6, stepsGrown: 4, stepsScratch: 8, evalEvery: 2, evalBatches: 1 };
    const logs: string[] = [];
    const run = await runDemo(be, tinyCorpus(), o, {
      stage: () => ({ step: () => {}, done: () => {} }),
      log: (m) => logs.push(m),
    });
    expect(run.growth.valAfter).toBe(run.growth.valBefore);
    expect(run.growth.zero.maxAbsLogitDiff).toBe(0);
    expect(run.growth.random.maxAbsLogitDiff).toBeGreaterThan(0);
    expect(run.grown.config.qkvSlots).toBe(8);
    // the grown path's FLOPs continue from the small model's total
    expect(run.grown.history[0].flops).toBe(run.small.history[run.small.history.length - 1].flops);
    expect(run.grown.history[0].valLoss).toBe(run.growth.valAfter);
    expect(run.small.history[run.small.history.length - 1].step).toBe(6);
    expect(run.grown.history[run.grown.history.length - 1].step).toBe(schedule === 'continue' ? 10 : 4);
    const dir = mkdtempSync(join(tmpdir(), 'tf-demo-'));
    const s = await writeReport(dir, run, o, 1);
    for (const f of ['curves.svg', 'curves.png', 'report.md', 'report.json']) expect(existsSync(join(dir, f))).toBe(true);
    const png = readFileSync(join(dir, 'curves.png'));
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    expect(readFileSync(join(dir, 'curves.svg'), 'utf8')).toMatch(/^<svg/);
    const json = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));
    expect(json.growthCheck.outputsUnchanged).toBe(true);
    expect(json.stages.scratch.flopsAtEnd).toBe(s.flopsToReachTarget.scratchTotal);
    expect(readFileSync(join(dir, 'report.md'), 'utf8')).toMatch(/Ratio, counting the small model's training too/);
  });
});

describe('demo with the official random init', () => {
  it('reports that the outputs moved', async () => {
    const be = createCpuBackend();
    const o = { ...DEFAULT_DEMO, growInit: 'random' as const, layers: 1, hidden: 16, heads: 2, qkvSlots: 4, projSlots: 4, ffnSlots: 8,
      batch: 2, seq: 16, stepsSmall: 4, stepsGrown: 2, stepsScratch: 6, evalEvery: 2, evalBatches: 1 };
    const run = await runDemo(be, tinyCorpus(), o, { stage: () => ({ step: () => {}, done: () => {} }), log: () => {} });
    expect(run.growth.valAfter).not.toBe(run.growth.valBefore);
    const dir = mkdtempSync(join(tmpdir(), 'tf-demo-r-'));
    const s = await writeReport(dir, run, o, 1);
    expect(s.growthCheck.outputsUnchanged).toBe(false);
    expect(readFileSync(join(dir, 'report.md'), 'utf8')).toMatch(/Outputs unchanged by growth \(random init\):\*\* NO/);
  });
});
