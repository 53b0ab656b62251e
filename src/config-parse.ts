// Reads official GPT-NeoX TokenFormer config files (YAML or JSON, `-` or `_` key spellings)
// into a validated ModelConfig, and writes one back as YAML (spec/config.md).
// Omits: GPT-NeoX's merging of several config files, training keys (ignored here; the trainer
// reads its own), and every model variant other than TokenFormer (rejected, not approximated).
// The text itself (YAML parsing, key caps, duplicate keys) is src/config-text.ts.

import { CONFIG_LIMITS, MAX_CONFIG_KEYS, MAX_LAYER_SLOTS, type ModelConfig, rotaryDim } from './config.ts';
import { parseConfigText, readConfigText, tooManyKeys } from './config-text.ts';
import { VARIANTS, type Variant } from './backend.ts';
import { UserError } from './errors.ts';
import { pattentionLayers } from './params.ts';

export interface ConfigParseOptions {
  /** Rows of `sequential.0.word_embeddings.weight`: supplies a missing vocab_size. */
  vocabFromWeights?: number;
}

/** GPT-NeoX-20B's tokenizer (50277 entries) padded to a multiple of 128. */
export const NEOX_20B_VOCAB = 50304;

type Raw = Map<string, unknown>;

function oneLine(s: string, max = 300): string {
  const t = s.replace(/\s+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max)}…` : t;
}

function fail(source: string, problem: string): never {
  throw new UserError(oneLine(`${source}: ${problem}`));
}

/** JSON text of a value, or null if it has none or is nested too deeply to stringify. */
function safeJson(v: unknown): string | null {
  try {
    return JSON.stringify(v) ?? null;
  } catch {
    return null;
  }
}

function show(v: unknown): string {
  if (v instanceof Map) return 'a mapping';
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v); // NaN and ±Infinity, which JSON shows as null
  const s = safeJson(v);
  return s === null ? (typeof v === 'object' && v !== null ? 'a nested value' : String(v)) : oneLine(s, 60);
}

/** A JS object or a YAML Map → a Map with `-` normalized to `_` in the top-level keys. */
function normalizeKeys(raw: unknown, source: string): Raw {
  let entries: [unknown, unknown][];
  if (raw instanceof Map) entries = [...raw.entries()];
  else if (typeof raw === 'object' && raw !== null && !Array.isArray(raw)) entries = Object.entries(raw);
  else return fail(source, 'config is not a mapping of keys to values');
  if (entries.length > MAX_CONFIG_KEYS) fail(source, tooManyKeys(entries.length));
  const out: Raw = new Map();
  const spelled = new Map<string, string>();
  for (const [k, v] of entries) {
    if (typeof k !== 'string') fail(source, `config key ${show(k)} is not a string`);
    const key = k.replace(/-/g, '_');
    const prev = spelled.get(key);
    if (prev !== undefined && (safeJson(out.get(key)) !== safeJson(v) || safeJson(v) === null)) {
      fail(source, `${key} is given twice with different values (as ${prev} and ${k})`);
    }
    spelled.set(key, k);
    out.set(key, v);
  }
  return out;
}

type SizeKey = keyof typeof CONFIG_LIMITS;

/** A size field: a positive integer no larger than its CONFIG_LIMITS entry. */
function checkSize(v: unknown, key: SizeKey, source: string): number {
  if (typeof v === 'number' && Number.isInteger(v) && v > CONFIG_LIMITS[key]) {
    fail(source, `${key} ${show(v)} exceeds the limit of ${CONFIG_LIMITS[key]} (no TokenFormer is that large; see spec/config.md)`);
  }
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) {
    fail(source, `${key} must be a positive integer, got ${show(v)}`);
  }
  return v;
}

function posInt(raw: Raw, key: SizeKey, source: string): number {
  const v = raw.get(key);
  if (v === undefined || v === null) fail(source, `missing required key ${key}`);
  return checkSize(v, key, source);
}

function posNumber(raw: Raw, key: string, fallback: number, source: string): number {
  const v = raw.has(key) ? raw.get(key) : fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
    fail(source, `${key} must be a positive number, got ${show(v)}`);
  }
  return v;
}

function oneOf<T extends string>(
  raw: Raw, key: string, allowed: readonly T[], fallback: T, source: string, why = '',
): T {
  const v = raw.has(key) ? raw.get(key) : fallback;
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    fail(source, `${key} ${show(v)} is not supported (expected ${allowed.join(' or ')})${why}`);
  }
  return v as T;
}

function bool(raw: Raw, key: string, fallback: boolean, source: string): boolean {
  const v = raw.has(key) ? raw.get(key) : fallback;
  if (typeof v !== 'boolean') fail(source, `${key} must be true or false, got ${show(v)}`);
  return v;
}

function vocabSize(raw: Raw, opts: ConfigParseOptions, source: string): number {
  const w = opts.vocabFromWeights;
  if (!raw.has('vocab_size') || raw.get('vocab_size') === null) {
    if (w !== undefined) {
      if (!Number.isSafeInteger(w) || w < 1) fail(source, `vocabulary size from the weights (${w}) is not a positive integer`);
      return w;
    }
    fail(source, 'missing vocab_size: the official configs omit it (GPT-NeoX derives it from the '
      + `tokenizer; GPT-NeoX-20B gives ${NEOX_20B_VOCAB}); add "vocab_size: ${NEOX_20B_VOCAB}" or give weights`);
  }
  const v = posInt(raw, 'vocab_size', source);
  if (w !== undefined && w !== v) {
    fail(source, `vocab_size ${v} disagrees with the weights' word_embeddings rows (${w})`);
  }
  return v;
}

