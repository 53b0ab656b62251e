// The GPT-NeoX warmup + cosine schedule: endpoints, monotonicity, the warmup line.
import { describe, expect, it } from 'vitest';
import { learningRate, checkSchedule } from '../../src/train/schedule.ts';

describe('learningRate', () => {
  const a = { lr: 1e-3, minLr: 1e-4, warmup: 0.1, decayIters: 100 };

  it('warms up linearly from 0 (update 0 has lr 0, as in neox)', () => {
    expect(learningRate(a, 0)).toBe(0);
    expect(learningRate(a, 5)).toBeCloseTo(5e-4, 15);
    expect(learningRate(a, 10)).toBeCloseTo(1e-3, 15);
  });

  it('decays by cosine to min_lr at decayIters and stays there', () => {
    expect(learningRate(a, 55)).toBeCloseTo((1e-3 + 1e-4) / 2, 12);
    expect(learningRate(a, 100)).toBeCloseTo(1e-4, 15);
    expect(learningRate(a, 250)).toBeCloseTo(1e-4, 15);
    for (let i = 10; i < 100; i++) expect(learningRate(a, i + 1)).toBeLessThanOrEqual(learningRate(a, i));
  });

  it('without warmup starts at the peak', () => {
    expect(learningRate({ ...a, warmup: 0 }, 0)).toBe(1e-3);
  });

  it('rejects bad arguments', () => {
    expect(() => checkSchedule({ ...a, minLr: 1 })).toThrow(/min_lr/);
    expect(() => checkSchedule({ ...a, warmup: 1 })).toThrow(/warmup/);
    expect(() => checkSchedule({ ...a, decayIters: 0 })).toThrow(/decay/);
  });
});
