// The demo's measurements and write-up: FLOPs to reach the from-scratch model's final
// validation loss along each path, the two cost ratios, report.json, report.md and the plots.
// --out must be new, empty or an earlier demo's folder (checkDemoOut, before training); each
// file is written atomically, and a failed write removes the files this call created.
// Omits: confidence intervals (one seed; the report says so).

import { lstatSync, mkdirSync, readdirSync, rmdirSync, statSync, unlinkSync, type Stats } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { writeFileAtomic } from '../../src/atomic.ts';
import { UserError } from '../../src/errors.ts';
import { quote, readInputText } from '../../src/fsguard.ts';
import type { HistoryPoint } from '../../src/train/checkpoint.ts';
import type { DemoOptions, DemoRun, StageResult } from './experiment.ts';
import { renderCurves, type CurvePoint } from './plot.ts';

export const RATIO_GOAL = 0.5;

/** Validation points of a path, in order. */
function valPoints(h: HistoryPoint[]): { flops: number; loss: number }[] {
  return h.filter((p) => p.valLoss !== undefined).map((p) => ({ flops: p.flops, loss: p.valLoss! }));
}

/**
 * The training FLOPs at which a validation curve first reaches `target` (≤), linearly
 * interpolated between the two evaluations around the crossing; null if it never does.
 */
export function flopsToReach(points: { flops: number; loss: number }[], target: number): number | null {
  for (let i = 0; i < points.length; i++) {
    const p = points[i];
    if (p.loss > target) continue;
    if (i === 0) return p.flops;
    const q = points[i - 1];
    return q.flops + ((q.loss - target) / (q.loss - p.loss)) * (p.flops - q.flops);
  }
  return null;
}

function last(h: HistoryPoint[]): HistoryPoint {
  return h[h.length - 1];
}

function finalVal(s: StageResult): number {
  return [...s.history].reverse().find((p) => p.valLoss !== undefined)!.valLoss!;
}

function stageSummary(s: StageResult) {
  const end = last(s.history);
  return {
    params: s.params, trainFlopsPerToken: s.flopsPerToken, steps: end.step, tokensAtEnd: end.tokens,
    flopsAtEnd: end.flops, finalValLoss: finalVal(s), finalTrainLoss: end.loss ?? null, seconds: round(s.seconds, 1),
  };
}

function round(x: number, d: number): number {
  const f = 10 ** d;
  return Math.round(x * f) / f;
}

export function summarize(run: DemoRun, o: DemoOptions, wallSeconds: number) {
  const target = finalVal(run.scratch);
  const pathPoints = [...valPoints(run.small.history), ...valPoints(run.grown.history)];
  const reachGrown = flopsToReach(pathPoints, target);
  const scratchFlops = last(run.scratch.history).flops;
  const reachScratch = flopsToReach(valPoints(run.scratch.history), target);
  const smallFlops = last(run.small.history).flops;
  const ratioAll = reachGrown === null ? null : reachGrown / scratchFlops;
  const ratioPost = reachGrown === null ? null : Math.max(0, reachGrown - smallFlops) / scratchFlops;
  return {
    backend: run.backend,
    corpus: run.corpus,
    wallSeconds: round(wallSeconds, 1),
    options: o,
    flopsDefinition: 'training FLOPs = 3 × forward FLOPs per token × tokens; forward per token = Σ over Pattention layers 2·n·(d_in + d_out) + layers·4·T·C (attention, full T×T) + 2·C·V (head); see spec/growth.md',
    stages: { small: stageSummary(run.small), grown: stageSummary(run.grown), scratch: stageSummary(run.scratch) },
    target: { what: 'final validation loss of the grown size trained from scratch', valLoss: target },
    flopsToReachTarget: { grownPath: reachGrown, scratch: reachScratch, scratchTotal: scratchFlops, smallTotal: smallFlops },
    ratio: {
      postGrowthOnly: ratioPost,
      includingSmall: ratioAll,
      goalIncludingSmall: RATIO_GOAL,
      goalMet: ratioAll !== null && ratioAll <= RATIO_GOAL,
      note: reachGrown === null ? `the grown model did not reach ${target.toFixed(4)} (final ${finalVal(run.grown).toFixed(4)})` : undefined,
    },
    growthCheck: {
      valLossBefore: run.growth.valBefore, valLossAfter: run.growth.valAfter,
      init: run.growth.init,
      outputsUnchanged: run.growth.init === 'zero'
        && run.growth.zero.maxAbsLogitDiff <= 1e-6 * Math.max(1, run.growth.zero.maxAbsLogit)
        && Math.abs(run.growth.valAfter - run.growth.valBefore) <= 1e-6 * run.growth.valBefore,
      zeroInit: run.growth.zero, officialRandomInit: run.growth.random,
    },
  };
}

