// The training loop, written only against the backend contract: seeded batches → forward →
// backward (accumulated over micro-batches) → clipped AdamW with warmup+cosine; fixed-set
// validation; atomic checkpoints that resume bit-exactly; growth of a live run. A run stops at
// the first non-finite loss, gradient norm or weight (Diverged) and never saves such weights.
// Omits: data/model parallelism, mixed precision and early stopping.

import type { Backend, Handle } from '../backend.ts';
import type { ModelConfig } from '../config.ts';
import { configToYaml } from '../config-parse.ts';
import { UserError } from '../errors.ts';
import { quote } from '../fsguard.ts';
import { TokenFormer } from '../model.ts';
import { initParams, paramSpecs } from '../params.ts';
import { Rng } from '../rng.ts';
import { type Batch, type Corpus, checkSplit, sampleBatch, validationBatches } from './data.ts';
import { trainFlopsPerToken } from './flops.ts';
import { AdamW, OFFICIAL_ADAMW, accumulateGrads, disposeAll } from './optimizer.ts';
import { learningRate } from './schedule.ts';
import { checkTrainArgs, type TrainArgs } from './args.ts';
import {
  type Checkpoint, type HistoryPoint, type TrainState, firstNonFinite, newState, saveCheckpoint,
} from './checkpoint.ts';

export { DEFAULT_TRAIN_ARGS, checkTrainArgs, type TrainArgs } from './args.ts';

/** A run that went non-finite; the message names the step and the last finite checkpoint. */
export class Diverged extends UserError {
  override name = 'Diverged';
}

/** Seed of the data stream: distinct from the init stream Rng(seed). */
export function dataSeed(seed: number): number {
  return seed + 0x5f3759df;
}

export class Trainer<T extends Handle> {
  private readonly valSet: Batch[];
  /** The last checkpoint known finite: saved by this run, or the one it resumed from (set by the caller). */
  lastSave: { dir: string; step: number } | null = null;

  private constructor(
    readonly backend: Backend<T>,
    public model: TokenFormer<T>,
    readonly opt: AdamW<T>,
    readonly corpus: Corpus,
    readonly args: TrainArgs,
    private dataRng: Rng,
    readonly state: TrainState,
  ) {
    checkTrainArgs(args, model.config);
    checkSplit(corpus.train, args.seq, 'train');
    this.valSet = validationBatches(corpus.val, args.batch, args.seq, args.evalBatches);
  }

  /** A new run from host weights (null = the seeded official init, Rng(seed)). */
  static fresh<T extends Handle>(
    be: Backend<T>, config: ModelConfig, weights: Map<string, Float32Array> | null, args: TrainArgs, corpus: Corpus,
    offsets: { tokens: number; flops: number } = { tokens: 0, flops: 0 },
  ): Trainer<T> {
    checkTrainArgs(args, config);
    const model = TokenFormer.fromHost(be, config, weights ?? initParams(config, new Rng(args.seed)));
    const opt = new AdamW(be, paramSpecs(config), OFFICIAL_ADAMW);
    const rng = new Rng(dataSeed(args.seed));
    const state = newState(config, { ...args }, rng.getState());
    state.offsetTokens = offsets.tokens;
    state.offsetFlops = offsets.flops;
    return new Trainer(be, model, opt, corpus, args, rng, state);
  }

  /** Continues a saved run exactly (args from the checkpoint unless overridden). */
  static resume<T extends Handle>(be: Backend<T>, ck: Checkpoint, corpus: Corpus, args?: TrainArgs): Trainer<T> {
    const s = ck.state;
    const a = args ?? (s.args as unknown as TrainArgs);
    const host = new Map([...ck.weights].map(([k, t]) => [k, t.data]));
    const model = TokenFormer.fromHost(be, s.config, host);
    const opt = new AdamW(be, paramSpecs(s.config), OFFICIAL_ADAMW);
    if (!ck.moments) throw new UserError('checkpoint has no optimizer.safetensors; cannot resume exactly');
    opt.loadHost(ck.moments, s.optStep ?? s.step, 'optimizer.safetensors');
    const state: TrainState = { ...s, args: { ...a }, history: [...s.history] };
    return new Trainer(be, model, opt, corpus, a, Rng.fromState(s.dataRng), state);
  }

