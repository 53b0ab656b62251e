// `tokenformer train`: trains a TokenFormer on bytes of the Brown corpus (or --data) with the
// official GPT-NeoX recipe, checkpointing atomically to --out and resuming with --resume.
// Omits: multi-device training and config-file training keys (flags carry the recipe).

import type { Command } from 'commander';
import { loadBackend } from '../../backends/index.ts';
import type { ModelConfig } from '../config.ts';
import { readConfigFile } from '../config-parse.ts';
import { UserError } from '../errors.ts';
import { loadCheckpoint } from '../train/checkpoint.ts';
import { loadCorpus } from '../train/data.ts';
import { paramCount } from '../train/flops.ts';
import { DEFAULT_TRAIN_ARGS, Trainer, type TrainArgs } from '../train/trainer.ts';
import { readModelFiles } from './io.ts';
import { makeReporter } from './progress.ts';

interface TrainOpts {
  config?: string;
  weights?: string;
  resume?: string;
  out: string;
  backend: string;
  [flag: string]: unknown;
}

/** Flag name → TrainArgs key, for the numeric recipe flags. */
const NUMERIC: [string, keyof TrainArgs, string][] = [
  ['steps', 'steps', 'optimizer updates (train_iters)'],
  ['batch', 'batch', 'sequences per micro-batch'],
  ['seq', 'seq', 'tokens (bytes) per sequence'],
  ['accum', 'accum', 'micro-batches per update (gradient accumulation)'],
  ['lr', 'lr', 'peak learning rate'],
  ['minLr', 'minLr', 'final learning rate of the cosine (min_lr)'],
  ['warmup', 'warmup', 'warmup as a fraction of the decay iterations'],
  ['decayIters', 'decayIters', 'cosine length in updates (lr_decay_iters; default --steps)'],
  ['evalEvery', 'evalEvery', 'validation every K updates (0 = never)'],
  ['evalBatches', 'evalBatches', 'validation batches (fixed)'],
  ['saveEvery', 'saveEvery', 'checkpoint every K updates (0 = only at the end)'],
  ['seed', 'seed', 'seed of the init and of the data order'],
];

function kebab(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

function parseNumber(flag: string) {
  return (v: string): number => {
    const x = Number(v);
    if (v.trim() === '' || !Number.isFinite(x)) throw new UserError(`--${flag} expects a number, got '${v}'`);
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

async function trainCmd(o: TrainOpts, cmd: Command): Promise<void> {
  if (!o.resume && !o.config) throw new UserError('train needs --config (or --resume DIR)');
  if (o.resume && (o.config || o.weights)) throw new UserError('--resume takes the config and weights from the checkpoint; drop --config/--weights');
  const ck = o.resume ? loadCheckpoint(o.resume) : null;
  const args = argsFrom(cmd, o, ck ? (ck.state.args as unknown as TrainArgs) : DEFAULT_TRAIN_ARGS);
  let config: ModelConfig;
  let weights: Map<string, Float32Array> | null = null;
  if (ck) config = ck.state.config;
  else if (o.weights) ({ config, weights } = readModelFiles(o.config!, o.weights));
  else config = readConfigFile(o.config!);
  const corpus = loadCorpus(args.data ?? undefined);
  const be = await loadBackend(o.backend);
  try {
    const trainer = ck ? Trainer.resume(be, ck, corpus, args) : Trainer.fresh(be, config, weights, args, corpus);
    const out = o.out ?? o.resume;
    process.stdout.write(`tokenformer train: ${paramCount(config).toLocaleString('en-US')} parameters on ${be.name}; data ${corpus.source} `
      + `(${corpus.train.length.toLocaleString('en-US')} train / ${corpus.val.length.toLocaleString('en-US')} val bytes); `
      + `${ck ? `resuming at step ${trainer.step}` : 'from ' + (weights ? o.weights : `seeded init (seed ${args.seed})`)} → ${out}\n`);
    const rep = makeReporter('train', { step: trainer.step, tokens: trainer.totals().tokens }, args.steps);
    try {
      await trainer.run({ onStep: (p) => rep.update(p) }, out);
    } finally {
      rep.stop();
    }
    const last = [...trainer.state.history].reverse().find((p) => p.valLoss !== undefined);
    process.stdout.write(`done: step ${trainer.step}${last ? `, val loss ${last.valLoss!.toFixed(4)} (step ${last.step})` : ''}; checkpoint in ${out}\n`);
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
    .option('--out <dir>', 'checkpoint folder (default: --resume DIR, else out/train)')
    .option('--resume <dir>', 'continue a checkpoint exactly (flags given override its recipe)')
    .option('--backend <name>', 'cpu | webgpu | gpujs | gpujs-<mode> | auto', 'auto');
  for (const [flag, key, help] of NUMERIC) {
    const d = DEFAULT_TRAIN_ARGS[key];
    cmd.option(`--${kebab(flag)} <x>`, `${help}${d === null ? '' : ` (default ${d})`}`, parseNumber(kebab(flag)));
  }
  cmd.action(async (o: TrainOpts, c: Command) => {
    await trainCmd({ ...o, out: o.out ?? o.resume ?? 'out/train' }, c);
  });
}