export type DemoSummary = ReturnType<typeof summarize>;

function fmtF(x: number | null): string {
  return x === null ? 'not reached' : x.toExponential(3);
}

function fmtR(x: number | null): string {
  return x === null ? 'n/a (not reached)' : x.toFixed(3);
}

export function reportMarkdown(s: DemoSummary): string {
  const st = s.stages;
  const row = (name: string, x: ReturnType<typeof stageSummary>) =>
    `| ${name} | ${x.params.toLocaleString('en-US')} | ${x.steps} | ${x.tokensAtEnd.toLocaleString('en-US')} | ${x.flopsAtEnd.toExponential(3)} | ${x.finalValLoss.toFixed(4)} | ${x.seconds} |`;
  const g = s.growthCheck;
  return [
    '# TokenFormer demo: grow a trained model vs. train the big one from scratch',
    '',
    `Backend \`${s.backend}\`, data: ${s.corpus}, byte-level (vocab 256). Wall time ${s.wallSeconds} s. One seed (${s.options.seed}).`,
    '',
    '![validation loss vs training FLOPs](curves.png)',
    '',
    '| run | parameters | updates | tokens (cumulative) | training FLOPs (cumulative) | final val loss | seconds |',
    '|---|---:|---:|---:|---:|---:|---:|',
    row('small', st.small),
    row(`small → grown ×${s.options.growFactor}`, st.grown),
    row('grown size from scratch', st.scratch),
    '',
    `**Target:** the from-scratch model's final validation loss, ${s.target.valLoss.toFixed(4)} nats/byte.`,
    '',
    `- FLOPs for the grown path to reach it (small model included): ${fmtF(s.flopsToReachTarget.grownPath)}`,
    `- FLOPs the from-scratch model spent: ${s.flopsToReachTarget.scratchTotal.toExponential(3)}`,
    `- **Ratio, counting only training after growth: ${fmtR(s.ratio.postGrowthOnly)}**`,
    `- **Ratio, counting the small model's training too: ${fmtR(s.ratio.includingSmall)}** (goal ≤ ${s.ratio.goalIncludingSmall}: ${s.ratio.goalMet ? 'met' : 'not met'})`,
    s.ratio.note ? `- ${s.ratio.note}` : '',
    '',
    `**Outputs unchanged by growth (${g.init} init):** `
      + `${g.outputsUnchanged ? 'yes' : 'NO'}: validation loss ${g.valLossBefore.toFixed(6)} → ${g.valLossAfter.toFixed(6)}, `
      + `max |Δlogit| ${g.zeroInit.maxAbsLogitDiff.toExponential(2)} with zero init on a fixed Brown sample. `
      + `The official random init would have moved them by max |Δlogit| ${g.officialRandomInit.maxAbsLogitDiff.toExponential(2)} `
      + `(max |logit| ${g.officialRandomInit.maxAbsLogit.toFixed(2)}; sample loss ${g.officialRandomInit.lossBefore.toFixed(4)} → ${g.officialRandomInit.lossAfter.toFixed(4)}).`,
    '',
    `Training FLOPs: ${s.flopsDefinition}.`,
    '',
  ].join('\n');
}

/** Training losses are drawn as the mean of the last SMOOTH updates (one batch is noisy). */
const SMOOTH = 10;

/** The curves of both paths as plot points (validation bold, training faint and smoothed). */
export function curvePoints(run: DemoRun, growLabel: string, scratchLabel: string): CurvePoint[] {
  const pts: CurvePoint[] = [];
  const add = (label: string, h: HistoryPoint[]) => {
    const recent: number[] = [];
    for (const p of h) {
      if (p.valLoss !== undefined) pts.push({ run: label, flops: p.flops, loss: p.valLoss, kind: 'validation' });
      if (p.loss === undefined) continue;
      recent.push(p.loss);
      if (recent.length > SMOOTH) recent.shift();
      pts.push({ run: label, flops: p.flops, loss: recent.reduce((a, b) => a + b, 0) / recent.length, kind: 'training' });
    }
  };
  add(growLabel, [...run.small.history, ...run.grown.history]);
  add(scratchLabel, run.scratch.history);
  return pts;
}

/** What a demo writes into --out, in writing order (report.json last: it marks the folder ours). */
export const DEMO_FILES = ['curves.svg', 'curves.png', 'report.md', 'report.json'] as const;
/** Temp files of an interrupted atomic write (src/atomic.ts tempPathFor) of one of DEMO_FILES. */
const DEMO_TEMP_RE = /^\.(curves\.svg|curves\.png|report\.md|report\.json)\.\d+\.[0-9a-f]{12}\.tmp$/;

