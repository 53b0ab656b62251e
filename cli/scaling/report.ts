// The scaling experiment's write-up: report.json (every figure, every history), report.md
// (protocol, per-size losses, both accountings, the growth ablation, seeds and spread), and
// the figures, all staged and renamed together (src/atomic.ts). Omits: comparing runs.

import { cpus, loadavg } from 'node:os';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { commitStaged, stageFile, type StagedFile } from '../../src/atomic.ts';
import { paramCount, trainFlopsPerToken } from '../../src/train/flops.ts';
import { COST_GOAL, LOSS_GOAL, accountPath, variantStats, type Spread, type VariantStats } from './accounting.ts';
import type { ScalingRun, StageRecord } from './experiment.ts';
import { type ScalingOptions, formatSize, sizeConfig, stageSteps } from './options.ts';
import { curvesSpec, renderSpec, seriesSpec, type CurvePoint, type SeriesPoint } from './plot.ts';

export const FLOPS_DEFINITION = 'training FLOPs = 3 × forward FLOPs per token × tokens; forward per token = Σ over Pattention layers 2·n·(d_in + d_out) + layers·4·T·C (attention, full T×T) + 2·C·V (head); src/train/flops.ts, spec/growth.md';

function stageSummary(r: StageRecord) {
  return {
    size: r.size + 1, params: r.params, trainFlopsPerToken: r.flopsPerToken, steps: r.steps, tokensEnd: r.tokensEnd,
    flopsEnd: r.flopsEnd, valBeforeGrowth: r.valBeforeGrowth ?? null, valStart: r.valStart, valEnd: r.valEnd,
    seconds: Math.round(r.seconds * 10) / 10,
  };
}

/** How long the run took: wall seconds, CPU seconds of the process (user + sys, lavapipe's worker threads included), load at its start. */
export interface RunTiming {
  wallSeconds: number;
  cpuSeconds: number;
  loadAtStart: number[];
}

const r1 = (x: number) => Math.round(x * 10) / 10;

/** Seconds of the from-scratch runs and of each variant's path, summed over seeds. */
function stageSeconds(run: ScalingRun, o: ScalingOptions) {
  const sum = (recs: readonly StageRecord[]) => recs.reduce((a, r) => a + r.seconds, 0);
  return {
    scratch: r1(run.seeds.reduce((a, s) => a + sum(s.scratch), 0)),
    paths: Object.fromEntries(o.variants.map((v) => [v, r1(run.seeds.reduce((a, s) => a + sum(s.paths[v] ?? []), 0))])),
  };
}

export function summarize(run: ScalingRun, o: ScalingOptions, t: RunTiming) {
  const sizes = o.sizes.map((s, i) => {
    const c = sizeConfig(o, i, run.vocabSize);
    return { size: i + 1, slots: formatSize(s), params: paramCount(c), trainFlopsPerToken: trainFlopsPerToken(c, o.seq) };
  });
  const tokensPerUpdate = o.batch * o.seq;
  const variants = o.variants.map((v) => variantStats(run.seeds, v));
  const head = variants[0];
  const best = variants.reduce((a, b) => (b.lossRatio.mean < a.lossRatio.mean ? b : a));
  return {
    backend: run.backend, corpus: run.corpus, tokenizer: run.tokenizer, vocabSize: run.vocabSize,
    wallSeconds: r1(t.wallSeconds), cpuSeconds: r1(t.cpuSeconds), stageSeconds: stageSeconds(run, o),
    load: { atStart: t.loadAtStart, atEnd: loadavg(), cores: cpus().length, note: 'os.loadavg() (1, 5, 15 min) on a machine of `cores` cores' },
    options: o,
    protocol: {
      sizes, hidden: o.hidden, layers: o.layers,
      fullBudget: { updates: o.steps, tokens: o.steps * tokensPerUpdate },
      stageBudget: { fraction: o.fraction, updates: stageSteps(o), tokens: stageSteps(o) * tokensPerUpdate },
      schedule: `warmup ${o.warmup} + cosine restarted at every stage; peak ${o.lr} (from scratch and the first size), ${o.stageLr} (grown stages)`,
      moments: o.moments, validation: { windows: o.evalWindows, tokens: run.valTokens, split: 'held-out (src/train/data.ts: every 20th document)' },
      trainTokensAvailable: run.trainTokens,
    },
    flopsDefinition: FLOPS_DEFINITION,
    accounting: {
      paper: 'series ratio = FLOPs of the incremental path (first size on the full budget + every grown stage) / Σ over sizes of training each from scratch on the full budget',
      current: 'vs largest = path FLOPs / the largest from-scratch run; reach = path FLOPs until its validation loss first reaches the largest from-scratch final loss / that run (null: not reached)',
    },
    headline: {
      variant: head.variant, lossRatio: head.lossRatio, pplRatio: head.pplRatio, seriesRatio: head.seriesRatio,
      vsLargestRatio: head.vsLargestRatio, reachRatio: head.reachRatio, reachedIn: head.reachedIn, seeds: run.seeds.length,
      goal: { lossRatio: LOSS_GOAL, seriesRatio: COST_GOAL },
      goalMet: head.lossRatio.mean <= LOSS_GOAL && head.seriesRatio.mean <= COST_GOAL,
      best: { variant: best.variant, lossRatio: best.lossRatio.mean, seriesRatio: best.seriesRatio.mean, goalMet: best.lossRatio.mean <= LOSS_GOAL && best.seriesRatio.mean <= COST_GOAL },
    },
    variants,
    seeds: run.seeds.map((s) => ({
      seed: s.seed,
      scratch: s.scratch.map(stageSummary),
      paths: Object.fromEntries(Object.entries(s.paths).map(([v, recs]) => [v, recs!.map(stageSummary)])),
      accounting: Object.fromEntries(o.variants.map((v) => [v, accountPath(s, v)])),
    })),
  };
}

