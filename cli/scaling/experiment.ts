// The incremental-scaling experiment (paper Fig. 3 / §4.1) in miniature: a series of sizes
// grown by appending key/value tokens at a fixed hidden size; the first size trained on the
// full budget and each later stage on a fraction of it, once per growth variant; and every
// size trained from scratch on the full budget. Accounting and report: accounting.ts, report.ts.
// Omits: running seeds or sizes in parallel (one backend, one run at a time).

import type { Backend, Handle } from '../../src/backend.ts';
import type { ModelConfig } from '../../src/config.ts';
import { growModel } from '../../src/grow.ts';
import { initParams, paramSpecs } from '../../src/params.ts';
import { Rng } from '../../src/rng.ts';
import { paramCount, trainFlopsPerToken } from '../../src/train/flops.ts';
import { AdamW, OFFICIAL_ADAMW } from '../../src/train/optimizer.ts';
import { dataSeed } from '../../src/train/trainer.ts';
import { RowFreeze } from './freeze.ts';
import { StageRunner, type StagePoint, type StageSchedule } from './loop.ts';
import { type GrowthVariant, type ScalingOptions, sizeConfig, stageSteps } from './options.ts';
import { type TokenCorpus, checkTokens, validationWindows } from './tokens.ts';

/** One stage of one path: a size trained for some updates. */
export interface StageRecord {
  size: number; // index into options.sizes
  params: number;
  flopsPerToken: number;
  steps: number;
  /** Validation loss at the stage's start (right after growth) and end. */
  valStart: number;
  valEnd: number;
  /** Validation loss of the previous stage's model just before growth (grown stages). */
  valBeforeGrowth?: number;
  /** Cumulative training FLOPs of the path at the stage's end. */
  flopsEnd: number;
  tokensEnd: number;
  points: StagePoint[];
  seconds: number;
}

export interface SeedRun {
  seed: number;
  /** Size i trained from scratch on the full budget; scratch[0] is also every path's first stage. */
  scratch: StageRecord[];
  /** Per variant, the grown stages (sizes 1 … k−1); stage 0 is scratch[0]. */
  paths: Partial<Record<GrowthVariant, StageRecord[]>>;
}

export interface ScalingRun {
  backend: string;
  corpus: string;
  tokenizer: string;
  vocabSize: number;
  valTokens: number;
  trainTokens: number;
  seeds: SeedRun[];
}

export interface PlannedStage {
  seed: number;
  label: string;
  size: number;
  steps: number;
}

export interface ScalingHooks {
  stage(p: PlannedStage): { step(pt: StagePoint): void; done(): void };
  log(msg: string): void;
}

/** Every stage the run will train, in order (the CLI's whole-run ETA is built on it). */
export function planStages(o: ScalingOptions): PlannedStage[] {
  const out: PlannedStage[] = [];
  for (let k = 0; k < o.seeds; k++) {
    const seed = o.seed + k;
    o.sizes.forEach((_, i) => out.push({ seed, label: `scratch size ${i + 1}`, size: i, steps: o.steps }));
    for (const v of o.variants) {
      for (let i = 1; i < o.sizes.length; i++) out.push({ seed, label: `${v} → size ${i + 1}`, size: i, steps: stageSteps(o) });
    }
  }
  return out;
}

function record<T extends Handle>(r: StageRunner<T>, size: number, points: StagePoint[], seconds: number, valBeforeGrowth?: number): StageRecord {
  const last = points[points.length - 1];
  return {
    size, params: paramCount(r.config), flopsPerToken: trainFlopsPerToken(r.config, r.seq), steps: last.step,
    valStart: points[0].valLoss!, valEnd: last.valLoss!, valBeforeGrowth, flopsEnd: last.flops, tokensEnd: last.tokens,
    points, seconds,
  };
}

export interface Ctx<T extends Handle> {
  be: Backend<T>;
  o: ScalingOptions;
  corpus: TokenCorpus;
  val: ReturnType<typeof validationWindows>;
  hooks: ScalingHooks;
}

async function trainRecorded<T extends Handle>(
  c: Ctx<T>, r: StageRunner<T>, plan: PlannedStage, sched: StageSchedule, valBeforeGrowth?: number,
): Promise<StageRecord> {
  const t0 = performance.now();
  const h = c.hooks.stage(plan);
  try {
    const pts = await r.runStage(sched, plan.label, { onStep: (p) => h.step(p) });
    return record(r, plan.size, pts, (performance.now() - t0) / 1000, valBeforeGrowth);
  } finally {
    h.done();
  }
}

function fullSchedule(o: ScalingOptions): StageSchedule {
  return { steps: o.steps, lr: o.lr, minLr: o.minLr, warmup: o.warmup, evalEvery: o.evalEvery };
}

function grownSchedule(o: ScalingOptions): StageSchedule {
  return { steps: stageSteps(o), lr: o.stageLr, minLr: (o.minLr * o.stageLr) / o.lr, warmup: o.warmup, evalEvery: o.evalEvery };
}

/** What the base model leaves for the incremental paths. */
export interface Base {
  config: ModelConfig;
  weights: Map<string, Float32Array>;
  moments: Map<string, { shape: number[]; data: Float32Array }>;
  optStep: number;
  dataState: number[];
  totals: { tokens: number; flops: number };
  valEnd: number;
}

