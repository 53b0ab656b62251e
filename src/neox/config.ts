// The GPT-NeoX side of `tokenformer convert --to neox`: the parallelism settings of the
// official config that decide the checkpoint layout, and the config the official trainer is
// then started with (every key of the user's config, in order, with `load` pointing at the
// new folder and `finetune: true`). Why a whole config and not configToYaml's output: GPT-NeoX
// builds NeoXArgs(**config), so a key it does not know (vocab_size, tokenformer_*) is a
// TypeError, and a key repeated across two config files is a ValueError; so one standalone
// file, without our extension keys, is what `deepy.py train.py FILE` accepts.
// Omits: anchors and aliases in the config (refused), and comments (not copied).

import { isAlias, isMap, isScalar, isSeq, parseDocument, type Node } from 'yaml';
import type { ModelConfig } from '../config.ts';
import { UserError } from '../errors.ts';
import { quote, readInputText } from '../fsguard.ts';

/** The config's top-level entries, keys with `-` spelled `_` (as GPT-NeoX reads them). */
export interface NeoxConfig {
  source: string;
  entries: Array<[string, Node | null]>;
}

/** What decides the checkpoint layout (spec/checkpoint.md, "GPT-NeoX layout"). */
export interface NeoxParallelism {
  pipeParallel: number; // pipe_parallel_size: ≥ 2 → PipelineEngine, per-layer files
  modelParallel: number; // model_parallel_size
}

/** Config files are a few KB; the same bound as the model config reader's. */
const MAX_CONFIG_BYTES = 16 * 2 ** 20;

function fail(source: string, problem: string): never {
  throw new UserError(`${quote(source)}: ${problem}`);
}

/** Reads the config's top level as nodes (the file already passed readConfigFile). */
export function readNeoxConfig(path: string): NeoxConfig {
  const doc = parseDocument(readInputText(path, 'config', MAX_CONFIG_BYTES), { schema: 'core', prettyErrors: false });
  if (doc.errors.length > 0) fail(path, `not valid YAML/JSON: ${doc.errors[0].message.split('\n')[0]}`);
  if (!isMap(doc.contents)) fail(path, 'the config is not a map of keys');
  const entries: Array<[string, Node | null]> = [];
  for (const pair of doc.contents.items) {
    if (!isScalar(pair.key) || typeof pair.key.value !== 'string') fail(path, 'a top-level key is not a string');
    entries.push([pair.key.value.replace(/-/g, '_'), (pair.value as Node | null) ?? null]);
  }
  return { source: path, entries };
}

function value(cfg: NeoxConfig, key: string): unknown {
  const e = cfg.entries.find(([k]) => k === key);
  if (!e || e[1] === null) return undefined;
  return isScalar(e[1]) ? e[1].value : e[1].toJSON();
}

function intSetting(cfg: NeoxConfig, key: string, dflt: number): number {
  const v = value(cfg, key) ?? dflt;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(cfg.source, `${key} must be a non-negative integer, got ${quote(String(v))}`);
  return v;
}

/**
 * The layout-deciding settings, with GPT-NeoX's defaults, and the refusals: settings whose
 * checkpoints this writer cannot produce.
 */
export function neoxParallelism(cfg: NeoxConfig): NeoxParallelism {
  const pipeParallel = intSetting(cfg, 'pipe_parallel_size', 0);
  const modelParallel = intSetting(cfg, 'model_parallel_size', 1);
  if (modelParallel !== 1) {
    fail(cfg.source, `model_parallel_size ${modelParallel}: only 1 is written (each model-parallel rank would hold a slice of the embedding)`);
  }
  if (intSetting(cfg, 'num_experts', 1) !== 1) fail(cfg.source, 'num_experts > 1 (MoE) is not a TokenFormer layout');
  if (value(cfg, 'rotary_save_freqs_buffer') === true) {
    fail(cfg.source, 'rotary_save_freqs_buffer: true would need rotary inv_freq buffers in the checkpoint; set it false (the default), they are recomputed');
  }
  return { pipeParallel, modelParallel };
}