function lstatOrNull(p: string): Stats | null {
  try {
    return lstatSync(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null; // absent (ENOTDIR: an ancestor is a file)
    throw new UserError(`cannot inspect ${quote(p)}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

function isOurReport(path: string): boolean {
  try {
    const j = JSON.parse(readInputText(path, 'report')) as Record<string, unknown>;
    return typeof j.flopsDefinition === 'string' && typeof j.stages === 'object' && j.stages !== null;
  } catch {
    return false;
  }
}

/**
 * Refuses a --out the demo must not write into: a link, a file, a device, or a folder holding
 * anything but an earlier demo's files (with its report.json). Returns 'absent', 'empty' or 'report'.
 */
export function checkDemoOut(dirIn: string): 'absent' | 'empty' | 'report' {
  const refuse = (why: string): never => {
    throw new UserError(`--out ${quote(dirIn)} ${why}; give a new or empty folder, or an earlier demo's output folder (nothing was changed)`);
  };
  if (dirIn.trim() === '') refuse('is empty');
  const st = lstatOrNull(resolve(dirIn));
  if (st === null) {
    let p = dirname(resolve(dirIn));
    while (lstatOrNull(p) === null && dirname(p) !== p) p = dirname(p);
    let isDir = false;
    try {
      isDir = statSync(p).isDirectory();
    } catch {
      // a dangling link
    }
    if (!isDir) refuse(`cannot be created: ${quote(p)} is not a folder`);
    return 'absent';
  }
  if (st.isSymbolicLink()) refuse('is a symbolic link (outputs never replace a link)');
  if (!st.isDirectory()) refuse(st.isFile() ? 'is a file, not a folder' : 'is not a folder');
  const names = readdirSync(dirIn);
  const foreign = names.filter((n) => (!(DEMO_FILES as readonly string[]).includes(n) || !lstatSync(join(dirIn, n)).isFile()) && !DEMO_TEMP_RE.test(n));
  if (foreign.length > 0) {
    refuse(`holds files that are not a demo's output (${foreign.slice(0, 3).map((n) => quote(n, 40)).join(', ')}${foreign.length > 3 ? `, … ${foreign.length} in all` : ''})`);
  }
  if (names.filter((n) => !DEMO_TEMP_RE.test(n)).length === 0) return 'empty';
  if (!names.includes('report.json') || !isOurReport(join(dirIn, 'report.json'))) {
    refuse('holds demo file names but no report.json of a tokenformer demo');
  }
  return 'report';
}

/** Writes the files in order, atomically each; on failure removes those this call created (and a folder it made). */
function writeAll(outDir: string, files: [string, Uint8Array | string][]): void {
  checkDemoOut(outDir);
  const madeDir = mkdirSync(outDir, { recursive: true }) ?? null;
  const created: string[] = [];
  try {
    for (const [name, data] of files) {
      const path = join(outDir, name);
      const existed = lstatOrNull(path) !== null;
      writeFileAtomic(path, data);
      if (!existed) created.push(path);
    }
  } catch (e) {
    for (const p of created) {
      try {
        unlinkSync(p);
      } catch {
        // already gone
      }
    }
    for (let d = resolve(outDir); madeDir !== null && d.startsWith(resolve(madeDir)); d = dirname(d)) {
      try {
        rmdirSync(d); // only empty folders we made
      } catch {
        break;
      }
    }
    throw new UserError(`${e instanceof Error ? e.message : String(e)}; the demo's files from this run were removed`);
  }
}

export async function writeReport(outDir: string, run: DemoRun, o: DemoOptions, wallSeconds: number): Promise<DemoSummary> {
  checkDemoOut(outDir); // before rendering; writeAll checks again just before writing
  const s = summarize(run, o, wallSeconds);
  const growLabel = `small (${run.small.params.toLocaleString('en-US')} params) → grown ×${o.growFactor}`;
  const scratchLabel = `grown size from scratch (${run.scratch.params.toLocaleString('en-US')} params)`;
  const ratio = s.ratio.includingSmall === null ? 'target not reached' : `FLOPs ratio ${s.ratio.includingSmall.toFixed(2)} (all) / ${s.ratio.postGrowthOnly!.toFixed(2)} (after growth)`;
  const { svg, png } = await renderCurves(curvePoints(run, growLabel, scratchLabel), {
    growthFlops: last(run.small.history).flops, targetLoss: s.target.valLoss,
    title: 'TokenFormer incremental scaling: validation loss vs training FLOPs',
    subtitle: [`Brown corpus bytes · ${run.backend} backend · ${ratio}`, 'dots: validation loss · faint: training loss (mean of 10 updates)'],
  });
  const json = `${JSON.stringify({ ...s, histories: { small: run.small.history, grown: run.grown.history, scratch: run.scratch.history } }, null, 1)}\n`;
  writeAll(outDir, [['curves.svg', svg], ['curves.png', png], ['report.md', reportMarkdown(s)], ['report.json', json]]);
  return s;
}
