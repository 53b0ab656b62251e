// The two cost accountings of the scaling experiment and the statistics over seeds.
// Paper (cumulative series, Fig. 3): the incremental path pays for every stage it trained
// (the first size on the full budget, each grown stage on its fraction); the from-scratch side
// pays for training every size independently on the full budget. Current (the demo's): the
// path's FLOPs against the largest from-scratch model alone, in total and up to the point where
// the path first reaches that model's final validation loss. Omits: wall-clock costs.

import { flopsToReach } from '../demo/report.ts';
import type { SeedRun, StageRecord } from './experiment.ts';
import type { GrowthVariant } from './options.ts';

/** Goals of the task: at the largest size, loss within 1% at ≤ half the series' cost. */
export const LOSS_GOAL = 1.01;
export const COST_GOAL = 0.5;

export interface SizeRow {
  size: number;
  params: number;
  scratchVal: number;
  grownVal: number;
  /** grownVal / scratchVal (the loss ratio; 1.01 = 1% worse). */
  lossRatio: number;
  /** exp(grownVal − scratchVal): the perplexity ratio (the paper's 11.77/11.63 = 1.012). */
  pplRatio: number;
  /** Cumulative FLOPs up to this size: the path, and the from-scratch series. */
  pathFlops: number;
  scratchSeriesFlops: number;
  seriesRatio: number;
  /** Validation loss right after growing into this size, and just before. */
  valAfterGrowth: number;
  valBeforeGrowth: number;
}

export interface PathAccounting {
  variant: GrowthVariant;
  sizes: SizeRow[];
  /** The largest size. */
  final: {
    lossRatio: number;
    pplRatio: number;
    /** Paper: path total / Σ from-scratch (every size, full budget). */
    seriesRatio: number;
    /** Current: path total / the largest from-scratch run's FLOPs. */
    vsLargestRatio: number;
    /** Current: FLOPs for the path to reach the largest from-scratch final loss / its FLOPs (null: not reached). */
    reachRatio: number | null;
    goalMet: boolean;
  };
}

function valPoints(recs: readonly StageRecord[]): { flops: number; loss: number }[] {
  const out: { flops: number; loss: number }[] = [];
  for (const r of recs) for (const p of r.points) if (p.valLoss !== undefined) out.push({ flops: p.flops, loss: p.valLoss });
  return out;
}

/** The accounting of one variant's path in one seed. */
export function accountPath(run: SeedRun, variant: GrowthVariant): PathAccounting {
  const grown = run.paths[variant];
  if (!grown) throw new Error(`internal: no path for ${variant}`);
  const scratch = run.scratch;
  const path = [scratch[0], ...grown]; // stage i of the path trains size i
  let series = 0;
  const sizes: SizeRow[] = path.map((st, i) => {
    series += scratch[i].flopsEnd;
    return {
      size: i, params: st.params, scratchVal: scratch[i].valEnd, grownVal: st.valEnd,
      lossRatio: st.valEnd / scratch[i].valEnd, pplRatio: Math.exp(st.valEnd - scratch[i].valEnd),
      pathFlops: st.flopsEnd, scratchSeriesFlops: series, seriesRatio: st.flopsEnd / series,
      valAfterGrowth: st.valStart, valBeforeGrowth: st.valBeforeGrowth ?? st.valStart,
    };
  });
  const last = sizes[sizes.length - 1];
  const largest = scratch[scratch.length - 1];
  const reach = flopsToReach(valPoints(path), largest.valEnd);
  return {
    variant, sizes,
    final: {
      lossRatio: last.lossRatio, pplRatio: last.pplRatio, seriesRatio: last.seriesRatio,
      vsLargestRatio: last.pathFlops / largest.flopsEnd,
      reachRatio: reach === null ? null : reach / largest.flopsEnd,
      goalMet: last.lossRatio <= LOSS_GOAL && last.seriesRatio <= COST_GOAL,
    },
  };
}

export interface Spread {
  n: number;
  mean: number;
  min: number;
  max: number;
  /** max − min: the run-to-run spread. */
  range: number;
  /** Sample standard deviation (0 for one seed). */
  std: number;
}

/** Mean and spread of the finite values (null: none). */
export function spread(xs: readonly (number | null)[]): Spread | null {
  const v = xs.filter((x): x is number => x !== null && Number.isFinite(x));
  if (v.length === 0) return null;
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const varS = v.length > 1 ? v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1) : 0;
  return { n: v.length, mean, min: Math.min(...v), max: Math.max(...v), range: Math.max(...v) - Math.min(...v), std: Math.sqrt(varS) };
}

export interface VariantStats {
  variant: GrowthVariant;
  lossRatio: Spread;
  pplRatio: Spread;
  seriesRatio: Spread;
  vsLargestRatio: Spread;
  /** Over the seeds that reached the target; reachedIn counts them. */
  reachRatio: Spread | null;
  reachedIn: number;
  /** Per size: validation loss right after growth and at the stage's end (means over seeds). */
  stages: { size: number; valBeforeGrowth: number; valAfterGrowth: number; valEnd: number; scratchVal: number }[];
}

export function variantStats(runs: readonly SeedRun[], variant: GrowthVariant): VariantStats {
  const acc = runs.map((r) => accountPath(r, variant));
  const f = (k: keyof PathAccounting['final']) => spread(acc.map((a) => a.final[k] as number | null));
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return {
    variant, lossRatio: f('lossRatio')!, pplRatio: f('pplRatio')!, seriesRatio: f('seriesRatio')!,
    vsLargestRatio: f('vsLargestRatio')!, reachRatio: f('reachRatio'),
    reachedIn: acc.filter((a) => a.final.reachRatio !== null).length,
    stages: acc[0].sizes.map((_, i) => ({
      size: i,
      valBeforeGrowth: mean(acc.map((a) => a.sizes[i].valBeforeGrowth)),
      valAfterGrowth: mean(acc.map((a) => a.sizes[i].valAfterGrowth)),
      valEnd: mean(acc.map((a) => a.sizes[i].grownVal)),
      scratchVal: mean(acc.map((a) => a.sizes[i].scratchVal)),
    })),
  };
}
