// `tokenformer scaling`: the paper's incremental-scaling experiment in miniature (cli/scaling/),
// writing report.md, report.json, scaling.svg/png (Fig. 3 form) and curves.svg/png to --out.
// Omits: resuming a run, and running two presets in one call.

import { loadavg } from 'node:os';
import { mkdirSync } from 'node:fs';
import type { Command } from 'commander';
import { loadBackend } from '../backends/index.ts';
import { UserError } from '../src/errors.ts';
import { checkTrainArgs, DEFAULT_TRAIN_ARGS } from '../src/train/trainer.ts';
import { trainFlopsPerToken } from '../src/train/flops.ts';
import { checkMemory, trainBytes } from '../src/limits.ts';
import { planStages, runScaling } from './scaling/experiment.ts';
import {
  PRESETS, checkOptions, formatSize, parseSizes, parseVariants, sizeConfig, type Preset, type ScalingOptions,
} from './scaling/options.ts';
import { writeReport } from './scaling/report.ts';
import { loadTokens } from './scaling/tokens.ts';
import { scalingHooks } from './scaling-progress.ts';

const NUMERIC: Partial<Record<keyof ScalingOptions, string>> = {
  layers: 'num_layers', hidden: 'hidden_size', heads: 'num_attention_heads', batch: 'sequences per update',
  seq: 'tokens per sequence', lr: 'peak learning rate (from scratch, and the first size)', minLr: 'final learning rate',
  warmup: 'warmup fraction of every schedule', stageLr: 'peak learning rate of a grown stage',
  steps: 'updates of every from-scratch run (the full budget)', fraction: 'each grown stage trains fraction × steps updates',
  evalEvery: 'validation every K updates (and at each stage start and end)', evalWindows: 'validation windows (of seq tokens, held-out split)',
  seeds: 'repeats with seeds seed … seed+K−1', seed: 'first seed (init and data order)',
};

