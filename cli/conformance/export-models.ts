// The model cases of a conformance suite: tiny TokenFormers (every Θ variant, tied and untied,
// rotary 0.25/0.5/1.0, odd sizes, T = 1, batch > 1) with seeded parameters and tokens; two AdamW
// steps with clipping; zero-init growth of every layer kind and of a single layer, and a grown
// model on its own; or the same kinds for a user's config (`--config`). Sizes and init scales
// follow golden/gen_models.py (chosen there so Θ is far from linear and float32 stays in tolerance).
// Omits: computing the expected values (export.ts runs the CPU reference on these inputs).

import type { Variant } from '../../src/backend.ts';
import type { ModelConfig } from '../../src/config.ts';
import { validateConfig } from '../../src/config-parse.ts';
import { growLayers, growModel } from '../../src/grow.ts';
import { initParams, normSlotsOf, paramSpecs, pattentionLayers, finalNormPrefix } from '../../src/params.ts';
import { Rng } from '../../src/rng.ts';
import { officialConfig, type CaseJson, type LayerInfo, type Role } from './format.ts';
import { randint, randn } from './export-ops.ts';
import type { HostTensor } from './run-ops.ts';

type Init = 'official' | { key: number; value: number | 'wang'; embed: number; out: number };
const SCALED = { key: 0.5, value: 0.3, embed: 0.3, out: 0.3 };
const SOFTMAX_SCALED = { key: 0.3, value: 0.03, embed: 0.3, out: 0.3 };

export interface ModelSpec {
  name: string;
  config: ModelConfig;
  batch: number;
  seq: number;
  init: Init;
}

export interface ModelCaseSpec {
  name: string;
  /** The case.json fields beyond the common ones (kind, config, layers, …). */
  fields: Partial<CaseJson>;
  inputs: [name: string, role: Role, t: HostTensor][];
}

function tiny(over: Partial<ModelConfig> & Pick<ModelConfig, 'numLayers' | 'hiddenSize' | 'numHeads' | 'qkvSlots' | 'projSlots' | 'ffnSlots' | 'vocabSize' | 'rotaryPct' | 'variant' | 'tied'>): ModelConfig {
  const c: ModelConfig = { maxPositions: 64, rotaryBase: 10000, eps: 1e-5, normSlots: {}, ...over };
  validateConfig(c, 'conformance model');
  return c;
}

export const MODEL_SPECS: ModelSpec[] = [
  { name: 'l2_tied', batch: 2, seq: 7, init: 'official', config: tiny({ numLayers: 2, hiddenSize: 32, numHeads: 2, qkvSlots: 24, projSlots: 20, ffnSlots: 40, vocabSize: 50, rotaryPct: 0.25, variant: 'l2_norm_gelu', tied: true }) },
  { name: 'gelu_l2_untied', batch: 2, seq: 8, init: { ...SCALED, value: 'wang' }, config: tiny({ numLayers: 1, hiddenSize: 32, numHeads: 4, qkvSlots: 16, projSlots: 16, ffnSlots: 48, vocabSize: 41, rotaryPct: 1, variant: 'gelu_l2_norm', tied: false }) },
  { name: 'softmax_tied', batch: 2, seq: 9, init: SOFTMAX_SCALED, config: tiny({ numLayers: 2, hiddenSize: 32, numHeads: 2, qkvSlots: 20, projSlots: 24, ffnSlots: 36, vocabSize: 53, rotaryPct: 0.25, variant: 'softmax', tied: true }) },
  { name: 'odd_l2_untied', batch: 2, seq: 9, init: { ...SCALED, embed: 0.5 }, config: tiny({ numLayers: 2, hiddenSize: 48, numHeads: 4, qkvSlots: 37, projSlots: 29, ffnSlots: 53, vocabSize: 67, rotaryPct: 0.5, variant: 'l2_norm_gelu', tied: false }) },
  { name: 'odd_gelu_l2_tied', batch: 2, seq: 7, init: SCALED, config: tiny({ numLayers: 1, hiddenSize: 48, numHeads: 4, qkvSlots: 37, projSlots: 29, ffnSlots: 53, vocabSize: 67, rotaryPct: 1, rotaryBase: 500, eps: 1e-6, variant: 'gelu_l2_norm', tied: true }) },
  { name: 'odd_softmax_untied', batch: 2, seq: 8, init: SOFTMAX_SCALED, config: tiny({ numLayers: 2, hiddenSize: 48, numHeads: 3, qkvSlots: 37, projSlots: 29, ffnSlots: 53, vocabSize: 67, rotaryPct: 0.25, variant: 'softmax', tied: false }) },
  { name: 'seq1_batch3', batch: 3, seq: 1, init: 'official', config: tiny({ numLayers: 2, hiddenSize: 32, numHeads: 2, qkvSlots: 24, projSlots: 20, ffnSlots: 40, vocabSize: 50, rotaryPct: 0.5, variant: 'l2_norm_gelu', tied: true }) },
];