  get step(): number {
    return this.state.step;
  }

  get config(): ModelConfig {
    return this.model.config;
  }

  /** Tokens and FLOPs spent so far, including any offset (a model grown from a smaller one). */
  totals(): { tokens: number; flops: number } {
    const last = this.state.history[this.state.history.length - 1];
    return last ? { tokens: last.tokens, flops: last.flops } : { tokens: this.state.offsetTokens ?? 0, flops: this.state.offsetFlops ?? 0 };
  }

  lrAt(iter: number): number {
    const a = this.args;
    return learningRate({ lr: a.lr, minLr: a.minLr, warmup: a.warmup, decayIters: a.decayIters ?? a.steps }, iter);
  }

  /** forward + backward of one micro-batch; returns its loss and gradients. */
  private async microStep(batch: Batch, dLoss: number): Promise<{ loss: number; grads: Map<string, T> }> {
    const be = this.backend;
    const ids = be.uploadInt(batch.ids, [batch.batch, batch.seq]);
    const targets = be.uploadInt(batch.targets, [batch.batch, batch.seq]);
    const fwd = this.model.forward(ids, targets);
    const grads = this.model.backward(fwd, dLoss);
    const loss = (await be.read(fwd.loss!))[0];
    disposeAll(be, [fwd.logits, fwd.loss!, ids, targets]);
    return { loss, grads };
  }

  /** One optimizer update over `accum` micro-batches. */
  async trainStep(): Promise<HistoryPoint> {
    const be = this.backend;
    const a = this.args;
    let acc: Map<string, T> | null = null;
    let lossSum = 0;
    for (let i = 0; i < a.accum; i++) {
      // NOTE: each micro-batch backward uses dLoss = 1/accum, so the summed gradient is the mean.
      const r = await this.microStep(sampleBatch(this.corpus.train, a.batch, a.seq, this.dataRng), 1 / a.accum);
      lossSum += r.loss;
      acc = accumulateGrads(be, acc, r.grads);
    }
    const lr = this.lrAt(this.state.step);
    const normSq = this.opt.update(this.model.params, acc!, lr);
    const gradNorm = Math.sqrt((await be.read(normSq))[0]);
    be.dispose(normSq);
    disposeAll(be, acc!.values());
    const prev = this.totals();
    const tokens = a.batch * a.seq * a.accum;
    this.state.step += 1;
    this.state.dataRng = this.dataRng.getState();
    const point: HistoryPoint = {
      step: this.state.step, tokens: prev.tokens + tokens,
      flops: prev.flops + tokens * trainFlopsPerToken(this.config, a.seq), lr, loss: lossSum / a.accum, gradNorm,
    };
    this.state.history.push(point);
    return point;
  }

  /** Mean loss over the fixed validation batches. */
  async evaluate(): Promise<number> {
    const be = this.backend;
    let sum = 0;
    for (const b of this.valSet) {
      const ids = be.uploadInt(b.ids, [b.batch, b.seq]);
      const targets = be.uploadInt(b.targets, [b.batch, b.seq]);
      const fwd = this.model.forward(ids, targets);
      sum += (await be.read(fwd.loss!))[0];
      this.model.release(fwd);
      disposeAll(be, [fwd.logits, fwd.loss!, ids, targets]);
    }
    return sum / this.valSet.length;
  }

  /** The history's point 0 (before any update), with its validation loss. */
  private async startPoint(): Promise<void> {
    if (this.state.history.length > 0 || this.state.step > 0) return;
    const t = this.totals();
    const p: HistoryPoint = { step: 0, tokens: t.tokens, flops: t.flops, lr: this.lrAt(0) };
    if (this.args.evalEvery > 0) p.valLoss = await this.evaluate();
    this.state.history.push(p);
  }

