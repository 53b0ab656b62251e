// Growth of a TokenFormer by appending parameter tokens to its Pattention layers (the paper's
// incremental scaling), on host weights. `zero` init preserves the function exactly for the
// l2_norm_gelu and gelu_l2_norm variants; `random` is the official recipe (spec/growth.md).
// Omits: growing hidden size, heads or layers, and a function-preserving init for softmax
// (refused; spec/growth.md explains why and what would work).

import type { ModelConfig } from './config.ts';
import { UserError } from './errors.ts';
import {
  KIND_FIELD, NORMAL_INIT_STD, normSlotsOf, pattentionLayers, valueInitStd, type PattentionKind, type PattentionLayer,
} from './params.ts';
import type { Rng } from './rng.ts';

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
