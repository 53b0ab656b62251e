// Growth of a TokenFormer by appending parameter tokens to its Pattention layers (the paper's
// incremental scaling), on host weights. `zero` init preserves the function exactly for the
// l2_norm_gelu and gelu_l2_norm variants; `random` is the official recipe (spec/growth.md).
// Omits: growing hidden size, heads or layers, and a function-preserving init for softmax
// (refused; spec/growth.md explains why and what would work).
// `measureShift` runs both models on a fixed Brown sample, the check `grow` and the demo report.

import type { ModelConfig } from './config.ts';
import { UserError } from './errors.ts';
import {
  KIND_FIELD, NORMAL_INIT_STD, normSlotsOf, pattentionLayers, valueInitStd, type PattentionKind, type PattentionLayer,
} from './params.ts';
import type { Rng } from './rng.ts';
import type { Backend, Handle } from './backend.ts';
import { TokenFormer } from './model.ts';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { brownDir, brownToText, encodeBytes } from './train/data.ts';

export type GrowInit = 'zero' | 'random';
export const GROW_INITS: readonly GrowInit[] = ['zero', 'random'];

/** New total token counts per kind of Pattention layer (absent = unchanged). */
export type GrowTargets = Partial<Record<PattentionKind, number>>;

/** Throws unless `init` can preserve this variant's function (or is not meant to). */
export function checkGrowInit(c: ModelConfig, init: GrowInit): void {
  if (!GROW_INITS.includes(init)) throw new UserError(`--init must be zero or random, got '${init}'`);
  if (init === 'zero' && c.variant === 'softmax') {
    throw new UserError('--init zero cannot preserve a softmax model: a zero key scores 0 and exp(0) = 1 takes weight '
      + 'from every old token (see spec/growth.md); use --init random, which does not preserve the function either');
  }
}

/**
 * One Pattention layer grown from n to nNew tokens, on host tensors:
 * key (n, dIn) → (nNew, dIn), value (n, dOut) → (nNew, dOut); the old rows stay the prefix.
 * New keys: 0 (zero) or N(0, 0.02) (random); new values: N(0, valueStd) in both cases.
 * Draws from rng: the new keys (random only), then the new values, in row-major order.
 */
export function growPattention(
  layer: PattentionLayer, key: Float32Array, value: Float32Array, nNew: number,
  init: GrowInit, rng: Rng, valueStd: number,
): { key: Float32Array; value: Float32Array } {
  const { n, dIn, dOut } = layer;
  if (!Number.isInteger(nNew) || nNew < n) {
    throw new UserError(`${layer.prefix}: new token count ${nNew} must be an integer ≥ the current ${n}`);
  }
  if (key.length !== n * dIn || value.length !== n * dOut) {
    throw new UserError(`${layer.prefix}: tensors do not match (${n}, ${dIn}) / (${n}, ${dOut})`);
  }
  const k2 = new Float32Array(nNew * dIn); // (nNew, dIn), new rows 0
  const v2 = new Float32Array(nNew * dOut); // (nNew, dOut)
  k2.set(key);
  v2.set(value);
  if (init === 'random') rng.fillNormal(k2.subarray(n * dIn), NORMAL_INIT_STD);
  rng.fillNormal(v2.subarray(n * dOut), valueStd);
  return { key: k2, value: v2 };
}

/**
 * `layerSlots` without the entries that equal their kind's count (those say nothing), or
 * undefined when none is left; the config is rebuilt without the field then.
 */
function withLayerSlots(c: ModelConfig, layerSlots: Record<string, number>): ModelConfig {
  const kinds = new Map(pattentionLayers({ ...c, layerSlots: undefined }).map((l) => [l.prefix, l.kind]));
  const kept: Record<string, number> = {};
  for (const [prefix, n] of Object.entries(layerSlots)) {
    const kind = kinds.get(prefix);
    if (kind === undefined || n !== c[KIND_FIELD[kind]]) kept[prefix] = n;
  }
  const { layerSlots: _old, ...rest } = c;
  return Object.keys(kept).length > 0 ? { ...rest, layerSlots: kept } : rest;
}