/** attention_config, if present: every layer type must be "tokenformer", counts sum to L. */
function checkAttentionConfig(raw: Raw, numLayers: number, source: string): void {
  if (!raw.has('attention_config')) return;
  const ac = raw.get('attention_config');
  const bad = (): never => fail(source, `attention_config ${show(ac)} must look like [[["tokenformer"], ${numLayers}]]`);
  if (!Array.isArray(ac)) bad();
  let layers = 0;
  for (const item of ac as unknown[]) {
    if (!Array.isArray(item) || item.length !== 2 || !Array.isArray(item[0])) bad();
    const [types, count] = item as [unknown[], unknown];
    if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0) bad();
    for (const t of types) {
      if (t !== 'tokenformer') fail(source, `attention_config type ${show(t)} is not supported (only "tokenformer")`);
    }
    layers += types.length * (count as number);
  }
  if (layers !== numLayers) fail(source, `attention_config covers ${layers} layers but num_layers is ${numLayers}`);
}

const PREFIX_RE = /^sequential\.(\d+)\.(attention\.(query|key|value|proj)|mlp)$/;

function prefixError(key: string, k: unknown, numLayers: number): string {
  return `${key} key ${show(k)} is not a Pattention layer prefix `
    + `(sequential.{2…${numLayers + 1}}.attention.{query,key,value,proj} or sequential.{…}.mlp)`;
}

function isLayerPrefix(k: unknown, numLayers: number): k is string {
  const m = typeof k === 'string' ? PREFIX_RE.exec(k) : null;
  const idx = m ? Number(m[1]) : -1;
  return m !== null && idx >= 2 && idx <= numLayers + 1;
}

/** One entry of a per-layer map: a positive integer ≤ MAX_LAYER_SLOTS. */
function checkLayerCount(key: string, k: string, n: unknown, source: string): void {
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1) {
    fail(source, `${key}[${show(k)}] must be a positive integer, got ${show(n)}`);
  }
  if (n > MAX_LAYER_SLOTS) fail(source, `${key}[${show(k)}] = ${n} exceeds the limit of ${MAX_LAYER_SLOTS} tokens per layer`);
}