export type ScalingSummary = ReturnType<typeof summarize>;

const f4 = (x: number) => x.toFixed(4);
const e3 = (x: number) => x.toExponential(3);

function fmtSpread(s: Spread | null, d = 3): string {
  if (!s) return 'n/a';
  return s.n === 1 ? s.mean.toFixed(d) : `${s.mean.toFixed(d)} (${s.min.toFixed(d)}–${s.max.toFixed(d)}, n = ${s.n})`;
}

function sizeTable(s: ScalingSummary): string[] {
  const v = s.variants;
  const head = ['| size | tokens qkv/proj/ffn | parameters | from scratch | ' + v.map((x) => `${x.variant} path`).join(' | ') + ' | loss ratio (' + v[0].variant + ') |',
    '|---|---|---:|---:|' + v.map(() => '---:|').join('') + '---:|'];
  const rows = s.protocol.sizes.map((z, i) => `| ${z.size} | ${z.slots} | ${z.params.toLocaleString('en-US')} | ${f4(v[0].stages[i].scratchVal)} | `
    + v.map((x) => f4(x.stages[i].valEnd)).join(' | ') + ` | ${(v[0].stages[i].valEnd / v[0].stages[i].scratchVal).toFixed(4)} |`);
  return [...head, ...rows];
}

function ablationTable(s: ScalingSummary): string[] {
  const out = ['| variant | size | before growth | right after growth | end of stage | from scratch |', '|---|---:|---:|---:|---:|---:|'];
  for (const v of s.variants) {
    for (const st of v.stages.slice(1)) out.push(`| ${v.variant} | ${st.size + 1} | ${f4(st.valBeforeGrowth)} | ${f4(st.valAfterGrowth)} | ${f4(st.valEnd)} | ${f4(st.scratchVal)} |`);
  }
  return out;
}

function accountingTable(variants: VariantStats[]): string[] {
  return ['| variant | loss ratio (largest) | perplexity ratio | series cost ratio (paper) | path / largest from scratch | FLOPs to reach its loss / its FLOPs |',
    '|---|---:|---:|---:|---:|---:|',
    ...variants.map((v) => `| ${v.variant} | ${fmtSpread(v.lossRatio, 4)} | ${fmtSpread(v.pplRatio, 4)} | ${fmtSpread(v.seriesRatio)} | ${fmtSpread(v.vsLargestRatio)} | `
      + `${v.reachedIn === 0 ? 'not reached' : `${fmtSpread(v.reachRatio)}${v.reachedIn < v.lossRatio.n ? ` (reached in ${v.reachedIn} of ${v.lossRatio.n} seeds)` : ''}`} |`)];
}