/** Seeded parameters (official init, or golden/gen_models.py's scaled one) and tokens. */
export function modelData(spec: ModelSpec, seed: number): { weights: Map<string, Float32Array>; ids: HostTensor; targets: HostTensor } {
  const rng = new Rng(seedFor(seed, `model:${spec.name}`));
  const c = spec.config;
  let weights: Map<string, Float32Array>;
  if (spec.init === 'official') {
    weights = initParams(c, rng);
  } else {
    const i = spec.init;
    const wang = 2 / (c.numLayers * Math.sqrt(c.hiddenSize));
    const std = { embedding: i.embed, key: i.key, value: i.value === 'wang' ? wang : i.value, final_linear: i.out };
    weights = new Map();
    for (const s of paramSpecs(c)) {
      const t = s.role === 'norm_weight' ? randn(rng, s.shape, 0.2, 1) : s.role === 'norm_bias' ? randn(rng, s.shape, 0.2) : randn(rng, s.shape, std[s.role]);
      weights.set(s.name, t.data as Float32Array);
    }
  }
  const ids = randint(rng, c.vocabSize, [spec.batch, spec.seq]);
  const targets = randint(rng, c.vocabSize, [spec.batch, spec.seq]);
  return { weights, ids, targets };
}

/** A per-case seed from the suite seed and a name (FNV-1a), so --only never changes a case's data. */
export function seedFor(seed: number, name: string): number {
  let h = 0x811c9dc5;
  for (const ch of `${seed}:${name}`) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return h;
}

export function layerInfo(c: ModelConfig): LayerInfo[] {
  return pattentionLayers(c).map((l) => ({ prefix: l.prefix, n: l.n, normN: normSlotsOf(c, l.prefix), dIn: l.dIn, dOut: l.dOut }));
}

function modelFields(c: ModelConfig, spec: ModelSpec): Partial<CaseJson> {
  return { config: officialConfig(c), variant: c.variant, layers: layerInfo(c), batch: spec.batch, seq: spec.seq };
}

function paramInputs(c: ModelConfig, w: Map<string, Float32Array>): ModelCaseSpec['inputs'] {
  return paramSpecs(c).map((s) => [s.name, 'parameter', { shape: s.shape, data: w.get(s.name)! }]);
}

function describe(spec: ModelSpec, c: ModelConfig): string {
  const init = spec.init === 'official' ? 'official init' : 'scaled init';
  return `${c.numLayers}-layer ${c.variant} ${c.tied ? 'tied' : 'untied'}, C ${c.hiddenSize}, H ${c.numHeads}, rotary ${c.rotaryPct}, `
    + `n ${c.qkvSlots}/${c.projSlots}/${c.ffnSlots}, V ${c.vocabSize}, B ${spec.batch}, T ${spec.seq}, ${init}`;
}

export function modelCase(spec: ModelSpec, seed: number, name = `model_${spec.name}`): ModelCaseSpec {
  const d = modelData(spec, seed);
  const c = spec.config;
  return {
    name,
    fields: { kind: 'model', description: `logits, loss, every gradient and the block intermediates: ${describe(spec, c)}`, ...modelFields(c, spec) },
    inputs: [...paramInputs(c, d.weights), ['input_ids', 'input', d.ids], ['targets', 'input', d.targets]],
  };
}

export function trainCase(spec: ModelSpec, seed: number, lrs: number[], name = `train_${spec.name}`): ModelCaseSpec {
  const m = modelCase(spec, seed);
  const c = spec.config;
  const norm = finalNormPrefix(c);
  const optimizer = {
    name: 'adamw' as const, lrs, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1,
    noDecay: [`${norm}.weight`, `${norm}.bias`], maxGradNorm: 1, clipEps: 1e-6,
  };
  const description = `${lrs.length} AdamW steps (official recipe, clipping 1.0), lrs ${JSON.stringify(lrs)}: ${describe(spec, c)}`;
  return { name, fields: { ...m.fields, kind: 'train', description, optimizer }, inputs: m.inputs };
}

