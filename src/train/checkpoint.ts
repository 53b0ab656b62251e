// Training checkpoints: one folder holding weights.safetensors (official names),
// optimizer.safetensors (m.<name>, v.<name>), state.json (step, RNG/data cursor, config,
// train args, loss history) and config.yml. Saved atomically as a whole folder.
// Omits: keeping several checkpoints (each save replaces the previous one) and sharding.
//
// Atomicity: a save writes everything into a sibling temp folder (files fsynced, state.json
// last as the completeness marker), then renames the old folder aside, renames the temp
// folder into place and deletes the old one. POSIX cannot rename a folder over a non-empty
// one, so there is a moment with two renames; a process killed between them leaves
// `<dir>.old-*` and no `<dir>`, which loadCheckpoint recovers. A kill at any other moment
// leaves `<dir>` itself complete (the old or the new checkpoint).

import {
  closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import type { ModelConfig } from '../config.ts';
import { UserError } from '../errors.ts';
import { readSafetensors, serializeSafetensors, type TensorIn } from '../safetensors.ts';

export const WEIGHTS_FILE = 'weights.safetensors';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const STATE_FILE = 'state.json';
export const CONFIG_FILE = 'config.yml';
const STATE_VERSION = 1;

/** One logged point of a run. */
export interface HistoryPoint {
  step: number; // optimizer updates done
  tokens: number; // training tokens seen so far
  flops: number; // training FLOPs spent so far (spec/growth.md)
  lr: number;
  loss?: number; // mean training loss of this step's micro-batches
  gradNorm?: number; // global gradient norm before clipping
  valLoss?: number;
}

export interface TrainState {
  version: number;
  /** Optimizer updates done; the next update is step + 1. */
  step: number;
  /** The data cursor: the batch RNG's state after `step` updates (data.ts sampleBatch). */
  dataRng: number[];
  config: ModelConfig;
  /** The train arguments (JSON-safe), so a resumed run continues with the same recipe. */
  args: Record<string, unknown>;
  history: HistoryPoint[];
  /** AdamW's update count (bias correction) when it differs from step: a run continued
   *  after growth keeps its optimizer but starts a new schedule at step 0. */
  optStep?: number;
  /** Tokens and FLOPs spent before this run's step 0 (e.g. by the model it was grown from). */
  offsetTokens?: number;
  offsetFlops?: number;
}

export interface Checkpoint {
  weights: Map<string, TensorIn & { data: Float32Array }>;
  /** m.<name> and v.<name>; null for a weights-only folder. */
  moments: Map<string, TensorIn & { data: Float32Array }> | null;
  state: TrainState;
}

/** Writes a file and fsyncs it (inside the temp folder; the folder rename is the commit). */
function writeSynced(path: string, data: Uint8Array | string): void {
  const fd = openSync(path, 'wx');
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function syncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // NOTE: some platforms cannot fsync a folder; the renames stay atomic regardless.
  }
}

/** Sibling folders left by earlier saves: `<name>.tmp-*` (partial) and `<name>.old-*`. */
function leftovers(dir: string, kind: 'tmp' | 'old'): string[] {
  const parent = dirname(dir);
  if (!existsSync(parent)) return [];
  const prefix = `${basename(dir)}.${kind}-`;
  return readdirSync(parent).filter((f) => f.startsWith(prefix)).map((f) => join(parent, f));
}

/**
 * Saves a checkpoint folder atomically (see the header). `testHookAfterFile` runs after
 * each file is written (tests use it to be killed mid-save).
 */
export function saveCheckpoint(
  dirIn: string, ck: Checkpoint, configYaml: string, testHookAfterFile?: (file: string) => void,
): void {
  const dir = resolve(dirIn);
  mkdirSync(dirname(dir), { recursive: true });
  for (const stale of leftovers(dir, 'tmp')) rmSync(stale, { recursive: true, force: true });
  const tag = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const tmp = `${dir}.tmp-${tag}`;
  mkdirSync(tmp);
  const files: [string, () => Uint8Array | string][] = [
    [WEIGHTS_FILE, () => serializeSafetensors(ck.weights, { format: 'pt' })],
    [OPTIMIZER_FILE, () => serializeSafetensors(ck.moments ?? new Map(), { step: String(ck.state.step) })],
    [CONFIG_FILE, () => configYaml],
    [STATE_FILE, () => `${JSON.stringify(ck.state, null, 1)}\n`], // last: marks the folder complete
  ];
  for (const [name, make] of files) {
    if (name === OPTIMIZER_FILE && !ck.moments) continue;
    writeSynced(join(tmp, name), make());
    testHookAfterFile?.(name);
  }
  syncDir(tmp);
  let old: string | null = null;
  if (existsSync(dir)) {
    old = `${dir}.old-${tag}`;
    renameSync(dir, old);
    testHookAfterFile?.('(renamed aside)');
  }
  renameSync(tmp, dir);
  syncDir(dirname(dir));
  if (old) rmSync(old, { recursive: true, force: true });
  for (const stale of leftovers(dir, 'old')) rmSync(stale, { recursive: true, force: true });
}

function readState(dir: string): TrainState {
  const path = join(dir, STATE_FILE);
  let s: TrainState;
  try {
    s = JSON.parse(readFileSync(path, 'utf8')) as TrainState;
  } catch (e) {
    throw new UserError(`${path}: cannot read the training state (${(e as Error).message.split('\n')[0]})`);
  }
  if (s.version !== STATE_VERSION || !Number.isInteger(s.step) || !Array.isArray(s.dataRng) || !s.config) {
    throw new UserError(`${path}: not a tokenformer training state (version ${STATE_VERSION})`);
  }
  return s;
}

/** Where a checkpoint's files are: the folder, or a complete `.old-*` copy a kill left. */
export function resolveCheckpointDir(dirIn: string): string {
  const dir = resolve(dirIn);
  if (existsSync(join(dir, STATE_FILE))) return dir;
  const olds = leftovers(dir, 'old').filter((d) => existsSync(join(d, STATE_FILE)));
  if (olds.length > 0) {
    // The newest complete one: the highest step.
    return olds.map((d) => ({ d, step: readState(d).step })).sort((a, b) => b.step - a.step)[0].d;
  }
  throw new UserError(`${dirIn}: no checkpoint (${STATE_FILE} missing)`);
}

function f32Map(path: string): Map<string, TensorIn & { data: Float32Array }> {
  const out = new Map<string, TensorIn & { data: Float32Array }>();
  for (const [name, t] of readSafetensors(path)) {
    if (!(t.data instanceof Float32Array)) throw new UserError(`${path}: '${name}' is not a float tensor`);
    out.set(name, { shape: t.shape, data: t.data });
  }
  return out;
}

export function loadCheckpoint(dirIn: string): Checkpoint {
  const dir = resolveCheckpointDir(dirIn);
  const state = readState(dir);
  const weights = f32Map(join(dir, WEIGHTS_FILE));
  const moments = existsSync(join(dir, OPTIMIZER_FILE)) ? f32Map(join(dir, OPTIMIZER_FILE)) : null;
  return { weights, moments, state };
}

export function newState(config: ModelConfig, args: Record<string, unknown>, dataRng: number[]): TrainState {
  return { version: STATE_VERSION, step: 0, dataRng, config, args, history: [] };
}