export async function runScratch<T extends Handle>(c: Ctx<T>, seed: number): Promise<{ records: StageRecord[]; base: Base }> {
  const { be, o, corpus } = c;
  const records: StageRecord[] = [];
  let base: Base | null = null;
  for (let i = 0; i < o.sizes.length; i++) {
    const cfg = sizeConfig(o, i, corpus.vocabSize);
    const r = StageRunner.create(be, cfg, initParams(cfg, new Rng(seed)), corpus.train, c.val, o.batch, o.seq, new Rng(dataSeed(seed)));
    try {
      records.push(await trainRecorded(c, r, { seed, label: `scratch size ${i + 1}`, size: i, steps: o.steps }, fullSchedule(o)));
      if (i === 0) {
        base = {
          config: cfg, weights: await r.model.toHost(), moments: await r.opt.toHost(), optStep: r.opt.step,
          dataState: r.dataRng.getState(), totals: { ...r.totals }, valEnd: records[0].valEnd,
        };
      }
    } finally {
      r.dispose();
    }
  }
  return { records, base: base! };
}

/** Names and old row counts of the parameters that grew from `c0` to `c1`. */
function grownRows(c0: ModelConfig, c1: ModelConfig): Map<string, number> {
  const before = new Map(paramSpecs(c0).map((s) => [s.name, s.shape[0]]));
  const out = new Map<string, number>();
  for (const s of paramSpecs(c1)) {
    const n0 = before.get(s.name);
    if (n0 !== undefined && n0 < s.shape[0]) out.set(s.name, n0);
  }
  return out;
}

/** The runner of a grown stage: fresh or carried AdamW, or only the new rows trainable. */
async function grownRunner<T extends Handle>(
  c: Ctx<T>, v: GrowthVariant, c0: ModelConfig, g: { config: ModelConfig; weights: Map<string, Float32Array> },
  prev: { moments: Base['moments']; optStep: number } | null, rng: Rng,
): Promise<StageRunner<T>> {
  const { be, o } = c;
  if (v === 'frozen') {
    const rows = grownRows(c0, g.config);
    const r = StageRunner.create(be, g.config, g.weights, c.corpus.train, c.val, o.batch, o.seq, rng, new Set(rows.keys()));
    const shapes = new Map(paramSpecs(g.config).map((s) => [s.name, s.shape]));
    r.freeze = RowFreeze.create(be, g.weights, shapes, rows);
    return r;
  }
  const r = StageRunner.create(be, g.config, g.weights, c.corpus.train, c.val, o.batch, o.seq, rng);
  if (o.moments === 'carry' && prev) {
    r.opt.dispose();
    const opt = new AdamW(be, paramSpecs(c0), OFFICIAL_ADAMW);
    opt.loadHost(prev.moments, prev.optStep, 'carried moments');
    await opt.grow(paramSpecs(g.config));
    r.opt = opt;
  }
  return r;
}

/** One incremental path: the base, grown stage after stage with `v`. */
export async function runPath<T extends Handle>(c: Ctx<T>, seed: number, v: GrowthVariant, base: Base): Promise<StageRecord[]> {
  const { o } = c;
  const out: StageRecord[] = [];
  let config = base.config;
  let weights = base.weights;
  let prev: { moments: Base['moments']; optStep: number } | null = { moments: base.moments, optStep: base.optStep };
  const rng = Rng.fromState(base.dataState);
  let totals = { ...base.totals };
  for (let i = 1; i < o.sizes.length; i++) {
    const s = o.sizes[i];
    const g = growModel(config, weights, { qkv: s.qkv, proj: s.proj, ffn: s.ffn }, v === 'random' ? 'random' : 'zero', new Rng(seed * 7919 + i));
    if (v === 'renorm') g.config = { ...g.config, normSlots: {} }; // √n from the new counts
    const r: StageRunner<T> = await grownRunner(c, v, config, g, prev, rng);
    r.totals = totals;
    try {
      const valBefore = i === 1 ? base.valEnd : out[out.length - 1].valEnd;
      out.push(await trainRecorded(c, r, { seed, label: `${v} → size ${i + 1}`, size: i, steps: stageSteps(o) }, grownSchedule(o), valBefore));
      config = g.config;
      weights = await r.model.toHost();
      prev = v === 'frozen' ? null : { moments: await r.opt.toHost(), optStep: r.opt.step };
      totals = { ...r.totals };
    } finally {
      r.dispose();
    }
  }
  return out;
}

/**
 * Rows per validation forward: at least 64, so a large validation set costs few dispatches
 * (on lavapipe a forward of 8 rows costs nearly as much as one of 64).
 */
export function evalRows(o: ScalingOptions): number {
  return Math.max(o.batch, 64);
}

export function makeContext<T extends Handle>(be: Backend<T>, corpus: TokenCorpus, o: ScalingOptions, hooks: ScalingHooks): Ctx<T> {
  checkTokens(corpus.train, o.seq, 'train');
  return { be, o, corpus, val: validationWindows(corpus.val, evalRows(o), o.seq, o.evalWindows), hooks };
}

/** Runs every seed: the from-scratch series, then one incremental path per variant. */
export async function runScaling<T extends Handle>(be: Backend<T>, corpus: TokenCorpus, o: ScalingOptions, hooks: ScalingHooks): Promise<ScalingRun> {
  const c = makeContext(be, corpus, o, hooks);
  const seeds: SeedRun[] = [];
  for (let k = 0; k < o.seeds; k++) {
    const seed = o.seed + k;
    const { records, base } = await runScratch(c, seed);
    const paths: SeedRun['paths'] = {};
    for (const v of o.variants) paths[v] = await runPath(c, seed, v, base);
    seeds.push({ seed, scratch: records, paths });
  }
  return {
    backend: be.name, corpus: corpus.source, tokenizer: corpus.tokenizer, vocabSize: corpus.vocabSize,
    valTokens: o.evalWindows * o.seq, trainTokens: corpus.train.length, seeds,
  };
}
