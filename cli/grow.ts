// `tokenformer grow`: appends parameter tokens to every Pattention layer of the chosen kinds
// and/or to single layers (--layer PREFIX=N), and writes the grown config (with
// tokenformer_norm_slots and tokenformer_layer_slots) and weights; then measures how
// much the outputs moved on a fixed text sample. Every check (flags, paths, memory) runs
// before growing, and both outputs are staged and renamed together, so a failure leaves
// nothing (spec/files.md). Omits: growing a checkpoint's optimizer state (the Trainer's
// grow() does that for a live run).

import type { Command } from 'commander';
import { loadBackend } from '../backends/index.ts';
import type { ModelConfig } from '../src/config.ts';
import { configToYaml, validateConfig } from '../src/config-parse.ts';
import { commitStaged, discardStaged, stageFile, type StagedFile } from '../src/atomic.ts';
import { UserError } from '../src/errors.ts';
import { checkFreeSpace, quote } from '../src/fsguard.ts';
import { GROW_INITS, growLayers, growModel, measureShift, type GrowInit, type GrowTargets, type OutputShift } from '../src/grow.ts';
import { memoryBudget, paramFloats } from '../src/limits.ts';
import { paramSpecs } from '../src/params.ts';
import { Rng } from '../src/rng.ts';
import { stageSafetensors } from '../src/safetensors.ts';
import { checkGrowMemory } from './chunked.ts';
import { checkBackendName, checkOutputs, readModelFiles } from './io.ts';
import { OutputClosed, StdoutFailed, settle, stdoutFailure } from './stdio.ts';

interface GrowOpts {
  config: string;
  weights: string;
  outConfig: string;
  outWeights: string;
  qkvSlots?: number;
  projSlots?: number;
  ffnSlots?: number;
  layer: Record<string, number>;
  init: string;
  seed: number;
  backend: string;
  check: boolean;
  maxMemory?: string;
}

function intFlag(name: string, min: number) {
  return (v: string): number => {
    const x = Number(v);
    if (!/^\s*\d+\s*$/.test(v) || !Number.isSafeInteger(x) || x < min) {
      throw new UserError(`--${name} expects a ${min > 0 ? 'positive' : 'non-negative'} integer, got ${quote(v, 40)}`);
    }
    return x;
  };
}

/** --layer PREFIX=N, repeatable: collects prefix → new total token count. */
function layerFlag(v: string, prev: Record<string, number>): Record<string, number> {
  const m = /^\s*([A-Za-z0-9_.]+)\s*=\s*(\d+)\s*$/.exec(v);
  const n = m ? Number(m[2]) : NaN;
  if (!m || !Number.isSafeInteger(n) || n < 1) throw new UserError(`--layer expects PREFIX=N with N a positive integer (e.g. sequential.2.mlp=64), got ${quote(v, 60)}`);
  if (Object.hasOwn(prev, m[1])) throw new UserError(`--layer ${quote(m[1])} is given twice`);
  return { ...prev, [m[1]]: n };
}

function growTargets(o: GrowOpts): GrowTargets {
  if (!GROW_INITS.includes(o.init as GrowInit)) throw new UserError(`--init must be zero or random, got ${quote(o.init, 40)}`);
  const targets: GrowTargets = {};
  if (o.qkvSlots !== undefined) targets.qkv = o.qkvSlots;
  if (o.projSlots !== undefined) targets.proj = o.projSlots;
  if (o.ffnSlots !== undefined) targets.ffn = o.ffnSlots;
  if (Object.keys(targets).length === 0 && Object.keys(o.layer).length === 0) {
    throw new UserError('nothing to grow: give --qkv-slots, --proj-slots, --ffn-slots and/or --layer PREFIX=N');
  }
  return targets;
}

/** Stages both outputs (temp files next to the targets); nothing is renamed yet. */
function stageOutputs(o: GrowOpts, c: ModelConfig, w: Map<string, Float32Array>): StagedFile[] {
  const tensors = new Map(paramSpecs(c).map((s) => [s.name, { shape: s.shape, data: w.get(s.name)! }]));
  const staged = [stageSafetensors(o.outWeights, tensors, { format: 'pt' })];
  try {
    staged.push(stageFile(o.outConfig, configToYaml(c)));
  } catch (e) {
    discardStaged(staged);
    throw e;
  }
  return staged;
}

/**
 * Prints the report, then renames both outputs (undoing the first if the second fails). The
 * report goes first so that a stdout that cannot take it (ENOSPC) fails the run before any
 * file is replaced; a closed pipe (EPIPE) only drops the text.
 */
