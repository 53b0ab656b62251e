// The schema of a checkpoint's state.json, written as a small hand validator: every field's
// type and range, the model config under the same rules as a config file (validateConfig),
// the train args under the same rules as the flags (args.ts), and the history's order.
// Anything else is one UserError line "<path>: <field> …". spec/checkpoint.md lists the rules.
// Omits: migrations between versions (there is one version) and the tensors (checkpoint.ts).

import type { ModelConfig } from '../config.ts';
import { validateConfig } from '../config-parse.ts';
import { UserError } from '../errors.ts';
import { Rng } from '../rng.ts';
import { checkArgValues, DEFAULT_TRAIN_ARGS, type TrainArgs } from './args.ts';

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

export const STATE_VERSION = 1;

const STATE_KEYS = new Set(['version', 'step', 'dataRng', 'config', 'args', 'history', 'optStep', 'offsetTokens', 'offsetFlops']);
const POINT_KEYS = new Set(['step', 'tokens', 'flops', 'lr', 'loss', 'gradNorm', 'valLoss']);
const CONFIG_KEYS = new Set([
  'numLayers', 'hiddenSize', 'numHeads', 'qkvSlots', 'projSlots', 'ffnSlots', 'maxPositions', 'rotaryPct', 'rotaryBase',
  'variant', 'tied', 'eps', 'vocabSize', 'normSlots', 'layerSlots',
]);

type Obj = Record<string, unknown>;

function show(v: unknown): string {
  if (typeof v === 'number') return String(v);
  if (v === undefined) return 'nothing';
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = 'a nested value';
  }
  return s.length > 60 ? `${s.slice(0, 60)}…` : s;
}

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A one-line error about one field of the file at `path`. */
function fieldError(path: string, field: string, what: string, v: unknown): never {
  throw new UserError(`${path}: ${field} must be ${what}, got ${show(v)} (not a valid tokenformer training state)`);
}

function onlyKeys(path: string, field: string, o: Obj, allowed: Set<string>): void {
  for (const k of Object.keys(o)) {
    if (!allowed.has(k)) throw new UserError(`${path}: ${field} has an unknown field ${show(k)} (not a tokenformer training state)`);
  }
}

function count(path: string, field: string, v: unknown, min = 0): number {
  if (!Number.isSafeInteger(v) || (v as number) < min) fieldError(path, field, min > 0 ? 'a positive integer' : 'an integer ≥ 0', v);
  return v as number;
}

function finite(path: string, field: string, v: unknown, min = -Infinity): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min) fieldError(path, field, min === 0 ? 'a finite number ≥ 0' : 'a finite number', v);
  return v;
}

function checkPoint(path: string, i: number, p: unknown, prevStep: number, lastStep: number): number {
  const f = `history[${i}]`;
  if (!isObj(p)) fieldError(path, f, 'an object', p);
  onlyKeys(path, f, p, POINT_KEYS);
  const step = count(path, `${f}.step`, p.step);
  if (step <= prevStep || step > lastStep) {
    throw new UserError(`${path}: ${f}.step ${step} is out of order (after step ${prevStep}, at most the state's step ${lastStep})`);
  }
  finite(path, `${f}.tokens`, p.tokens, 0);
  finite(path, `${f}.flops`, p.flops, 0);
  finite(path, `${f}.lr`, p.lr, 0);
  if (p.loss !== undefined) finite(path, `${f}.loss`, p.loss);
  if (p.gradNorm !== undefined) finite(path, `${f}.gradNorm`, p.gradNorm, 0);
  if (p.valLoss !== undefined) finite(path, `${f}.valLoss`, p.valLoss);
  return step;
}

function checkHistory(path: string, h: unknown, step: number): HistoryPoint[] {
  if (!Array.isArray(h)) fieldError(path, 'history', 'an array', h);
  let prev = -1;
  h.forEach((p, i) => {
    prev = checkPoint(path, i, p, prev, step);
  });
  return h as HistoryPoint[];
}

function checkArgs(path: string, a: unknown): TrainArgs {
  if (!isObj(a)) fieldError(path, 'args', 'an object', a);
  onlyKeys(path, 'args', a, new Set(Object.keys(DEFAULT_TRAIN_ARGS)));
  for (const k of Object.keys(DEFAULT_TRAIN_ARGS)) if (!(k in a)) fieldError(path, `args.${k}`, 'present', undefined);
  try {
    checkArgValues(a as unknown as TrainArgs);
  } catch (e) {
    if (e instanceof UserError) throw new UserError(`${path}: args (the saved recipe): ${e.message}`);
    throw e;
  }
  return a as unknown as TrainArgs;
}

function checkConfig(path: string, c: unknown): ModelConfig {
  if (!isObj(c)) fieldError(path, 'config', 'an object', c);
  onlyKeys(path, 'config', c, CONFIG_KEYS);
  validateConfig(c as unknown as ModelConfig, `${path}: config`);
  return c as unknown as ModelConfig;
}

/** Validates parsed state.json content; returns it typed, or throws one UserError line. */
export function validateState(raw: unknown, path: string): TrainState {
  if (!isObj(raw)) fieldError(path, 'the file', 'a JSON object', raw);
  onlyKeys(path, 'the state', raw, STATE_KEYS);
  if (raw.version !== STATE_VERSION) fieldError(path, 'version', String(STATE_VERSION), raw.version);
  const step = count(path, 'step', raw.step);
  try {
    Rng.fromState(raw.dataRng as number[]);
  } catch (e) {
    if (e instanceof UserError) throw new UserError(`${path}: dataRng: ${e.message}`);
    throw e;
  }
  checkConfig(path, raw.config);
  checkArgs(path, raw.args);
  checkHistory(path, raw.history, step);
  if (raw.optStep !== undefined) count(path, 'optStep', raw.optStep);
  if (raw.offsetTokens !== undefined) finite(path, 'offsetTokens', raw.offsetTokens, 0);
  if (raw.offsetFlops !== undefined) finite(path, 'offsetFlops', raw.offsetFlops, 0);
  return raw as unknown as TrainState;
}