export function reportMarkdown(s: ScalingSummary): string {
  const p = s.protocol;
  const h = s.headline;
  return [
    '# TokenFormer incremental scaling in miniature',
    '',
    `Backend \`${s.backend}\`; data: ${s.corpus}, ${s.tokenizer}; validation: ${p.validation.windows} windows (${p.validation.tokens.toLocaleString('en-US')} tokens) of the held-out split. `
      + `Wall time ${s.wallSeconds} s, CPU time ${s.cpuSeconds} s (user + sys); load average ${s.load.atStart.map((x) => x.toFixed(2)).join('/')} at the start, `
      + `${s.load.atEnd.map((x) => x.toFixed(2)).join('/')} at the end (${s.load.cores} cores). Stages: from scratch ${s.stageSeconds.scratch} s, `
      + `${Object.entries(s.stageSeconds.paths).map(([v, x]) => `${v} path ${x} s`).join(', ')}. Seeds: ${s.seeds.map((x) => x.seed).join(', ')}.`,
    '',
    `**Protocol.** Hidden ${p.hidden}, ${p.layers} layers; sizes grow by appending key/value tokens only. Every size from scratch: ${p.fullBudget.updates} updates `
      + `(${p.fullBudget.tokens.toLocaleString('en-US')} tokens). Incremental: size 1 is the from-scratch one, each later size grows from the previous with ${p.stageBudget.updates} updates `
      + `(fraction ${p.stageBudget.fraction}, ${p.stageBudget.tokens.toLocaleString('en-US')} tokens). Schedule: ${p.schedule}; AdamW moments at growth: ${p.moments}.`,
    '',
    '![final validation loss vs cumulative FLOPs](scaling.png)',
    '',
    ...sizeTable(s),
    '',
    `**Headline (${h.variant} path, largest size):** loss ratio ${fmtSpread(h.lossRatio, 4)} (goal ≤ ${h.goal.lossRatio}), `
      + `series cost ratio ${fmtSpread(h.seriesRatio)} (goal ≤ ${h.goal.seriesRatio}): ${h.goalMet ? 'met' : 'not met'}. `
      + `Lowest loss ratio: the ${h.best.variant} path, ${h.best.lossRatio.toFixed(4)} (goal ${h.best.goalMet ? 'met' : 'not met'}).`,
    '',
    ...accountingTable(s.variants),
    '',
    `- Paper accounting: ${s.accounting.paper}.`,
    `- Current accounting: ${s.accounting.current}.`,
    '',
    '**Growth ablation** (means over seeds): validation loss before growth, right after it, and at the end of the stage.',
    '',
    ...ablationTable(s),
    '',
    '![validation curves](curves.png)',
    '',
    `Training FLOPs: ${s.flopsDefinition}.`,
    '',
  ].join('\n');
}

function kilo(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : `${Math.round(n / 1e3)}k`;
}

/** Fig. 3 form for the first seed: scratch points at the cumulative series cost. */
export function seriesPoints(run: ScalingRun, o: ScalingOptions): SeriesPoint[] {
  const s = run.seeds[0];
  const pts: SeriesPoint[] = [];
  let series = 0;
  s.scratch.forEach((r) => {
    series += r.flopsEnd;
    pts.push({ path: 'from scratch, every size (full budget each)', flops: series, loss: r.valEnd, label: kilo(r.params) });
  });
  for (const v of o.variants) {
    [s.scratch[0], ...s.paths[v]!].forEach((r) => pts.push({ path: `incremental, ${v} growth`, flops: r.flopsEnd, loss: r.valEnd, label: kilo(r.params) }));
  }
  return pts;
}

export function curvePoints(run: ScalingRun, o: ScalingOptions): CurvePoint[] {
  const s = run.seeds[0];
  const pts: CurvePoint[] = [];
  const add = (name: string, recs: StageRecord[]) => {
    for (const r of recs) for (const p of r.points) if (p.valLoss !== undefined) pts.push({ run: name, flops: p.flops, loss: p.valLoss });
  };
  s.scratch.forEach((r, i) => add(`size ${i + 1} from scratch (${kilo(r.params)})`, [r]));
  for (const v of o.variants) add(`incremental, ${v}`, s.paths[v]!);
  return pts;
}

export async function writeReport(outDir: string, run: ScalingRun, o: ScalingOptions, t: RunTiming): Promise<ScalingSummary> {
  const s = summarize(run, o, t);
  const sub = `${run.backend} · ${run.tokenizer} · seed ${run.seeds[0].seed}`;
  const fig = await renderSpec(seriesSpec(seriesPoints(run, o), 'Incremental scaling vs training every size from scratch', [sub, 'x: cumulative cost of the whole series so far (paper Fig. 3 accounting)']));
  const cur = await renderSpec(curvesSpec(curvePoints(run, o), 'Validation loss during every run', [sub]));
  const histories = run.seeds.map((x) => ({
    seed: x.seed, scratch: x.scratch.map((r) => r.points),
    paths: Object.fromEntries(Object.entries(x.paths).map(([v, recs]) => [v, recs!.map((r) => r.points)])),
  }));
  mkdirSync(outDir, { recursive: true });
  const files: StagedFile[] = [];
  files.push(stageFile(join(outDir, 'scaling.svg'), fig.svg), stageFile(join(outDir, 'scaling.png'), fig.png));
  files.push(stageFile(join(outDir, 'curves.svg'), cur.svg), stageFile(join(outDir, 'curves.png'), cur.png));
  files.push(stageFile(join(outDir, 'report.md'), reportMarkdown(s)));
  files.push(stageFile(join(outDir, 'report.json'), `${JSON.stringify({ ...s, histories }, null, 1)}\n`));
  commitStaged(files);
  return s;
}