function kebab(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

function numberFlag(flag: string) {
  return (v: string): number => {
    const x = Number(v);
    if (v.trim() === '' || !Number.isFinite(x)) throw new UserError(`--${flag} expects a number, got '${v.slice(0, 40)}'`);
    return x;
  };
}

/** The preset's options with every flag given on the command line applied. */
export function scalingOptions(flags: Record<string, unknown>): ScalingOptions {
  const preset = String(flags.preset ?? 'cpu');
  if (preset !== 'cpu' && preset !== 'gpu') throw new UserError(`--preset must be cpu or gpu, got '${preset.slice(0, 20)}'`);
  const o: ScalingOptions = { ...PRESETS[preset as Preset], sizes: [...PRESETS[preset as Preset].sizes] };
  for (const k of Object.keys(NUMERIC) as (keyof ScalingOptions)[]) {
    if (flags[k] !== undefined) (o as unknown as Record<string, unknown>)[k] = flags[k];
  }
  if (flags.sizes !== undefined) o.sizes = parseSizes(String(flags.sizes));
  if (flags.variants !== undefined) o.variants = parseVariants(String(flags.variants));
  for (const k of ['variant', 'moments', 'tokenizer'] as const) if (flags[k] !== undefined) (o as unknown as Record<string, unknown>)[k] = String(flags[k]);
  if (flags.data !== undefined) o.data = String(flags.data);
  checkOptions(o);
  return o;
}

/** The same limits as `tokenformer train` for every size, before anything is trained. */
function checkSizes(o: ScalingOptions, vocabSize: number): void {
  for (let i = 0; i < o.sizes.length; i++) {
    const c = sizeConfig(o, i, vocabSize);
    checkTrainArgs({ ...DEFAULT_TRAIN_ARGS, steps: o.steps, batch: o.batch, seq: o.seq, lr: o.lr, minLr: o.minLr, warmup: o.warmup, evalBatches: 1 }, { ...c, vocabSize: Math.max(256, vocabSize) });
    checkMemory(trainBytes(c, o.batch, o.seq), `size ${i + 1} (${formatSize(o.sizes[i])})`);
  }
}

async function scalingCmd(flags: Record<string, unknown>): Promise<void> {
  const o = scalingOptions(flags);
  const out = String(flags.out);
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const load0 = loadavg();
  const corpus = await loadTokens(o.data, o.tokenizer);
  checkSizes(o, corpus.vocabSize);
  mkdirSync(out, { recursive: true });
  const be = await loadBackend(String(flags.backend));
  try {
    const plan = planStages(o);
    const fpt = o.sizes.map((_, i) => trainFlopsPerToken(sizeConfig(o, i, corpus.vocabSize), o.seq));
    process.stdout.write(`tokenformer scaling (preset ${o.preset}) on ${be.name}: sizes ${o.sizes.map(formatSize).join(' → ')}, `
      + `${o.steps} updates from scratch, ${o.fraction} of that per grown stage, variants ${o.variants.join(', ')}, ${o.seeds} seed(s); `
      + `${plan.length} stages; load ${load0.map((x) => x.toFixed(2)).join('/')}; writing ${out}\n`);
    const run = await runScaling(be, corpus, o, scalingHooks(plan, fpt));
    const cpu = process.cpuUsage(cpu0);
    const s = await writeReport(out, run, o, { wallSeconds: (performance.now() - t0) / 1000, cpuSeconds: (cpu.user + cpu.system) / 1e6, loadAtStart: load0 });
    const h = s.headline;
    process.stdout.write(`largest size, ${h.variant} path: loss ratio ${h.lossRatio.mean.toFixed(4)} (goal ≤ ${h.goal.lossRatio}), `
      + `series cost ratio ${h.seriesRatio.mean.toFixed(3)} (goal ≤ ${h.goal.seriesRatio}): ${h.goalMet ? 'met' : 'not met'}; `
      + `reach ratio ${h.reachRatio ? h.reachRatio.mean.toFixed(3) : 'not reached'}; lowest loss ratio: ${h.best.variant} ${h.best.lossRatio.toFixed(4)}\n`
      + `wrote ${out}/report.md, report.json, scaling.svg/png, curves.svg/png in ${s.wallSeconds} s (CPU ${s.cpuSeconds} s)\n`);
  } finally {
    await be.destroy();
  }
}

export function registerScaling(program: Command): void {
  const d = PRESETS.cpu;
  const cmd = program.command('scaling')
    .description("the paper's incremental scaling in miniature: sizes grown by appending tokens vs every size from scratch; both cost accountings, a growth ablation, seeds")
    .option('--preset <name>', `cpu (2 CPU cores: 7.2 min measured nearly quiet, 11 min at load average 5) or gpu (GPT-NeoX tokenizer, ~10 min on one data-centre GPU, estimated)`, 'cpu')
    .option('--out <dir>', 'output folder', 'out/scaling')
    .option('--backend <name>', 'cpu | webgpu | gpujs | gpujs-<mode> | auto', 'auto')
    .option('--sizes <list>', `qkv/proj/ffn token counts per size, smallest first (default ${d.sizes.map(formatSize).join(',')})`)
    .option('--variants <list>', `growth variants, the first is the headline: zero, random, frozen, renorm (default ${d.variants.join(',')})`)
    .option('--variant <name>', `norm_activation_type (default ${d.variant})`)
    .option('--moments <mode>', `AdamW moments at growth: reset (official) or carry (default ${d.moments})`)
    .option('--tokenizer <name>', `bytes or gpt-neox (default ${d.tokenizer}; gpu preset: gpt-neox)`)
    .option('--data <path>', 'a text file or folder instead of the Brown corpus');
  for (const [k, help] of Object.entries(NUMERIC) as [keyof ScalingOptions, string][]) {
    cmd.option(`--${kebab(k)} <x>`, `${help} (default ${String(d[k])})`, numberFlag(kebab(k)));
  }
  cmd.action(scalingCmd);
}