async function reportAndCommit(staged: StagedFile[], lines: string[]): Promise<void> {
  try {
    for (const l of lines) process.stdout.write(l);
  } catch (e) {
    if (!(e instanceof OutputClosed)) {
      discardStaged(staged);
      throw e;
    }
  }
  await settle();
  const failed = stdoutFailure();
  if (failed !== null) {
    discardStaged(staged);
    throw new StdoutFailed(`${failed}; the grown config and weights were not written`);
  }
  commitStaged(staged);
}

function shiftLine(s: OutputShift): string {
  const same = s.maxAbsLogitDiff === 0 ? ' (bit-identical)' : '';
  return `outputs on a fixed Brown sample: max |Δlogit| = ${s.maxAbsLogitDiff.toExponential(3)}${same} `
    + `(max |logit| ${s.maxAbsLogit.toFixed(3)}), loss ${s.lossBefore.toFixed(6)} → ${s.lossAfter.toFixed(6)}\n`;
}

/**
 * Everything is checked (flags, backend name, output paths and folders, inputs, memory) before
 * growing; the outputs check runs before anything is written, so a failure leaves nothing.
 */
async function growCmd(o: GrowOpts): Promise<void> {
  memoryBudget(o.maxMemory);
  const targets = growTargets(o);
  checkBackendName(o.backend);
  checkOutputs([['--out-weights', o.outWeights], ['--out-config', o.outConfig]], [o.config, o.weights]);
  const { config, weights } = readModelFiles(o.config, o.weights, o);
  checkGrowMemory(config, (l) => o.layer[l.prefix] ?? targets[l.kind] ?? l.n, o.check, o.maxMemory);
  const rng = new Rng(o.seed);
  const byKind = growModel(config, weights, targets, o.init as GrowInit, rng);
  const g = growLayers(byKind.config, byKind.weights, o.layer, o.init as GrowInit, rng);
  validateConfig(g.config, quote(o.outConfig));
  checkFreeSpace(o.outWeights, 4 * paramFloats(g.config) + 2 ** 20, '--out-weights');
  let shift: OutputShift | null = null;
  if (o.check) {
    const be = await loadBackend(o.backend);
    try {
      shift = await measureShift(be, config, weights, g.config, g.weights);
    } finally {
      await be.destroy();
    }
  }
  const staged = stageOutputs(o, g.config, g.weights);
  const single = Object.entries(o.layer).map(([p, n]) => `, ${p} →${n}`).join('');
  const sizes = `qkv ${config.qkvSlots}→${g.config.qkvSlots}, proj ${config.projSlots}→${g.config.projSlots}, ffn ${config.ffnSlots}→${g.config.ffnSlots}${single}`;
  const lines = [`grew ${sizes} (init ${o.init}, seed ${o.seed}) → ${o.outConfig}, ${o.outWeights}\n`];
  if (shift) lines.push(shiftLine(shift));
  await reportAndCommit(staged, lines);
}

export function registerGrow(program: Command): void {
  program.command('grow')
    .description('append parameter tokens to the Pattention layers of the given kinds or single layers (function-preserving with --init zero)')
    .requiredOption('--config <path>', 'model config (YAML or JSON)')
    .requiredOption('--weights <path>', 'weights (.safetensors)')
    .requiredOption('--out-config <path>', 'grown config (YAML, with tokenformer_norm_slots / tokenformer_layer_slots)')
    .requiredOption('--out-weights <path>', 'grown weights (.safetensors)')
    .option('--qkv-slots <n>', 'new token count of the query/key/value layers', intFlag('qkv-slots', 1))
    .option('--proj-slots <n>', 'new token count of the attention output layers', intFlag('proj-slots', 1))
    .option('--ffn-slots <n>', 'new token count of the FFN layers', intFlag('ffn-slots', 1))
    .option('--layer <prefix=n>', 'new token count of one layer, e.g. sequential.2.mlp=64 (repeatable; after the kinds)', layerFlag, {})
    .option('--init <zero|random>', 'zero: new keys 0, √n pinned (preserves the function); random: official recipe', 'zero')
    .option('--seed <s>', 'seed of the new values (and keys with random)', intFlag('seed', 0), 0)
    .option('--backend <name>', 'backend for the outputs check', 'cpu')
    .option('--max-memory <size>', 'memory budget, e.g. 8G (default TOKENFORMER_MAX_MEMORY or 75% of RAM)')
    .option('--no-check', 'skip measuring how much the outputs moved')
    .action(growCmd);
}
