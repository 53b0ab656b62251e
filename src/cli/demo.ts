// `tokenformer demo`: the paper's incremental-scaling experiment in miniature (src/demo/),
// writing curves (SVG, PNG) and report.md/report.json to --out. Omits: resuming a demo.

import type { Command } from 'commander';
import { loadBackend } from '../../backends/index.ts';
import { VARIANTS } from '../backend.ts';
import { UserError } from '../errors.ts';
import { loadCorpus } from '../train/data.ts';
import { DEFAULT_DEMO, runDemo, type DemoHooks, type DemoOptions } from '../demo/experiment.ts';
import { writeReport } from '../demo/report.ts';
import { makeReporter } from './progress.ts';

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
  if (!VARIANTS.includes(opts.variant)) throw new UserError(`--variant must be one of ${VARIANTS.join(', ')}`);
  if (opts.growInit !== 'zero' && opts.growInit !== 'random') throw new UserError('--grow-init must be zero or random');
  if (opts.variant === 'softmax' && opts.growInit === 'zero') throw new UserError('the demo grows with zero init, which cannot preserve a softmax model (see spec/growth.md)');
  if (opts.schedule !== 'continue' && opts.schedule !== 'restart') throw new UserError('--schedule must be continue or restart');
  if (!Number.isInteger(opts.growFactor) || opts.growFactor < 1) throw new UserError('--grow-factor must be an integer ≥ 1');
  const out = String(o.out);
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
    .option('--out <dir>', 'output folder', 'out/demo')
    .option('--backend <name>', 'cpu | webgpu | gpujs | gpujs-<mode> | auto', 'auto');
  for (const key of Object.keys(DEFAULT_DEMO) as (keyof DemoOptions)[]) {
    const flag = kebab(key);
    const d = DEFAULT_DEMO[key];
    const parse = (v: string): number | string => {
      if (typeof d !== 'number') return v;
      const x = Number(v);
      if (v.trim() === '' || !Number.isFinite(x)) throw new UserError(`--${flag} expects a number, got '${v}'`);
      return x;
    };
    cmd.option(`--${flag} <x>`, `${HELP[key]} (default ${d})`, parse);
  }
  cmd.action(demoCmd);
}
