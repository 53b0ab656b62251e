// The learning-rate schedule of GPT-NeoX (megatron/learning_rates.py, AnnealingLR with
// decay style "cosine"): linear warmup over a fraction of the decay iterations, then cosine
// from lr down to min_lr. Omits: the linear/exponential/constant decay styles and muP.

import { UserError } from '../errors.ts';

export interface ScheduleArgs {
  /** Peak learning rate (neox `lr`). */
  lr: number;
  /** Floor (neox `min_lr`). */
  minLr: number;
  /** Warmup as a fraction of decayIters (neox `warmup`, e.g. 0.01). */
  warmup: number;
  /** Iterations of the cosine (neox `lr_decay_iters`, default train_iters). */
  decayIters: number;
}

export function checkSchedule(a: ScheduleArgs): void {
  if (!(a.lr >= 0) || !(a.minLr >= 0) || a.minLr > a.lr) {
    throw new UserError(`learning rates need 0 ≤ min_lr ≤ lr, got lr ${a.lr}, min_lr ${a.minLr}`);
  }
  if (!(a.warmup >= 0 && a.warmup < 1)) throw new UserError(`warmup is a fraction in [0, 1), got ${a.warmup}`);
  if (!Number.isInteger(a.decayIters) || a.decayIters < 1) {
    throw new UserError(`lr decay iterations must be a positive integer, got ${a.decayIters}`);
  }
}

/**
 * The learning rate of optimizer update number `iter` (0-based: the first update uses
 * iter 0), as AnnealingLR.get_lr() with num_iters = iter:
 *   warmupIters = warmup · decayIters (a real number, as in neox)
 *   iter ≤ warmupIters (and warmup > 0):  lr · iter / warmupIters   (so update 0 has lr 0)
 *   otherwise: min_lr + (lr − min_lr)/2 · (1 + cos(π · (iter − w) / (decayIters − w)))
 * NOTE: neox lets the cosine swing back up past decayIters (it never trains that long by
 * default); here iter is clamped to decayIters, so the rate stays at min_lr instead.
 */
export function learningRate(a: ScheduleArgs, iter: number): number {
  const w = a.warmup * a.decayIters;
  if (w > 0 && iter <= w) return (a.lr * iter) / w;
  const t = Math.min(iter, a.decayIters) - w;
  const lr = a.minLr + ((a.lr - a.minLr) / 2) * (Math.cos((Math.PI * t) / (a.decayIters - w)) + 1);
  return Math.max(lr, a.minLr);
}
