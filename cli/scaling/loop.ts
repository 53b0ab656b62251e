// One training stage of the scaling experiment: seeded windows → forward → backward →
// (optional row freeze) → clipped AdamW on a fresh warmup + cosine schedule, with validation on
// a fixed held-out set. Built from the Trainer's pieces (model, AdamW, schedule, FLOP count)
// rather than on Trainer itself, because the `frozen` variant must act between backward and
// the optimizer step. Omits: accumulation, checkpoints and resume (a stage is minutes long).

import type { Backend, Handle } from '../../src/backend.ts';
import type { ModelConfig } from '../../src/config.ts';
import { UserError } from '../../src/errors.ts';
import { TokenFormer } from '../../src/model.ts';
import { paramSpecs } from '../../src/params.ts';
import type { Rng } from '../../src/rng.ts';
import type { Batch } from '../../src/train/data.ts';
import { trainFlopsPerToken } from '../../src/train/flops.ts';
import { AdamW, OFFICIAL_ADAMW, disposeAll } from '../../src/train/optimizer.ts';
import { learningRate } from '../../src/train/schedule.ts';
import type { RowFreeze } from './freeze.ts';
import { sampleWindows, type TokenArray } from './tokens.ts';

/** One update of a stage; flops and tokens are cumulative over the whole path. */
export interface StagePoint {
  step: number;
  tokens: number;
  flops: number;
  lr: number;
  loss?: number;
  valLoss?: number;
}

export interface StageSchedule {
  steps: number;
  lr: number;
  minLr: number;
  warmup: number;
  evalEvery: number;
}

export interface StageHooks {
  onStep?(p: StagePoint): void;
}

/** Mean loss over the validation batches, weighted by rows (the last batch may be short). */
export async function evaluate<T extends Handle>(be: Backend<T>, model: TokenFormer<T>, val: readonly Batch[]): Promise<number> {
  let sum = 0;
  let rows = 0;
  for (const b of val) {
    const ids = be.uploadInt(b.ids, [b.batch, b.seq]);
    const targets = be.uploadInt(b.targets, [b.batch, b.seq]);
    const fwd = model.forward(ids, targets);
    sum += (await be.read(fwd.loss!))[0] * b.batch;
    rows += b.batch;
    model.release(fwd);
    disposeAll(be, [fwd.logits, fwd.loss!, ids, targets]);
  }
  return sum / rows;
}

/** A model with its optimizer, trained stage after stage on one data stream. */
export class StageRunner<T extends Handle> {
  readonly history: StagePoint[] = [];

  constructor(
    readonly be: Backend<T>,
    public model: TokenFormer<T>,
    public opt: AdamW<T>,
    readonly train: TokenArray,
    readonly val: readonly Batch[],
    readonly batch: number,
    readonly seq: number,
    readonly dataRng: Rng,
    public totals: { tokens: number; flops: number } = { tokens: 0, flops: 0 },
    public freeze: RowFreeze<T> | null = null,
  ) {}

  /** A fresh model (host weights) and a fresh AdamW over every parameter, or over `trainable`. */
  static create<T extends Handle>(
    be: Backend<T>, config: ModelConfig, weights: Map<string, Float32Array>, train: TokenArray, val: readonly Batch[],
    batch: number, seq: number, dataRng: Rng, trainable?: ReadonlySet<string>,
  ): StageRunner<T> {
    const model = TokenFormer.fromHost(be, config, weights);
    const specs = paramSpecs(config).filter((s) => !trainable || trainable.has(s.name));
    return new StageRunner(be, model, new AdamW(be, specs, OFFICIAL_ADAMW), train, val, batch, seq, dataRng);
  }

  get config(): ModelConfig {
    return this.model.config;
  }

  async evaluate(): Promise<number> {
    return evaluate(this.be, this.model, this.val);
  }

  private async update(lr: number): Promise<number> {
    const be = this.be;
    const b = sampleWindows(this.train, this.batch, this.seq, this.dataRng);
    const ids = be.uploadInt(b.ids, [b.batch, b.seq]);
    const targets = be.uploadInt(b.targets, [b.batch, b.seq]);
    const fwd = this.model.forward(ids, targets);
    const grads = this.model.backward(fwd, 1);
    const loss = (await be.read(fwd.loss!))[0];
    disposeAll(be, [fwd.logits, fwd.loss!, ids, targets]);
    this.freeze?.maskGrads(grads);
    const normSq = this.opt.update(this.model.params, grads, lr);
    be.dispose(normSq);
    disposeAll(be, grads.values());
    this.freeze?.restore(this.model.params);
    return loss;
  }

  /**
   * Trains `s.steps` updates on a fresh warmup + cosine schedule, validating at the start,
   * every evalEvery updates and at the end. The first point (step 0) is the stage's start.
   */
  async runStage(s: StageSchedule, label: string, hooks: StageHooks = {}): Promise<StagePoint[]> {
    const sched = { lr: s.lr, minLr: s.minLr, warmup: s.warmup, decayIters: s.steps };
    const flopsPerToken = trainFlopsPerToken(this.config, this.seq);
    const points: StagePoint[] = [{ step: 0, ...this.totals, lr: learningRate(sched, 0), valLoss: await this.evaluate() }];
    for (let step = 1; step <= s.steps; step++) {
      const lr = learningRate(sched, step - 1);
      const loss = await this.update(lr);
      if (!Number.isFinite(loss)) throw new UserError(`${label}: the training loss became ${loss} at update ${step}; lower --lr or --stage-lr`);
      const tokens = this.batch * this.seq;
      this.totals = { tokens: this.totals.tokens + tokens, flops: this.totals.flops + tokens * flopsPerToken };
      const p: StagePoint = { step, ...this.totals, lr, loss };
      if ((s.evalEvery > 0 && step % s.evalEvery === 0) || step === s.steps) p.valLoss = await this.evaluate();
      points.push(p);
      hooks.onStep?.(p);
    }
    this.history.push(...points);
    return points;
  }

  dispose(): void {
    this.model.dispose();
    this.opt.dispose();
    this.freeze?.dispose();
  }
}
