// Options of the incremental-scaling experiment (`tokenformer scaling`, spec/growth.md
// "Incremental scaling"): the series of sizes (token counts only, hidden fixed), the
// from-scratch budget, the fraction each incremental stage gets, the growth variants compared,
// and the two presets (this 2-core machine; one data-centre GPU). Omits: growing layers,
// heads or width, and per-stage budgets other than one fraction for every grown stage.

import type { Variant } from '../../src/backend.ts';
import { VARIANTS } from '../../src/backend.ts';
import type { ModelConfig } from '../../src/config.ts';
import { UserError } from '../../src/errors.ts';

/** Token counts of one size in the series: qkv_slot_num / proj_slot_num / ffn_slot_num. */
export interface SizeSpec {
  qkv: number;
  proj: number;
  ffn: number;
}

/**
 * How a path grows from one size to the next:
 *  zero    new keys 0, √n pinned at the old count: the function is preserved (ours)
 *  random  the official recipe: new keys N(0, 0.02), √n recomputed from the new count
 *  frozen  zero, and every parameter that existed before the growth is held fixed: only the
 *          appended key/value rows train (their gradient is masked, their values restored)
 *  renorm  zero keys, but √n recomputed from the new count (a diagnostic: isolates the √n
 *          pin from the key init; scales every old score by √(n'/n), so the function moves)
 */
export type GrowthVariant = 'zero' | 'random' | 'frozen' | 'renorm';
export const GROWTH_VARIANTS: readonly GrowthVariant[] = ['zero', 'random', 'frozen', 'renorm'];

export type TokenizerName = 'bytes' | 'gpt-neox';
export type Preset = 'cpu' | 'gpu';

export interface ScalingOptions {
  preset: Preset;
  layers: number;
  hidden: number;
  heads: number;
  variant: Variant;
  /** The series, smallest first; each size's token counts ≥ the previous one's. */
  sizes: SizeSpec[];
  batch: number;
  seq: number;
  /** Peak and final learning rate of every schedule (warmup + cosine, restarted per stage). */
  lr: number;
  minLr: number;
  warmup: number;
  /** Peak learning rate of a grown stage (its min is minLr · stageLr / lr). */
  stageLr: number;
  /** Full budget: updates of every from-scratch run (the first size of the series is one). */
  steps: number;
  /** Each incremental stage trains round(fraction · steps) updates. */
  fraction: number;
  /** reset: a fresh AdamW at each stage (the official code); carry: moments carried as prefix. */
  moments: 'reset' | 'carry';
  /** Growth variants, one incremental path each; the first is the headline path. */
  variants: GrowthVariant[];
  /** Validation every K updates (and at the start and end of every stage). */
  evalEvery: number;
  /** Validation windows of seq tokens, evenly spaced over the held-out split. */
  evalWindows: number;
  seeds: number;
  seed: number;
  data: string | null;
  tokenizer: TokenizerName;
}

/**
 * Sized for about 7½ minutes on a quiet 2-core machine (WebGPU on lavapipe), to stay under 10
 * on a slower or busier one. Measured for one seed (spec/growth.md "Measured: the default
 * run"): 431 s wall, 656 s CPU (user + sys) at load average 1.7 → 3.2, nearly quiet (the run
 * itself keeps about 1.5 cores busy); 655 s wall, 684 s CPU at load 5.4 (other jobs). Updates
 * are ~90% of the time (74 / 82 / 146 / 230 ms each at the 4 sizes, quiet), validation ~10%,
 * growth and plots seconds. 4 sizes, ×2 tokens per stage (82k → 148k → 279k → 541k
 * parameters); a full budget of 300 updates of 8 × 64 bytes (500 took 16.8 min at load 2–6);
 * the official schedule (warmup + cosine restarted at the same peak at every stage, fresh
 * AdamW); fraction 0.4 (series cost 0.453; at 300 updates it meets the 1 % loss goal, 0.25 does
 * not); 256 held-out windows, evaluated every 100 updates (the headline loss ratio moved by
 * 0.002 between two seeds).
 */
export const CPU_PRESET: ScalingOptions = {
  preset: 'cpu', layers: 2, hidden: 64, heads: 4, variant: 'l2_norm_gelu',
  sizes: [{ qkv: 32, proj: 32, ffn: 128 }, { qkv: 64, proj: 64, ffn: 256 }, { qkv: 128, proj: 128, ffn: 512 }, { qkv: 256, proj: 256, ffn: 1024 }],
  batch: 8, seq: 64, lr: 3e-3, minLr: 3e-4, warmup: 0.02, stageLr: 3e-3, steps: 300, fraction: 0.4,
  moments: 'reset', variants: ['zero', 'renorm', 'random', 'frozen'], evalEvery: 100, evalWindows: 256,
  seeds: 1, seed: 1234, data: null, tokenizer: 'bytes',
};

/**
 * Sized by estimate for about 10 minutes on one data-centre GPU (WebGPU on Vulkan; not measured
 * yet: bench/gpu.sh records its wall time): the GPT-NeoX-20B tokenizer (vocab 50304) on the
 * Brown corpus (or --data), hidden 256, 4 layers, T 256, 8,192 tokens per update. The 12.9M
 * embedding does not grow, so the non-embedding parameters double per stage (2.1M → 16.8M) and
 * the totals go 15.0M → 17.1M → 21.3M → 29.7M; the output head dominates the FLOPs per token.
 * About 4.9e15 training FLOPs in all.
 */
