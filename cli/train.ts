// `tokenformer train`: trains a TokenFormer on bytes of the Brown corpus (or --data) with the
// official GPT-NeoX recipe, checkpointing atomically to --out and resuming with --resume.
// Everything a run needs is checked before it starts: the config and flags, the memory
// estimate (--max-memory), and that --out is new, empty or one of our checkpoints.
// Omits: multi-device training and config-file training keys (flags carry the recipe).

import { resolve } from 'node:path';
import type { Command } from 'commander';
import { loadBackend } from '../backends/index.ts';
import type { ModelConfig } from '../src/config.ts';
import { readConfigFile } from '../src/config-parse.ts';
import { UserError } from '../src/errors.ts';
import { memoryBudget, paramFloats } from '../src/limits.ts';
import { checkTrainResources } from '../src/train/args.ts';
import { checkOutputDir, loadCheckpointTensors, readCheckpointState, type TrainState } from '../src/train/checkpoint.ts';
import { loadCorpus } from '../src/train/data.ts';
import { DEFAULT_TRAIN_ARGS, Trainer, checkTrainArgs, type TrainArgs } from '../src/train/trainer.ts';
import { readModelFiles } from './io.ts';
import { makeReporter } from './progress.ts';

interface TrainOpts {
  config?: string;
  weights?: string;
  resume?: string;
  out: string;
  backend: string;
  maxMemory?: string;
  [flag: string]: unknown;
}

/** Flag name → TrainArgs key, for the numeric recipe flags; true = an integer. */
const NUMERIC: [string, keyof TrainArgs, string, boolean][] = [
  ['steps', 'steps', 'optimizer updates (train_iters)', true],
  ['batch', 'batch', 'sequences per micro-batch', true],
  ['seq', 'seq', 'tokens (bytes) per sequence', true],
  ['accum', 'accum', 'micro-batches per update (gradient accumulation)', true],
  ['lr', 'lr', 'peak learning rate', false],
  ['minLr', 'minLr', 'final learning rate of the cosine (min_lr)', false],
  ['warmup', 'warmup', 'warmup as a fraction of the decay iterations', false],
  ['decayIters', 'decayIters', 'cosine length in updates (lr_decay_iters; default --steps)', true],
  ['evalEvery', 'evalEvery', 'validation every K updates (0 = never)', true],
  ['evalBatches', 'evalBatches', 'validation batches (fixed)', true],
  ['saveEvery', 'saveEvery', 'checkpoint every K updates (0 = only at the end)', true],
  ['seed', 'seed', 'seed of the init and of the data order', true],
];