/** A map Pattention layer prefix → positive integer (tokenformer_norm_slots, tokenformer_layer_slots). */
function layerMap(raw: Raw, key: string, numLayers: number, source: string): Record<string, number> {
  const v = raw.get(key);
  if (v === undefined || v === null) return {};
  const entries = v instanceof Map ? [...v.entries()]
    : typeof v === 'object' && !Array.isArray(v) ? Object.entries(v as object) : fail(source, `${key} must be a mapping`);
  const out: Record<string, number> = {};
  for (const [k, n] of entries) {
    if (!isLayerPrefix(k, numLayers)) fail(source, prefixError(key, k, numLayers));
    checkLayerCount(key, k, n, source);
    Object.defineProperty(out, k, { value: n, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** Builds and validates a ModelConfig from parsed keys (a plain object or a Map). */
export function configFromObject(raw: unknown, source: string, opts: ConfigParseOptions = {}): ModelConfig {
  const r = normalizeKeys(raw, source);
  const numLayers = posInt(r, 'num_layers', source);
  const c: ModelConfig = {
    numLayers,
    hiddenSize: posInt(r, 'hidden_size', source),
    numHeads: posInt(r, 'num_attention_heads', source),
    qkvSlots: posInt(r, 'qkv_slot_num', source),
    projSlots: posInt(r, 'proj_slot_num', source),
    ffnSlots: posInt(r, 'ffn_slot_num', source),
    maxPositions: posInt(r, 'max_position_embeddings', source),
    rotaryPct: posNumber(r, 'rotary_pct', 1.0, source),
    rotaryBase: posNumber(r, 'rotary_emb_base', 10000, source),
    variant: oneOf<Variant>(r, 'norm_activation_type', VARIANTS, 'l2_norm_gelu', source),
    tied: !bool(r, 'no_weight_tying', false, source),
    eps: posNumber(r, 'layernorm_epsilon', 1e-5, source),
    vocabSize: vocabSize(r, opts, source),
    normSlots: layerMap(r, 'tokenformer_norm_slots', numLayers, source),
  };
  const layerSlots = layerMap(r, 'tokenformer_layer_slots', numLayers, source);
  if (Object.keys(layerSlots).length > 0) c.layerSlots = layerSlots;
  oneOf(r, 'norm', ['layernorm_nonparam'], 'layernorm_nonparam', source, ' inside TokenFormer blocks');
  oneOf(r, 'final_norm', ['layernorm'], 'layernorm', source, ' for the final norm');
  oneOf(r, 'pos_emb', ['rotary'], 'rotary', source);
  if (r.has('gpt_j_residual') && r.get('gpt_j_residual') !== false) {
    fail(source, 'gpt_j_residual must be false (TokenFormer blocks are sequential pre-norm residuals)');
  }
  checkAttentionConfig(r, numLayers, source);
  validateConfig(c, source);
  return c;
}

const SIZE_FIELDS: [keyof ModelConfig, SizeKey][] = [
  ['numLayers', 'num_layers'], ['hiddenSize', 'hidden_size'], ['numHeads', 'num_attention_heads'],
  ['qkvSlots', 'qkv_slot_num'], ['projSlots', 'proj_slot_num'], ['ffnSlots', 'ffn_slot_num'],
  ['maxPositions', 'max_position_embeddings'], ['vocabSize', 'vocab_size'],
];

const isPlainObject = (v: unknown): boolean => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Map);

/** Every field of a ModelConfig built in code or read from a checkpoint's state.json. */
function validateFields(c: ModelConfig, source: string): void {
  if (!isPlainObject(c)) fail(source, `the model config is ${show(c)}, not an object`);
  for (const [field, key] of SIZE_FIELDS) {
    if (c[field] === undefined) fail(source, `missing required key ${key}`);
    checkSize(c[field], key, source);
  }
  for (const [field, key] of [['rotaryPct', 'rotary_pct'], ['rotaryBase', 'rotary_emb_base'], ['eps', 'layernorm_epsilon']] as const) {
    const v = c[field];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) fail(source, `${key} must be a positive number, got ${show(v)}`);
  }
  if (!(VARIANTS as readonly unknown[]).includes(c.variant)) {
    fail(source, `norm_activation_type ${show(c.variant)} is not supported (expected ${VARIANTS.join(' or ')})`);
  }
  if (typeof c.tied !== 'boolean') fail(source, `tied (!no_weight_tying) must be true or false, got ${show(c.tied)}`);
  if (c.normSlots === undefined) fail(source, 'missing tokenformer_norm_slots (normSlots; {} when no layer is pinned)');
  if (!isPlainObject(c.normSlots)) fail(source, `tokenformer_norm_slots must be a mapping, got ${show(c.normSlots)}`);
  if (c.layerSlots !== undefined && !isPlainObject(c.layerSlots)) {
    fail(source, `tokenformer_layer_slots must be a mapping, got ${show(c.layerSlots)}`);
  }
}

/**
 * Every rule of a config: each field's type and range (CONFIG_LIMITS) and the cross-field
 * rules. For configs built in code (growth, the demo) and read from a checkpoint.
 */
export function validateConfig(c: ModelConfig, source: string): void {
  validateFields(c, source);
  if (c.hiddenSize % c.numHeads !== 0) {
    fail(source, `hidden_size ${c.hiddenSize} is not divisible by num_attention_heads ${c.numHeads}`);
  }
  if (!(c.rotaryPct > 0 && c.rotaryPct <= 1)) fail(source, `rotary_pct ${c.rotaryPct} must be in (0, 1]`);
  const rd = rotaryDim(c);
  if (rd % 2 !== 0) {
    fail(source, `rotary dimension int(head_dim ${c.hiddenSize / c.numHeads} × rotary_pct ${c.rotaryPct}) = ${rd} is odd; it must be even`);
  }
  validateLayerSlots(c, source);
}

/**
 * tokenformer_layer_slots and tokenformer_norm_slots: layer prefixes, positive integers, and no
 * pinned normalization count above the layer's token count (growth only appends tokens).
 */
function validateLayerSlots(c: ModelConfig, source: string): void {
  for (const [key, map] of [['tokenformer_norm_slots', c.normSlots], ['tokenformer_layer_slots', c.layerSlots ?? {}]] as const) {
    for (const [k, n] of Object.entries(map)) {
      if (!isLayerPrefix(k, c.numLayers)) fail(source, prefixError(key, k, c.numLayers));
      checkLayerCount(key, k, n, source);
    }
  }
  for (const l of pattentionLayers(c)) {
    const pinned = Object.hasOwn(c.normSlots, l.prefix) ? c.normSlots[l.prefix] : undefined;
    if (pinned === undefined || pinned <= l.n) continue;
    const own = c.layerSlots !== undefined && Object.hasOwn(c.layerSlots, l.prefix);
    fail(source, own
      ? `tokenformer_layer_slots[${show(l.prefix)}] = ${l.n} is below the layer's pinned normalization count ${pinned} (tokenformer_norm_slots)`
      : `tokenformer_norm_slots[${show(l.prefix)}] = ${pinned} exceeds the layer's token count ${l.n} (${l.kind}_slot_num)`);
  }
}

/** Parses YAML or JSON text (JSON is read as YAML 1.2, which it is). */
export function parseConfig(text: string, source: string, opts: ConfigParseOptions = {}): ModelConfig {
  return configFromObject(parseConfigText(text, source), source, opts);
}

/** Reads a config file (YAML or JSON): a regular file (src/fsguard.ts) of at most MAX_CONFIG_BYTES. */
export function readConfigFile(path: string, opts: ConfigParseOptions = {}): ModelConfig {
  return parseConfig(readConfigText(path), path, opts);
}

/** A number both YAML 1.2 and PyYAML (YAML 1.1, which needs a "." before "e") read as a float. */
function yamlNumber(n: number): string {
  const s = String(n); // shortest round-trip form, e.g. 0.25, 0.00001, 1e-7, 1.5e+21
  return /e/.test(s) && !s.includes('.') ? s.replace('e', '.0e') : s;
}

/**
 * The config as YAML with the official `_` key spellings, plus vocab_size and (when non-empty)
 * tokenformer_layer_slots and tokenformer_norm_slots. `parseConfig(configToYaml(c))` gives back c. Written by hand: every
 * value is a number, boolean or fixed identifier, so no quoting is needed.
 */
export function configToYaml(c: ModelConfig): string {
  const lines = [
    '# TokenFormer model config (GPT-NeoX keys), written by tokenformer.',
    `num_layers: ${c.numLayers}`,
    `hidden_size: ${c.hiddenSize}`,
    `num_attention_heads: ${c.numHeads}`,
    `qkv_slot_num: ${c.qkvSlots}`,
    `proj_slot_num: ${c.projSlots}`,
    `ffn_slot_num: ${c.ffnSlots}`,
    `max_position_embeddings: ${c.maxPositions}`,
    'pos_emb: rotary',
    `rotary_pct: ${yamlNumber(c.rotaryPct)}`,
    `rotary_emb_base: ${yamlNumber(c.rotaryBase)}`,
    'norm: layernorm_nonparam',
    'final_norm: layernorm',
    `norm_activation_type: ${c.variant}`,
    `no_weight_tying: ${!c.tied}`,
    `layernorm_epsilon: ${yamlNumber(c.eps)}`,
    `vocab_size: ${c.vocabSize}`,
  ];
  const maps: [string, string, Record<string, number>][] = [
    ['tokenformer_layer_slots', 'the token count n of each Pattention layer that differs from its kind', c.layerSlots ?? {}],
    ['tokenformer_norm_slots', 'the n inside sqrt(n) of each grown Pattention layer', c.normSlots],
  ];
  for (const [key, what, map] of maps) {
    const slots = Object.entries(map);
    if (slots.length === 0) continue;
    lines.push(`# our extension: ${what}`);
    lines.push(`${key}:`);
    for (const [k, n] of slots) {
      if (!PREFIX_RE.test(k)) throw new UserError(`configToYaml: ${show(k)} is not a Pattention layer prefix`);
      lines.push(`  ${k}: ${n}`);
    }
  }
  return lines.join('\n') + '\n';
}
