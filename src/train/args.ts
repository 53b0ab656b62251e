// The training recipe (TrainArgs): its defaults, its rules, and the resources a run needs
// (memory, tensor and file sizes), all checked before anything is allocated. The same rules
// judge flags, a checkpoint's saved args (state-schema.ts) and the demo's stages.
// Omits: the loop itself (trainer.ts) and flag parsing (cli/train.ts).

import type { ModelConfig } from '../config.ts';
import { UserError } from '../errors.ts';
import { checkCheckpointSize, checkMemory, checkTensorSizes, trainBytes } from '../limits.ts';
import { checkSchedule } from './schedule.ts';

export interface TrainArgs {
  steps: number; // optimizer updates (neox train_iters)
  batch: number; // micro-batch size
  seq: number; // tokens per sequence
  accum: number; // micro-batches per update (neox gradient_accumulation_steps)
  lr: number;
  minLr: number;
  warmup: number; // fraction of decayIters
  decayIters: number | null; // null = steps
  evalEvery: number; // 0 = never
  evalBatches: number;
  saveEvery: number; // 0 = only at the end
  seed: number;
  data: string | null; // null = Brown
}

export const DEFAULT_TRAIN_ARGS: TrainArgs = {
  steps: 200, batch: 8, seq: 64, accum: 1, lr: 2e-3, minLr: 2e-4, warmup: 0.01, decayIters: null,
  evalEvery: 50, evalBatches: 8, saveEvery: 100, seed: 1234, data: null,
};

/** The flag that sets each field (messages name what the user typed). */
export const ARG_FLAGS: Record<keyof TrainArgs, string> = {
  steps: '--steps', batch: '--batch', seq: '--seq', accum: '--accum', lr: '--lr', minLr: '--min-lr',
  warmup: '--warmup', decayIters: '--decay-iters', evalEvery: '--eval-every', evalBatches: '--eval-batches',
  saveEvery: '--save-every', seed: '--seed', data: '--data',
};

const POSITIVE = ['steps', 'batch', 'seq', 'accum', 'evalBatches'] as const;
const NON_NEGATIVE = ['evalEvery', 'saveEvery'] as const;

function show(v: unknown): string {
  if (typeof v === 'number') return String(v);
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 60)}…` : s;
}

/** Every field's type and range, and the schedule's rules; independent of the model. */
export function checkArgValues(a: TrainArgs): void {
  const bad = (k: keyof TrainArgs, what: string): never => {
    throw new UserError(`${ARG_FLAGS[k]} must be ${what}, got ${show(a[k])}`);
  };
  for (const k of POSITIVE) if (!Number.isSafeInteger(a[k]) || a[k] < 1) bad(k, 'a positive integer');
  for (const k of NON_NEGATIVE) if (!Number.isSafeInteger(a[k]) || a[k] < 0) bad(k, 'an integer ≥ 0');
  if (!Number.isSafeInteger(a.seed)) bad('seed', 'an integer');
  for (const k of ['lr', 'minLr', 'warmup'] as const) if (typeof a[k] !== 'number' || !Number.isFinite(a[k])) bad(k, 'a finite number');
  if (a.decayIters !== null && (!Number.isSafeInteger(a.decayIters) || a.decayIters < 1)) bad('decayIters', 'a positive integer');
  if (a.data !== null && typeof a.data !== 'string') bad('data', 'a path');
  checkSchedule({ lr: a.lr, minLr: a.minLr, warmup: a.warmup, decayIters: a.decayIters ?? a.steps });
}

export function checkTrainArgs(a: TrainArgs, c: ModelConfig): void {
  checkArgValues(a);
  if (a.seq > c.maxPositions) throw new UserError(`--seq ${a.seq} exceeds max_position_embeddings ${c.maxPositions}`);
  if (c.vocabSize < 256) throw new UserError(`the byte-level data needs vocab_size ≥ 256, the config has ${c.vocabSize}`);
}

/**
 * Refuses a run that cannot fit before anything is allocated: the estimated memory of a step
 * and a save (limits.ts trainBytes) against the budget (--max-memory, TOKENFORMER_MAX_MEMORY
 * or 75% of RAM), any tensor too big for one array, and (when saving) a checkpoint file too
 * big for one buffer. `what` names the run in the message.
 */
export function checkTrainResources(c: ModelConfig, a: TrainArgs, what: string, maxMemory?: string, saving = true): void {
  checkMemory(trainBytes(c, a.batch, a.seq, a.accum), `${what} with batch ${a.batch} × seq ${a.seq}`, maxMemory);
  checkTensorSizes(c, a.batch, a.seq, what);
  if (saving) checkCheckpointSize(c, what);
}