/** Zero-init growth of `spec`'s model: by kind (targets) or single layers (counts). */
export function growCase(
  spec: ModelSpec, seed: number, name: string,
  how: { kinds?: Partial<Record<'qkv' | 'proj' | 'ffn', number>>; layers?: Record<string, number> },
): { grow: ModelCaseSpec; grownSpec: ModelSpec; grownWeights: Map<string, Float32Array>; ids: HostTensor; targets: HostTensor } {
  const d = modelData(spec, seed);
  const base = spec.config;
  const rng = new Rng(seedFor(seed, `grow:${name}`));
  const byKind = growModel(base, d.weights, how.kinds ?? {}, 'zero', rng);
  const g = growLayers(byKind.config, byKind.weights, how.layers ?? {}, 'zero', rng);
  const c = g.config;
  validateConfig(c, `conformance ${name}`);
  const oldN = new Map(pattentionLayers(base).map((l) => [l.prefix, l.n]));
  const layers = pattentionLayers(c).filter((l) => l.n !== oldN.get(l.prefix))
    .map((l) => ({ prefix: l.prefix, from: oldN.get(l.prefix)!, to: l.n, normN: normSlotsOf(c, l.prefix) }));
  const rows: ModelCaseSpec['inputs'] = layers.map((l) => {
    const v = g.weights.get(`${l.prefix}.value_param_tokens`)!;
    const dOut = v.length / l.to;
    return [`new_values.${l.prefix}`, 'input', { shape: [l.to - l.from, dOut], data: v.slice(l.from * dOut) }];
  });
  const grownSpec: ModelSpec = { ...spec, config: c };
  const what = layers.length === 1 ? `the single layer ${layers[0].prefix} ${layers[0].from} → ${layers[0].to}` : `every layer (${layers.length})`;
  const grow: ModelCaseSpec = {
    name,
    fields: {
      kind: 'grow', ...modelFields(c, spec), baseConfig: officialConfig(base), growth: { init: 'zero', layers },
      description: `zero-init growth of ${what}, √n pinned at the old n; the grown weights, then the grown model's (unchanged) logits and loss, its gradients (new keys learn) and intermediates: ${describe(spec, base)}`,
    },
    inputs: [...paramInputs(base, d.weights), ...rows, ['input_ids', 'input', d.ids], ['targets', 'input', d.targets]],
  };
  return { grow, grownSpec, grownWeights: g.weights, ids: d.ids, targets: d.targets };
}

/** A grown model loaded as it is (config with tokenformer_norm_slots / _layer_slots). */
export function grownModelCase(name: string, g: ReturnType<typeof growCase>): ModelCaseSpec {
  const spec = g.grownSpec;
  const c = spec.config;
  return {
    name,
    fields: { kind: 'model', description: `a zero-init grown model as a checkpoint (normN ≠ n): ${describe(spec, c)}`, ...modelFields(c, spec) },
    inputs: [...paramInputs(c, g.grownWeights), ['input_ids', 'input', g.ids], ['targets', 'input', g.targets]],
  };
}

/** Every model, train and grow case of the default suite. */
export function defaultModelCases(seed: number): ModelCaseSpec[] {
  const byName = new Map(MODEL_SPECS.map((s) => [s.name, s]));
  const out = MODEL_SPECS.map((s) => modelCase(s, seed));
  out.push(trainCase(byName.get('l2_tied')!, seed, [3e-3, 2e-3]));
  out.push(trainCase(byName.get('gelu_l2_untied')!, seed, [3e-3, 1e-3]));
  const all = growCase(byName.get('l2_tied')!, seed, 'grow_zero_l2_tied', { kinds: { qkv: 32, proj: 28, ffn: 56 } });
  out.push(all.grow);
  out.push(growCase(byName.get('gelu_l2_untied')!, seed, 'grow_zero_gelu_l2_untied', { kinds: { qkv: 24, proj: 20, ffn: 64 } }).grow);
  out.push(growCase(byName.get('l2_tied')!, seed, 'grow_layer_l2_tied', { layers: { 'sequential.3.mlp': 60 } }).grow);
  out.push(grownModelCase('model_grown_l2_tied', all));
  return out;
}

/** The cases for a user's config: the model, two AdamW steps, and (not softmax) zero growth by ~¼ per kind. */
export function configCases(c: ModelConfig, stem: string, seed: number, batch: number, seq: number): ModelCaseSpec[] {
  const spec: ModelSpec = { name: stem, config: c, batch, seq, init: 'official' };
  const out = [modelCase(spec, seed), trainCase(spec, seed, [6e-4, 6e-4])];
  if (c.variant !== ('softmax' satisfies Variant)) {
    const more = (n: number) => n + Math.max(1, Math.floor(n / 4));
    out.push(growCase(spec, seed, `grow_zero_${stem}`, { kinds: { qkv: more(c.qkvSlots), proj: more(c.projSlots), ffn: more(c.ffnSlots) } }).grow);
  }
  return out;
}
