// Growth of a TokenFormer by appending parameter tokens to its Pattention layers (the paper's
// incremental scaling), on host weights. `zero` init preserves the function exactly for the
// l2_norm_gelu and gelu_l2_norm variants; `random` is the official recipe (spec/growth.md).
// Omits: growing hidden size, heads or layers, and a function-preserving init for softmax
// (refused; spec/growth.md explains why and what would work).

import type { ModelConfig } from './config.ts';
import { UserError } from './errors.ts';
import { NORMAL_INIT_STD, normSlotsOf, pattentionLayers, valueInitStd, type PattentionKind, type PattentionLayer } from './params.ts';
import type { Rng } from './rng.ts';

export type GrowInit = 'zero' | 'random';
export const GROW_INITS: readonly GrowInit[] = ['zero', 'random'];

/** New total token counts per kind of Pattention layer (absent = unchanged). */
export type GrowTargets = Partial<Record<PattentionKind, number>>;

const KIND_FIELD: Record<PattentionKind, 'qkvSlots' | 'projSlots' | 'ffnSlots'> = {
  qkv: 'qkvSlots', proj: 'projSlots', ffn: 'ffnSlots',
};

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
 * Grows single layers: prefix → new token count. Returns the new tensors and normalization
 * counts of those layers. zero: the count stays at the layer's old value; random: it
 * becomes the new count (the official √n recomputed).
 * NOTE: ModelConfig holds one count per kind, so a model with one layer grown cannot be
 * described by a config yet; growModel grows every layer of a kind.
 */
export function growLayers(
  c: ModelConfig, weights: ReadonlyMap<string, Float32Array>, counts: Record<string, number>, init: GrowInit, rng: Rng,
): { weights: Map<string, Float32Array>; normSlots: Record<string, number> } {
  checkGrowInit(c, init);
  const layers = pattentionLayers(c);
  for (const prefix of Object.keys(counts)) {
    if (!layers.some((l) => l.prefix === prefix)) throw new UserError(`no Pattention layer named '${prefix}'`);
  }
  const out = new Map(weights);
  const normSlots: Record<string, number> = {};
  for (const l of layers) {
    const nNew = counts[l.prefix];
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
  }
  return { weights: out, normSlots };
}

/**
 * Grows every Pattention layer of the given kinds to the new totals. The returned config
 * has the new counts and, for zero init, `normSlots` pinning each grown layer's √n at its
 * old value (kept from an earlier zero growth); random init drops the pin.
 */
export function growModel(
  c: ModelConfig, weights: ReadonlyMap<string, Float32Array>, targets: GrowTargets, init: GrowInit, rng: Rng,
): { config: ModelConfig; weights: Map<string, Float32Array> } {
  checkGrowInit(c, init);
  const counts: Record<string, number> = {};
  for (const kind of Object.keys(targets) as PattentionKind[]) {
    const nNew = targets[kind]!;
    const old = c[KIND_FIELD[kind]];
    if (!Number.isInteger(nNew) || nNew < old) {
      throw new UserError(`--${kind}-slots ${nNew} must be an integer ≥ the current ${old}`);
    }
  }
  for (const l of pattentionLayers(c)) {
    const nNew = targets[l.kind];
    if (nNew !== undefined) counts[l.prefix] = nNew;
  }
  const g = growLayers(c, weights, counts, init, rng);
  const normSlots = { ...c.normSlots };
  for (const [prefix, n] of Object.entries(g.normSlots)) {
    if (init === 'zero') normSlots[prefix] = n;
    else delete normSlots[prefix];
  }
  const config: ModelConfig = { ...c, normSlots };
  for (const kind of Object.keys(targets) as PattentionKind[]) config[KIND_FIELD[kind]] = targets[kind]!;
  return { config, weights: g.weights };
}
