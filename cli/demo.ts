// `tokenformer demo`: the paper's incremental-scaling experiment in miniature (cli/demo/),
// writing curves (SVG, PNG) and report.md/report.json to --out. Every option, both model
// configs, the memory estimate and --out are checked before anything trains.
// Omits: resuming a demo.

import type { Command } from 'commander';
import { loadBackend } from '../backends/index.ts';
import { VARIANTS } from '../src/backend.ts';
import { memoryBudget } from '../src/limits.ts';
import { loadCorpus } from '../src/train/data.ts';
import { DEFAULT_DEMO, checkDemoOptions, checkDemoResources, runDemo, type DemoHooks, type DemoOptions } from './demo/experiment.ts';
import { checkDemoOut, writeReport } from './demo/report.ts';
import { makeReporter } from './progress.ts';
import { numberFlag } from './train.ts';

const HELP: Record<keyof DemoOptions, string> = {
  layers: 'num_layers', hidden: 'hidden_size', heads: 'num_attention_heads',
  qkvSlots: 'small model qkv_slot_num', projSlots: 'small model proj_slot_num', ffnSlots: 'small model ffn_slot_num',
  growFactor: 'token multiplier of every Pattention layer at growth',
  growInit: 'zero (function-preserving) or random (the official recipe)', variant: `norm_activation_type (${VARIANTS.join(', ')})`,
  batch: 'sequences per update', seq: 'bytes per sequence', lr: 'peak learning rate', minLr: 'final learning rate',
  warmup: 'warmup fraction of each schedule',
  schedule: 'continue: one schedule over small + grown updates, growing mid-run; restart: a fresh schedule after growth',
  stepsSmall: 'updates of the small model',
  stepsGrown: 'updates after growth', stepsScratch: 'updates of the from-scratch model',
  evalEvery: 'validation every K updates', evalBatches: 'validation batches', seed: 'seed (init and data order)',
};

/** Options that take any finite number; every other numeric option is an integer. */
const REAL: ReadonlySet<keyof DemoOptions> = new Set(['lr', 'minLr', 'warmup']);

function kebab(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

function stageHooks(): DemoHooks {
  return {
    stage(label, startStep, steps, startTokens) {
      const rep = makeReporter(label.padEnd(7), { step: startStep, tokens: startTokens }, steps);
      return { step: (p) => rep.update(p), done: () => rep.stop() };
    },
    log: (msg) => process.stdout.write(`${msg}\n`),
  };
}

async function demoCmd(o: Record<string, unknown>): Promise<void> {
  const opts = { ...DEFAULT_DEMO };
  for (const key of Object.keys(DEFAULT_DEMO) as (keyof DemoOptions)[]) {
    if (o[key] !== undefined) (opts as Record<string, unknown>)[key] = o[key];
  }
  const maxMemory = o.maxMemory as string | undefined;
  memoryBudget(maxMemory);
  checkDemoOptions(opts);
  checkDemoResources(opts, maxMemory);
  const out = String(o.out);
  checkDemoOut(out);
  const t0 = performance.now();
  const corpus = loadCorpus();
  const be = await loadBackend(String(o.backend));
  try {
    process.stdout.write(`tokenformer demo on ${be.name}: small → grow ×${opts.growFactor} → train, vs. the grown size from scratch; writing ${out}\n`);
    const run = await runDemo(be, corpus, opts, stageHooks());
    const s = await writeReport(out, run, opts, (performance.now() - t0) / 1000);
    const r = s.ratio;
    process.stdout.write(`target (from-scratch final val loss) ${s.target.valLoss.toFixed(4)}; FLOPs ratio after growth only `
      + `${r.postGrowthOnly?.toFixed(3) ?? 'n/a'}, counting the small model ${r.includingSmall?.toFixed(3) ?? 'n/a'} `
      + `(goal ≤ ${r.goalIncludingSmall}); outputs unchanged at growth: ${s.growthCheck.outputsUnchanged ? 'yes' : 'NO'}\n`
      + `wrote ${out}/report.md, report.json, curves.svg, curves.png in ${s.wallSeconds} s\n`);
  } finally {
    await be.destroy();
  }
}

export function registerDemo(program: Command): void {
  const cmd = program.command('demo')
    .description('train small → grow → keep training, vs. the grown size from scratch; plots and report in --out')
    .option('--out <dir>', 'output folder: new, empty or an earlier demo\'s', 'out/demo')
    .option('--max-memory <size>', 'refuse runs estimated above this (e.g. 8G; default TOKENFORMER_MAX_MEMORY or 75% of RAM)')
    .option('--backend <name>', 'cpu | webgpu | gpujs | gpujs-<mode> | auto', 'auto');
  for (const key of Object.keys(DEFAULT_DEMO) as (keyof DemoOptions)[]) {
    const flag = kebab(key);
    const d = DEFAULT_DEMO[key];
    const parse: (v: string) => number | string = typeof d === 'number' ? numberFlag(flag, !REAL.has(key)) : (v: string) => v;
    cmd.option(`--${flag} <x>`, `${HELP[key]} (default ${d})`, parse);
  }
  cmd.action(demoCmd);
}
