// Parameters of a TokenFormer: official GPT-NeoX state-dict names, shapes and init.
// Omits: pipeline-parallel layouts (the official names already flatten them) and biases
// (TokenFormer has none besides the final LayerNorm's).

import type { ModelConfig } from './config.ts';
import type { Rng } from './rng.ts';
import { UserError } from './errors.ts';
import { fmtShape, quote } from './fsguard.ts';

export type ParamRole = 'embedding' | 'key' | 'value' | 'norm_weight' | 'norm_bias' | 'final_linear';

export interface ParamSpec {
  name: string;
  shape: number[];
  role: ParamRole;
  /** Excluded from weight decay (GPT-NeoX: LayerNorm parameters). */
  noDecay: boolean;
}

export type PattentionKind = 'qkv' | 'proj' | 'ffn';

/** One Pattention layer: `prefix.key_param_tokens` (n, dIn), `prefix.value_param_tokens` (n, dOut). */
export interface PattentionLayer {
  prefix: string;
  kind: PattentionKind;
  n: number;
  dIn: number;
  dOut: number;
}

export const EMBEDDING = 'sequential.0.word_embeddings.weight';

/** sequential.{i+2}: block i. The official layout keeps index 1 and L+2 for (empty) stages. */
export function blockPrefix(i: number): string {
  return `sequential.${i + 2}`;
}

export function finalNormPrefix(c: ModelConfig): string {
  return `sequential.${c.numLayers + 3}.norm`;
}

export function finalLinearName(c: ModelConfig): string {
  return `sequential.${c.numLayers + 4}.final_linear.weight`;
}

/** The Pattention layers of block i, in forward order: query, key, value, proj, mlp. */
export function blockPattentions(c: ModelConfig, i: number): PattentionLayer[] {
  const p = blockPrefix(i);
  const C = c.hiddenSize;
  const layer = (prefix: string, kind: PattentionKind): PattentionLayer =>
    ({ prefix, kind, n: layerSlotsOf(c, prefix, kind), dIn: C, dOut: C });
  return [
    layer(`${p}.attention.query`, 'qkv'),
    layer(`${p}.attention.key`, 'qkv'),
    layer(`${p}.attention.value`, 'qkv'),
    layer(`${p}.attention.proj`, 'proj'),
    layer(`${p}.mlp`, 'ffn'),
  ];
}

/** The config field holding each kind's token count. */
export const KIND_FIELD: Record<PattentionKind, 'qkvSlots' | 'projSlots' | 'ffnSlots'> = {
  qkv: 'qkvSlots', proj: 'projSlots', ffn: 'ffnSlots',
};

/** A layer's token count n: its `layerSlots` entry, else its kind's count. */
export function layerSlotsOf(c: ModelConfig, prefix: string, kind: PattentionKind): number {
  const own = c.layerSlots && Object.hasOwn(c.layerSlots, prefix) ? c.layerSlots[prefix] : undefined;
  return own ?? c[KIND_FIELD[kind]];
}

export function pattentionLayers(c: ModelConfig): PattentionLayer[] {
  const out: PattentionLayer[] = [];
  for (let i = 0; i < c.numLayers; i++) out.push(...blockPattentions(c, i));
  return out;
}

/** The n inside √n for a layer: fixed at creation, kept when tokens are appended. */
export function normSlotsOf(c: ModelConfig, prefix: string): number {
  const fixed = Object.hasOwn(c.normSlots, prefix) ? c.normSlots[prefix] : undefined;
  if (fixed !== undefined) return fixed;
  const layer = pattentionLayers(c).find((l) => l.prefix === prefix);
  if (!layer) throw new UserError(`no Pattention layer named '${prefix}'`);
  return layer.n;
}

export function paramSpecs(c: ModelConfig): ParamSpec[] {
  const C = c.hiddenSize;
  const specs: ParamSpec[] = [
    { name: EMBEDDING, shape: [c.vocabSize, C], role: 'embedding', noDecay: false },
  ];
  for (const l of pattentionLayers(c)) {
    specs.push({ name: `${l.prefix}.key_param_tokens`, shape: [l.n, l.dIn], role: 'key', noDecay: false });
    specs.push({ name: `${l.prefix}.value_param_tokens`, shape: [l.n, l.dOut], role: 'value', noDecay: false });
  }
  const norm = finalNormPrefix(c);
  specs.push({ name: `${norm}.weight`, shape: [C], role: 'norm_weight', noDecay: true });
  specs.push({ name: `${norm}.bias`, shape: [C], role: 'norm_bias', noDecay: true });
  if (!c.tied) specs.push({ name: finalLinearName(c), shape: [c.vocabSize, C], role: 'final_linear', noDecay: false });
  return specs;
}

/** std of the official "wang_init" (GPT-NeoX output_layer_init_method): 2 / (L·√C). */
export function valueInitStd(c: ModelConfig): number {
  return 2 / (c.numLayers * Math.sqrt(c.hiddenSize));
}

/** The official init std of the key tokens, embeddings and untied head (init_method normal). */
export const NORMAL_INIT_STD = 0.02;

/** Seeded official init: keys, embedding and head N(0, 0.02); values wang_init; LN (1, 0). */
export function initParams(c: ModelConfig, rng: Rng): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const s of paramSpecs(c)) {
    const data = new Float32Array(s.shape.reduce((a, b) => a * b, 1));
    if (s.role === 'norm_weight') data.fill(1);
    else if (s.role === 'value') rng.fillNormal(data, valueInitStd(c));
    else if (s.role !== 'norm_bias') rng.fillNormal(data, NORMAL_INIT_STD);
    out.set(s.name, data);
  }
  return out;
}

/** Non-parameter buffers that official checkpoints may carry; recomputed, so ignored. */
export const BUFFER_NAME = /\.(rotary_emb\.inv_freq|attention\.bias|attention\.masked_bias)$/;

/** Checks a host state dict against the config: every name present, shapes exact, no extras. */
export function checkParams(c: ModelConfig, params: Map<string, { shape: readonly number[] }>, source: string): void {
  const specs = paramSpecs(c);
  const missing: string[] = [];
  for (const s of specs) {
    const p = params.get(s.name);
    if (!p) {
      missing.push(s.name);
      continue;
    }
    if (p.shape.length !== s.shape.length || p.shape.some((d, i) => d !== s.shape[i])) {
      throw new UserError(`${source}: ${quote(s.name)} has shape ${fmtShape(p.shape)}, config says ${fmtShape(s.shape)}`);
    }
  }
  const known = new Set(specs.map((s) => s.name));
  const unexpected = [...params.keys()].filter((name) => !known.has(name) && !BUFFER_NAME.test(name));
  const problems = [
    missing.length > 0 ? `missing ${namesList(missing, 'parameter')}` : '',
    unexpected.length > 0 ? `unexpected ${namesList(unexpected, 'tensor')} for this config` : '',
  ].filter((p) => p !== '');
  if (problems.length > 0) throw new UserError(`${source}: ${problems.join('; ')}`);
}

/** "parameter "a"" or "3 parameters: "a", "b", "c"" or "40 parameters: "a", "b", "c" and 37 more". */
function namesList(names: readonly string[], noun: string, shown = 3): string {
  if (names.length === 1) return `${noun} ${quote(names[0])}`;
  const head = names.slice(0, shown).map((n) => quote(n)).join(', ');
  const more = names.length > shown ? ` and ${names.length - shown} more` : '';
  return `${names.length} ${noun}s: ${head}${more}`;
}