/**
 * Grows single layers: prefix → new total token count (≥ the layer's current one). Returns
 * the grown config (the counts in `layerSlots`, i.e. tokenformer_layer_slots), the weights,
 * and the normalization counts of the grown layers. zero: each grown layer's count stays
 * pinned at its old value in `normSlots`; random: the pin is dropped (the official √n
 * recomputed with the new count), and `normSlots` here reports the new count.
 */
export function growLayers(
  c: ModelConfig, weights: ReadonlyMap<string, Float32Array>, counts: Record<string, number>, init: GrowInit, rng: Rng,
): { config: ModelConfig; weights: Map<string, Float32Array>; normSlots: Record<string, number> } {
  checkGrowInit(c, init);
  const layers = pattentionLayers(c);
  for (const prefix of Object.keys(counts)) {
    if (!layers.some((l) => l.prefix === prefix)) throw new UserError(`no Pattention layer named '${prefix}'`);
  }
  const out = new Map(weights);
  const normSlots: Record<string, number> = {};
  const pins = { ...c.normSlots };
  const layerSlots = { ...c.layerSlots };
  for (const l of layers) {
    const nNew = Object.hasOwn(counts, l.prefix) ? counts[l.prefix] : undefined;
    if (nNew === undefined || nNew === l.n) continue;
    const kName = `${l.prefix}.key_param_tokens`;
    const vName = `${l.prefix}.value_param_tokens`;
    const k = weights.get(kName);
    const v = weights.get(vName);
    if (!k || !v) throw new UserError(`weights lack '${kName}' or '${vName}'`);
    const g = growPattention(l, k, v, nNew, init, rng, valueInitStd(c));
    out.set(kName, g.key);
    out.set(vName, g.value);
    normSlots[l.prefix] = init === 'zero' ? normSlotsOf(c, l.prefix) : nNew;
    if (init === 'zero') pins[l.prefix] = normSlots[l.prefix];
    else delete pins[l.prefix];
    layerSlots[l.prefix] = nNew;
  }
  return { config: withLayerSlots({ ...c, normSlots: pins }, layerSlots), weights: out, normSlots };
}

/**
 * Grows every Pattention layer of the given kinds to the new totals (each must be ≥ the
 * current count of every layer of that kind, single layers grown before included). The
 * returned config has the new counts and, for zero init, `normSlots` pinning each grown
 * layer's √n at its old value (kept from an earlier zero growth); random init drops the pin.
 */
export function growModel(
  c: ModelConfig, weights: ReadonlyMap<string, Float32Array>, targets: GrowTargets, init: GrowInit, rng: Rng,
): { config: ModelConfig; weights: Map<string, Float32Array> } {
  checkGrowInit(c, init);
  const counts: Record<string, number> = {};
  const layers = pattentionLayers(c);
  for (const kind of Object.keys(targets) as PattentionKind[]) {
    const nNew = targets[kind]!;
    const old = Math.max(...layers.filter((l) => l.kind === kind).map((l) => l.n));
    if (!Number.isInteger(nNew) || nNew < old) {
      throw new UserError(`--${kind}-slots ${nNew} must be an integer ≥ the current ${old}`);
    }
  }
  for (const l of layers) {
    const nNew = targets[l.kind];
    if (nNew !== undefined) counts[l.prefix] = nNew;
  }
  const g = growLayers(c, weights, counts, init, rng);
  const config: ModelConfig = { ...g.config };
  for (const kind of Object.keys(targets) as PattentionKind[]) config[KIND_FIELD[kind]] = targets[kind]!;
  return { config: withLayerSlots(config, config.layerSlots ?? {}), weights: g.weights };
}

// ---- checking a growth: how far the outputs moved ----

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