/** A plain scalar's own text, when it is safe to repeat inside a flow map. */
function plainText(src: string): string | null {
  return /^[^\s,[\]{}#&*!|>'"%@`?:-][^,[\]{}#]*$/.test(src) && !/:\s|\s$/.test(src) ? src : null;
}

/** A number PyYAML (YAML 1.1) reads as the same number: floats need a "." and a signed exponent. */
export function pyYamlNumber(n: number, float: boolean): string {
  if (!Number.isFinite(n)) return n > 0 ? '.inf' : n < 0 ? '-.inf' : '.nan';
  let s = String(n);
  if (!float) return s;
  if (!/[.e]/.test(s)) s += '.0';
  if (/e/.test(s) && !/\.\d*e/.test(s)) s = s.replace('e', '.0e');
  return s.replace(/e(\d)/, 'e+$1');
}

/** A node as flow YAML that PyYAML reads to the same value (JSON-like, plain scalars kept). */
function emit(node: Node | null, source: string): string {
  if (node === null) return 'null';
  if (isAlias(node)) fail(source, 'YAML aliases are not supported for --to neox; write the value out');
  if (isMap(node)) {
    const parts = node.items.map((p) => `${emit(p.key as Node, source)}: ${emit((p.value as Node | null) ?? null, source)}`);
    return `{${parts.join(', ')}}`;
  }
  if (isSeq(node)) return `[${node.items.map((v) => emit(v as Node, source)).join(', ')}]`;
  if (!isScalar(node)) return fail(source, 'unsupported YAML node');
  const v = node.value;
  const src = (node as { source?: string }).source;
  // A plain scalar is repeated as written, so PyYAML resolves it exactly as it did the original.
  if (node.type === 'PLAIN' && typeof src === 'string' && plainText(src) !== null) return src;
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number') return pyYamlNumber(v, node.format === 'EXP' || (node.minFractionDigits ?? 0) > 0 || !Number.isInteger(v));
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (v === null) return 'null';
  return fail(source, `unsupported YAML value ${quote(String(v))}`);
}

/** Refuses what the official code cannot represent: per-layer token counts and pinned √n counts. */
export function checkExpressible(cfg: NeoxConfig, c: ModelConfig): void {
  if (Object.keys(c.normSlots).length > 0 || Object.keys(c.layerSlots ?? {}).length > 0) {
    fail(cfg.source, 'tokenformer_norm_slots / tokenformer_layer_slots cannot be expressed in the official code (every layer of a kind has the same token count and normalizes by it)');
  }
}

/** Our extension keys; GPT-NeoX would reject them (its NeoXArgs has no such fields). */
const OURS = ['vocab_size', 'tokenformer_norm_slots', 'tokenformer_layer_slots'];

/**
 * The config the official trainer loads the folder with: the user's keys in their order, ours
 * removed, `load` = `dir` and `finetune` = true (DeepSpeed then loads the module only).
 */
export function neoxTrainConfig(cfg: NeoxConfig, c: ModelConfig, dir: string): string {
  checkExpressible(cfg, c);
  const lines: string[] = [];
  const set = new Map<string, string>([['load', JSON.stringify(dir)], ['finetune', 'true']]);
  for (const [k, node] of cfg.entries) {
    if (OURS.includes(k)) continue;
    const over = set.get(k);
    set.delete(k);
    lines.push(`  ${JSON.stringify(k)}: ${over ?? emit(node, cfg.source)}`);
  }
  for (const [k, v] of set) lines.push(`  ${JSON.stringify(k)}: ${v}`);
  const left = cfg.entries.map(([k]) => k).filter((k) => OURS.includes(k));
  const head = [
    '# GPT-NeoX config written by `tokenformer convert --to neox` from',
    `# ${quote(cfg.source, 200)}: its keys, with "load" set to this folder and "finetune": true`,
    '# (DeepSpeed then loads the weights only: no optimizer, scheduler or RNG state; iteration 0).',
    ...(left.length > 0 ? [`# Left out (GPT-NeoX rejects keys it does not know): ${left.join(', ')}.`] : []),
  ];
  return `${head.join('\n')}\n{\n${lines.join(',\n')}\n}\n`;
}