  /**
   * Trains until args.steps, validating every evalEvery steps (and at the end) and saving
   * to outDir every saveEvery steps (and at the end). `stopAt` ends early (tests).
   */
  async run(hooks: { onStep?: (p: HistoryPoint) => void } = {}, outDir: string | null = null, stopAt?: number): Promise<void> {
    const a = this.args;
    await this.startPoint();
    const end = Math.min(a.steps, stopAt ?? a.steps);
    while (this.state.step < end) {
      const p = await this.trainStep();
      this.checkFinite(p.step, 'loss', p.loss!);
      this.checkFinite(p.step, 'gradient norm', p.gradNorm!);
      if (a.evalEvery > 0 && (p.step % a.evalEvery === 0 || p.step === a.steps)) {
        p.valLoss = await this.evaluate();
        this.checkFinite(p.step, 'validation loss', p.valLoss);
      }
      hooks.onStep?.(p);
      if (outDir && ((a.saveEvery > 0 && p.step % a.saveEvery === 0) || p.step === a.steps)) await this.save(outDir);
    }
  }

  /** Throws Diverged when a logged value is NaN or infinite (the weights are then not saved). */
  checkFinite(step: number, what: string, x: number): void {
    if (Number.isFinite(x)) return;
    throw new Diverged(`step ${step}: ${what} is ${x} (diverged; try a lower --lr); ${this.lastSaveNote()}`);
  }

  private lastSaveNote(): string {
    return this.lastSave ? `the last finite checkpoint in ${quote(this.lastSave.dir)} is step ${this.lastSave.step}` : 'no checkpoint was saved';
  }

  async checkpoint(): Promise<Checkpoint> {
    const host = await this.model.toHost();
    const weights = new Map([...host].map(([k, data]) => [k, { shape: [...this.model.params.get(k)!.shape], data }]));
    const state: TrainState = { ...this.state, config: this.config, history: [...this.state.history], optStep: this.opt.step };
    return { weights, moments: await this.opt.toHost(), state };
  }

  /** Saves to dir unless a weight or moment is non-finite (then Diverged, and dir keeps the last good one). */
  async save(dir: string): Promise<void> {
    const ck = await this.checkpoint();
    for (const [label, map] of [['weight', ck.weights], ['optimizer moment', ck.moments ?? new Map()]] as const) {
      const bad = firstNonFinite(map);
      if (bad) {
        throw new Diverged(`step ${this.step}: ${label} '${bad.name}' holds ${bad.value} at index ${bad.index} `
          + `(diverged; try a lower --lr); not saved, ${this.lastSaveNote()}`);
      }
    }
    saveCheckpoint(dir, ck, configToYaml(this.config));
    this.lastSave = { dir, step: this.step };
  }

  /**
   * Swaps in a grown model (host weights for `config`, e.g. from src/grow.ts). Adam moments
   * of the old parameters carry over as the prefix, new entries start at zero.
   */
  async grow(config: ModelConfig, weights: Map<string, Float32Array>): Promise<void> {
    const model = TokenFormer.fromHost(this.backend, config, weights);
    await this.opt.grow(paramSpecs(config));
    this.model.dispose();
    this.model = model;
    this.state.config = config;
  }

  /**
   * A new stage on this model and optimizer (e.g. after grow): a fresh schedule from `args`
   * starting at step 0, the data stream continuing where this one stopped, and tokens/FLOPs
   * counted on from this run's totals. This trainer must not be used afterwards.
   */
  continueWith(args: TrainArgs): Trainer<T> {
    const state = newState(this.config, { ...args }, this.dataRng.getState());
    const t = this.totals();
    state.offsetTokens = t.tokens;
    state.offsetFlops = t.flops;
    return new Trainer(this.backend, this.model, this.opt, this.corpus, args, Rng.fromState(this.dataRng.getState()), state);
  }

  dispose(): void {
    this.model.dispose();
    this.opt.dispose();
  }
}