export const GPU_PRESET: ScalingOptions = {
  ...CPU_PRESET, preset: 'gpu', layers: 4, hidden: 256, heads: 8,
  sizes: [{ qkv: 128, proj: 128, ffn: 512 }, { qkv: 256, proj: 256, ffn: 1024 }, { qkv: 512, proj: 512, ffn: 2048 }, { qkv: 1024, proj: 1024, ffn: 4096 }],
  batch: 32, seq: 256, lr: 1e-3, minLr: 1e-4, stageLr: 1e-3, steps: 500, evalEvery: 100, evalWindows: 512,
  tokenizer: 'gpt-neox',
};

export const PRESETS: Record<Preset, ScalingOptions> = { cpu: CPU_PRESET, gpu: GPU_PRESET };

/** "32/32/128,64/64/256" → sizes. */
export function parseSizes(s: string): SizeSpec[] {
  const sizes = s.split(',').map((part) => {
    const m = /^\s*(\d+)\/(\d+)\/(\d+)\s*$/.exec(part);
    if (!m) throw new UserError(`--sizes expects qkv/proj/ffn token counts separated by commas (e.g. 32/32/128,64/64/256), got '${part.slice(0, 40)}'`);
    return { qkv: Number(m[1]), proj: Number(m[2]), ffn: Number(m[3]) };
  });
  return sizes;
}

export function formatSize(s: SizeSpec): string {
  return `${s.qkv}/${s.proj}/${s.ffn}`;
}

/** "zero,random" → variants (no repeats). */
export function parseVariants(s: string): GrowthVariant[] {
  const vs = s.split(',').map((v) => v.trim());
  for (const v of vs) {
    if (!GROWTH_VARIANTS.includes(v as GrowthVariant)) throw new UserError(`--variants: '${v.slice(0, 20)}' is not one of ${GROWTH_VARIANTS.join(', ')}`);
  }
  if (new Set(vs).size !== vs.length) throw new UserError('--variants lists a variant twice');
  return vs as GrowthVariant[];
}

function positiveInt(name: string, x: number): void {
  if (!Number.isInteger(x) || x < 1) throw new UserError(`--${name} must be a positive integer, got ${x}`);
}

/** Updates of an incremental stage. */
export function stageSteps(o: ScalingOptions): number {
  return Math.max(1, Math.round(o.fraction * o.steps));
}

/** Throws a one-line UserError for any option that cannot run. */
export function checkOptions(o: ScalingOptions): void {
  for (const k of ['layers', 'hidden', 'heads', 'batch', 'seq', 'steps', 'evalWindows', 'seeds'] as const) {
    positiveInt(k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`), o[k]);
  }
  if (!Number.isInteger(o.evalEvery) || o.evalEvery < 0) throw new UserError(`--eval-every must be an integer ≥ 0, got ${o.evalEvery}`);
  if (!Number.isSafeInteger(o.seed)) throw new UserError(`--seed must be an integer, got ${o.seed}`);
  if (o.hidden % o.heads !== 0) throw new UserError(`--hidden ${o.hidden} must be a multiple of --heads ${o.heads}`);
  if (!VARIANTS.includes(o.variant)) throw new UserError(`--variant must be one of ${VARIANTS.join(', ')}`);
  if (o.sizes.length < 2) throw new UserError('--sizes needs at least two sizes (one growth)');
  o.sizes.forEach((s, i) => {
    for (const k of ['qkv', 'proj', 'ffn'] as const) {
      if (!Number.isInteger(s[k]) || s[k] < 1 || s[k] > 1 << 20) throw new UserError(`--sizes: size ${i + 1} has ${k} ${s[k]}, not in 1 … ${1 << 20}`);
      if (i > 0 && s[k] < o.sizes[i - 1][k]) throw new UserError(`--sizes: size ${i + 1} has fewer ${k} tokens than size ${i}`);
    }
    if (i > 0 && formatSize(s) === formatSize(o.sizes[i - 1])) throw new UserError(`--sizes: size ${i + 1} equals size ${i}`);
  });
  if (!(o.fraction > 0 && o.fraction <= 1)) throw new UserError(`--fraction must be in (0, 1], got ${o.fraction}`);
  if (!(o.lr > 0) || !(o.minLr >= 0) || o.minLr > o.lr) throw new UserError(`learning rates need 0 ≤ --min-lr ≤ --lr and --lr > 0, got ${o.lr}, ${o.minLr}`);
  if (!(o.stageLr > 0) || !Number.isFinite(o.stageLr)) throw new UserError(`--stage-lr must be a positive number, got ${o.stageLr}`);
  if (!(o.warmup >= 0 && o.warmup < 1)) throw new UserError(`--warmup is a fraction in [0, 1), got ${o.warmup}`);
  if (o.moments !== 'reset' && o.moments !== 'carry') throw new UserError(`--moments must be reset or carry, got '${String(o.moments).slice(0, 20)}'`);
  if (o.variants.length < 1) throw new UserError('--variants needs at least one growth variant');
  if (o.variant === 'softmax' && o.variants.some((v) => v !== 'random')) {
    throw new UserError('zero-init growth cannot preserve a softmax model (spec/growth.md); use --variants random');
  }
  if (o.tokenizer !== 'bytes' && o.tokenizer !== 'gpt-neox') throw new UserError(`--tokenizer must be bytes or gpt-neox, got '${String(o.tokenizer).slice(0, 20)}'`);
}

/** The model config of size i of the series (vocab from the tokenizer). */
export function sizeConfig(o: ScalingOptions, i: number, vocabSize: number): ModelConfig {
  const s = o.sizes[i];
  return {
    numLayers: o.layers, hiddenSize: o.hidden, numHeads: o.heads, qkvSlots: s.qkv, projSlots: s.proj, ffnSlots: s.ffn,
    maxPositions: o.seq, rotaryPct: 0.25, rotaryBase: 10000, variant: o.variant, tied: true, eps: 1e-5,
    vocabSize, normSlots: {},
  };
}