function kebab(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** A flag's number parser: finite, and an integer where `integer` (ranges are checked later, in one place). */
export function numberFlag(flag: string, integer: boolean) {
  return (v: string): number => {
    const x = Number(v);
    const shown = JSON.stringify(v.slice(0, 40));
    if (v.trim() === '' || !Number.isFinite(x)) throw new UserError(`--${flag} expects a number, got ${shown}`);
    if (integer && !Number.isSafeInteger(x)) throw new UserError(`--${flag} expects an integer, got ${shown}`);
    return x;
  };
}

/** TrainArgs from the defaults (or a checkpoint's), overridden by the flags given on the command line. */
function argsFrom(cmd: Command, o: TrainOpts, base: TrainArgs): TrainArgs {
  const a: TrainArgs = { ...base };
  for (const [flag, key] of NUMERIC) {
    if (cmd.getOptionValueSource(flag) === 'cli') (a as unknown as Record<string, unknown>)[key] = o[flag];
  }
  if (cmd.getOptionValueSource('data') === 'cli') a.data = o.data as string;
  return a;
}

interface Plan {
  config: ModelConfig;
  weights: Map<string, Float32Array> | null;
  args: TrainArgs;
  resumed: { dir: string; state: TrainState } | null;
  out: string;
}

/** Reads and checks everything a run needs, before any big allocation or training. */
function plan(o: TrainOpts, cmd: Command): Plan {
  if (!o.resume && !o.config) throw new UserError('train needs --config (or --resume DIR)');
  if (o.resume && (o.config || o.weights)) throw new UserError('--resume takes the config and weights from the checkpoint; drop --config/--weights');
  memoryBudget(o.maxMemory); // a malformed --max-memory is refused first
  const resumed = o.resume ? readCheckpointState(o.resume) : null;
  const args = argsFrom(cmd, o, resumed ? (resumed.state.args as unknown as TrainArgs) : DEFAULT_TRAIN_ARGS);
  let config: ModelConfig;
  let weights: Map<string, Float32Array> | null = null;
  if (resumed) config = resumed.state.config;
  else if (o.weights) ({ config, weights } = readModelFiles(o.config!, o.weights));
  else config = readConfigFile(o.config!);
  checkTrainArgs(args, config);
  checkTrainResources(config, args, `training this ${paramFloats(config).toLocaleString('en-US')}-parameter model`, o.maxMemory);
  checkOutputDir(o.out);
  return { config, weights, args, resumed, out: o.out };
}

async function trainCmd(o: TrainOpts, cmd: Command): Promise<void> {
  const p = plan(o, cmd);
  const ck = p.resumed ? loadCheckpointTensors(p.resumed.dir, p.resumed.state) : null;
  const corpus = loadCorpus(p.args.data ?? undefined);
  const be = await loadBackend(o.backend);
  try {
    const trainer = ck ? Trainer.resume(be, ck, corpus, p.args) : Trainer.fresh(be, p.config, p.weights, p.args, corpus);
    if (ck && o.resume && resolve(o.resume) === resolve(p.out)) trainer.lastSave = { dir: p.out, step: ck.state.step };
    process.stdout.write(`tokenformer train: ${paramFloats(p.config).toLocaleString('en-US')} parameters on ${be.name}; data ${corpus.source} `
      + `(${corpus.train.length.toLocaleString('en-US')} train / ${corpus.val.length.toLocaleString('en-US')} val bytes); `
      + `${ck ? `resuming at step ${trainer.step}` : 'from ' + (p.weights ? o.weights : `seeded init (seed ${p.args.seed})`)} → ${p.out}\n`);
    const rep = makeReporter('train', { step: trainer.step, tokens: trainer.totals().tokens }, p.args.steps);
    try {
      await trainer.run({ onStep: (pt) => rep.update(pt) }, p.out);
    } finally {
      rep.stop();
    }
    const last = [...trainer.state.history].reverse().find((pt) => typeof pt.valLoss === 'number' && Number.isFinite(pt.valLoss));
    process.stdout.write(`done: step ${trainer.step}${last ? `, val loss ${last.valLoss!.toFixed(4)} (step ${last.step})` : ''}; checkpoint in ${p.out}\n`);
    trainer.dispose();
  } finally {
    await be.destroy();
  }
}

export function registerTrain(program: Command): void {
  const cmd = program.command('train')
    .description('train on bytes of the Brown corpus (or --data) with the GPT-NeoX recipe; checkpoints to --out')
    .option('--config <path>', 'model config (official GPT-NeoX YAML or JSON); vocab_size ≥ 256')
    .option('--weights <path>', 'initial weights (.safetensors); default: seeded official init')
    .option('--data <path>', 'a text file or a folder of text files (default: the Brown corpus)')
    .option('--out <dir>', 'checkpoint folder: new, empty or an earlier checkpoint (default: --resume DIR, else out/train)')
    .option('--resume <dir>', 'continue a checkpoint exactly (flags given override its recipe)')
    .option('--max-memory <size>', 'refuse runs estimated above this (e.g. 8G; default TOKENFORMER_MAX_MEMORY or 75% of RAM)')
    .option('--backend <name>', 'cpu | webgpu | gpujs | gpujs-<mode> | auto', 'auto');
  for (const [flag, key, help, integer] of NUMERIC) {
    const d = DEFAULT_TRAIN_ARGS[key];
    cmd.option(`--${kebab(flag)} <x>`, `${help}${d === null ? '' : ` (default ${d})`}`, numberFlag(kebab(flag), integer));
  }
  cmd.action(async (o: TrainOpts, c: Command) => {
    await trainCmd({ ...o, out: o.out ?? o.resume ?? 'out/train' }, c);
  });
}
