// `tokenformer grow`: appends parameter tokens to every Pattention layer of the chosen kinds
// and/or to single layers (--layer PREFIX=N), and writes the grown config (with
// tokenformer_norm_slots and tokenformer_layer_slots) and weights; then measures how
// much the outputs moved on a fixed text sample. Omits: growing a checkpoint's optimizer
// state (the Trainer's grow() does that for a live run).

import type { Command } from 'commander';
import { loadBackend } from '../../backends/index.ts';
import type { Backend, Handle } from '../backend.ts';
import type { ModelConfig } from '../config.ts';
import { configToYaml, validateConfig } from '../config-parse.ts';
import { writeFileAtomic } from '../atomic.ts';
import { UserError } from '../errors.ts';
import { GROW_INITS, growLayers, growModel, type GrowInit, type GrowTargets } from '../grow.ts';
import { TokenFormer } from '../model.ts';
import { paramSpecs } from '../params.ts';
import { Rng } from '../rng.ts';
import { writeSafetensorsAtomic } from '../safetensors.ts';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { brownDir, brownToText, encodeBytes } from '../train/data.ts';
import { readModelFiles } from './io.ts';

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
}

export interface OutputShift {
  maxAbsLogitDiff: number;
  maxAbsLogit: number;
  lossBefore: number;
  lossAfter: number;
}

/** A fixed sample: B×T bytes of Brown text (ids taken mod vocab), with next-byte targets. */
function sampleTokens(c: ModelConfig, B = 4, T = 64): { ids: Int32Array; targets: Int32Array; B: number; T: number } {
  const seq = Math.min(T, c.maxPositions);
  const bytes = encodeBytes(brownToText(readFileSync(join(brownDir(), 'ca01'), 'utf8')));
  const ids = new Int32Array(B * seq);
  const targets = new Int32Array(B * seq);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < seq; t++) {
      ids[b * seq + t] = bytes[b * (seq + 1) + t] % c.vocabSize;
      targets[b * seq + t] = bytes[b * (seq + 1) + t + 1] % c.vocabSize;
    }
  }
  return { ids, targets, B, T: seq };
}

async function logitsAndLoss<T extends Handle>(
  be: Backend<T>, c: ModelConfig, w: Map<string, Float32Array>, s: ReturnType<typeof sampleTokens>,
): Promise<{ logits: Float32Array; loss: number }> {
  const m = TokenFormer.fromHost(be, c, w);
  const ids = be.uploadInt(s.ids, [s.B, s.T]);
  const tg = be.uploadInt(s.targets, [s.B, s.T]);
  const f = m.forward(ids, tg);
  const logits = await be.read(f.logits);
  const loss = (await be.read(f.loss!))[0];
  m.release(f);
  for (const t of [f.logits, f.loss!, ids, tg]) be.dispose(t);
  m.dispose();
  return { logits, loss };
}

/** How far a grown model's outputs moved from the original's on the fixed sample. */
export async function measureShift<T extends Handle>(
  be: Backend<T>, c0: ModelConfig, w0: Map<string, Float32Array>, c1: ModelConfig, w1: Map<string, Float32Array>,
): Promise<OutputShift> {
  const s = sampleTokens(c0);
  const a = await logitsAndLoss(be, c0, w0, s);
  const b = await logitsAndLoss(be, c1, w1, s);
  let maxAbsLogitDiff = 0;
  let maxAbsLogit = 0;
  for (let i = 0; i < a.logits.length; i++) {
    maxAbsLogitDiff = Math.max(maxAbsLogitDiff, Math.abs(a.logits[i] - b.logits[i]));
    maxAbsLogit = Math.max(maxAbsLogit, Math.abs(a.logits[i]));
  }
  return { maxAbsLogitDiff, maxAbsLogit, lossBefore: a.loss, lossAfter: b.loss };
}

function intFlag(name: string) {
  return (v: string): number => {
    const x = Number(v);
    if (!/^\s*\d+\s*$/.test(v) || !Number.isSafeInteger(x)) throw new UserError(`--${name} expects a non-negative integer, got '${v}'`);
    return x;
  };
}

/** --layer PREFIX=N, repeatable: collects prefix → new total token count. */
function layerFlag(v: string, prev: Record<string, number>): Record<string, number> {
  const m = /^\s*([A-Za-z0-9_.]+)\s*=\s*(\d+)\s*$/.exec(v);
  const n = m ? Number(m[2]) : NaN;
  if (!m || !Number.isSafeInteger(n)) throw new UserError(`--layer expects PREFIX=N (e.g. sequential.2.mlp=64), got '${v}'`);
  if (Object.hasOwn(prev, m[1])) throw new UserError(`--layer ${m[1]} is given twice`);
  return { ...prev, [m[1]]: n };
}

async function growCmd(o: GrowOpts): Promise<void> {
  if (!GROW_INITS.includes(o.init as GrowInit)) throw new UserError(`--init must be zero or random, got '${o.init}'`);
  const targets: GrowTargets = {};
  if (o.qkvSlots !== undefined) targets.qkv = o.qkvSlots;
  if (o.projSlots !== undefined) targets.proj = o.projSlots;
  if (o.ffnSlots !== undefined) targets.ffn = o.ffnSlots;
  if (Object.keys(targets).length === 0 && Object.keys(o.layer).length === 0) {
    throw new UserError('nothing to grow: give --qkv-slots, --proj-slots, --ffn-slots and/or --layer PREFIX=N');
  }
  const { config, weights } = readModelFiles(o.config, o.weights);
  const rng = new Rng(o.seed);
  const byKind = growModel(config, weights, targets, o.init as GrowInit, rng);
  const g = growLayers(byKind.config, byKind.weights, o.layer, o.init as GrowInit, rng);
  validateConfig(g.config, o.outConfig);
  const tensors = new Map(paramSpecs(g.config).map((s) => [s.name, { shape: s.shape, data: g.weights.get(s.name)! }]));
  writeSafetensorsAtomic(o.outWeights, tensors, { format: 'pt' });
  writeFileAtomic(o.outConfig, configToYaml(g.config));
  const single = Object.entries(o.layer).map(([p, n]) => `, ${p} →${n}`).join('');
  const sizes = `qkv ${config.qkvSlots}→${g.config.qkvSlots}, proj ${config.projSlots}→${g.config.projSlots}, ffn ${config.ffnSlots}→${g.config.ffnSlots}${single}`;
  process.stdout.write(`grew ${sizes} (init ${o.init}, seed ${o.seed}) → ${o.outConfig}, ${o.outWeights}\n`);
  if (!o.check) return;
  const be = await loadBackend(o.backend);
  try {
    const s = await measureShift(be, config, weights, g.config, g.weights);
    const same = s.maxAbsLogitDiff === 0 ? ' (bit-identical)' : '';
    process.stdout.write(`outputs on a fixed Brown sample: max |Δlogit| = ${s.maxAbsLogitDiff.toExponential(3)}${same} `
      + `(max |logit| ${s.maxAbsLogit.toFixed(3)}), loss ${s.lossBefore.toFixed(6)} → ${s.lossAfter.toFixed(6)}\n`);
  } finally {
    await be.destroy();
  }
}

export function registerGrow(program: Command): void {
  program.command('grow')
    .description('append parameter tokens to the Pattention layers of the given kinds or single layers (function-preserving with --init zero)')
    .requiredOption('--config <path>', 'model config (YAML or JSON)')
    .requiredOption('--weights <path>', 'weights (.safetensors)')
    .requiredOption('--out-config <path>', 'grown config (YAML, with tokenformer_norm_slots / tokenformer_layer_slots)')
    .requiredOption('--out-weights <path>', 'grown weights (.safetensors)')
    .option('--qkv-slots <n>', 'new token count of the query/key/value layers', intFlag('qkv-slots'))
    .option('--proj-slots <n>', 'new token count of the attention output layers', intFlag('proj-slots'))
    .option('--ffn-slots <n>', 'new token count of the FFN layers', intFlag('ffn-slots'))
    .option('--layer <prefix=n>', 'new token count of one layer, e.g. sequential.2.mlp=64 (repeatable; after the kinds)', layerFlag, {})
    .option('--init <zero|random>', 'zero: new keys 0, √n pinned (preserves the function); random: official recipe', 'zero')
    .option('--seed <s>', 'seed of the new values (and keys with random)', intFlag('seed'), 0)
    .option('--backend <name>', 'backend for the outputs check', 'cpu')
    .option('--no-check', 'skip measuring how much the outputs moved')
    .action(growCmd);
}
