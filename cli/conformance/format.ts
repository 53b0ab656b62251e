// The conformance suite format (spec/conformance.md), version 1: suite.json, one folder per case
// with case.json + inputs.safetensors + expected.safetensors, and a candidate folder with one
// outputs.safetensors per case. Types, names, tolerance classes, and the validating readers of
// suite.json / case.json / candidate.json that `check` and the TypeScript adapter share.
// Omits: computing anything (export-*.ts, run-*.ts) and comparing (compare.ts).

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelConfig } from '../../src/config.ts';
import { configFromObject } from '../../src/config-parse.ts';
import { UserError } from '../../src/errors.ts';
import { quote, readInputText } from '../../src/fsguard.ts';

export const SUITE_FORMAT = 'tokenformer-conformance';
export const CANDIDATE_FORMAT = 'tokenformer-conformance-candidate';
export const FORMAT_VERSION = 1;
/** Bumped when what a case means changes (an op's definition, a name's meaning), not its layout. */
export const SEMANTICS_VERSION = 1;

export const SUITE_FILE = 'suite.json';
export const CASE_FILE = 'case.json';
export const INPUTS_FILE = 'inputs.safetensors';
export const EXPECTED_FILE = 'expected.safetensors';
export const OUTPUTS_FILE = 'outputs.safetensors';
export const CANDIDATE_FILE = 'candidate.json';

export const CLASSES = ['reference-f32', 'gpu-f32', 'f16', 'bf16'] as const;
export type ClassName = (typeof CLASSES)[number];

export interface ValueTol { atol: number; rtol: number }
export interface GradTol { rel: number; maxRel: number }
export interface Tolerance { values: ValueTol; grads: GradTol }
export type Tolerances = Record<ClassName, Tolerance>;

/** Where a tensor lives and what it is (spec/conformance.md, "Roles"). */
export const ROLES = ['input', 'parameter', 'cotangent', 'output', 'gradient', 'intermediate'] as const;
export type Role = (typeof ROLES)[number];
/** Roles stored in inputs.safetensors; the others are in expected.safetensors. */
export const INPUT_ROLES: readonly Role[] = ['input', 'parameter', 'cotangent'];
export type Rule = 'values' | 'grads';

export interface TensorEntry {
  name: string;
  role: Role;
  dtype: 'F32' | 'I32';
  shape: number[];
  /** Expected tensors only: the comparison rule. */
  rule?: Rule;
  /** Intermediates of model cases: the block (null outside blocks) and the point. */
  block?: number | null;
  point?: string;
}

export type CaseKind = 'op' | 'model' | 'train' | 'grow';

/** One Pattention layer of a model case, as the config implies it. */
export interface LayerInfo { prefix: string; n: number; normN: number; dIn: number; dOut: number }

export interface Optimizer {
  name: 'adamw';
  lrs: number[];
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  noDecay: string[];
  maxGradNorm: number;
  clipEps: number;
}

export interface Growth {
  init: 'zero';
  layers: { prefix: string; from: number; to: number; normN: number }[];
}

export interface CaseJson {
  format: string;
  formatVersion: number;
  name: string;
  kind: CaseKind;
  description: string;
  op?: string;
  attrs?: Record<string, number | boolean | string>;
  /** Model, train and grow cases: the model's config under the official GPT-NeoX keys. */
  config?: Record<string, unknown>;
  baseConfig?: Record<string, unknown>;
  variant?: string;
  layers?: LayerInfo[];
  batch?: number;
  seq?: number;
  optimizer?: Optimizer;
  growth?: Growth;
  /** Every tensor of the case; expected ones in the order a forward/backward produces them. */
  tensors: TensorEntry[];
  tolerances: Tolerances;
}

export interface SuiteJson {
  format: string;
  formatVersion: number;
  semanticsVersion: number;
  generator: Record<string, unknown>;
  tolerances: Tolerances;
  cases: { name: string; kind: CaseKind; op?: string }[];
}

export interface CandidateJson {
  format: string;
  formatVersion: number;
  implementation: string;
  /** Cases the candidate does not implement, with why; reported as skipped. */
  unsupported?: Record<string, string>;
}

// ------------------------------------------------------------------------- tolerance classes

const MANIFEST = join(import.meta.dirname, '..', '..', 'golden', 'manifest.json');

/**
 * reference-f32 and gpu-f32 are golden/manifest.json's `reference` and `gpu_f32` (declared
 * once, there). f16 and bf16 are ours; spec/conformance.md says how they were chosen.
 */
export function defaultTolerances(): Tolerances {
  const m = JSON.parse(readFileSync(MANIFEST, 'utf8')) as { tolerances: Record<string, { values: ValueTol; grads: GradTol }> };
  const pick = (k: string): Tolerance => {
    const t = m.tolerances[k];
    return { values: { atol: t.values.atol, rtol: t.values.rtol }, grads: { rel: t.grads.rel, maxRel: t.grads.maxRel } };
  };
  return {
    'reference-f32': pick('reference'),
    'gpu-f32': pick('gpu_f32'),
    f16: { values: { atol: 2e-2, rtol: 2e-2 }, grads: { rel: 5e-2, maxRel: 1e-2 } },
    bf16: { values: { atol: 1.5e-1, rtol: 1e-1 }, grads: { rel: 1e-1, maxRel: 1e-1 } },
  };
}

// ------------------------------------------------------------------------------- names

const CASE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$/;

export function checkCaseName(name: unknown, source: string): string {
  if (typeof name !== 'string' || !CASE_NAME.test(name)) {
    throw new UserError(`${source}: case name ${quote(name)} is not 1-100 of [A-Za-z0-9_.-] (not starting with '.' or '-')`);
  }
  return name;
}

/** A comma-separated list of globs (* any run, ? one character), each matched against the whole name. */
export function onlyMatcher(only: string | undefined): (name: string) => boolean {
  if (only === undefined) return () => true;
  const res = only.split(',').map((p) => p.trim()).filter((p) => p !== '').map((p) =>
    new RegExp(`^${p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`));
  if (res.length === 0) throw new UserError('--only needs at least one pattern');
  return (name) => res.some((r) => r.test(name));
}

/** The file a tensor of this role lives in. */
export function fileOf(role: Role): typeof INPUTS_FILE | typeof EXPECTED_FILE {
  return INPUT_ROLES.includes(role) ? INPUTS_FILE : EXPECTED_FILE;
}

// ------------------------------------------------------------------------------- readers

/** JSON files of a suite are small: 64 MiB is far above any (a case.json of a 40-layer model is ~100 kB). */
const MAX_JSON_BYTES = 64 * 2 ** 20;

function readJson(path: string, what: string): unknown {
  const text = readInputText(path, what, MAX_JSON_BYTES);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UserError(`${what} ${quote(path)} is not valid JSON: ${(e as Error).message.split('\n')[0]}`);
  }
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function need(cond: unknown, source: string, problem: string): asserts cond {
  if (!cond) throw new UserError(`${source}: ${problem}`);
}

function checkTolerances(t: unknown, source: string): Tolerances {
  need(isObj(t), source, 'tolerances must be an object');
  for (const c of CLASSES) {
    const x = t[c] as Tolerance | undefined;
    const ok = isObj(x) && isObj(x.values) && isObj(x.grads)
      && [x.values.atol, x.values.rtol, x.grads.rel, x.grads.maxRel].every((n) => typeof n === 'number' && n >= 0 && Number.isFinite(n));
    need(ok, source, `tolerances[${quote(c)}] must be { values: { atol, rtol }, grads: { rel, maxRel } } of numbers ≥ 0`);
  }
  return t as unknown as Tolerances;
}

function checkVersion(j: Record<string, unknown>, format: string, source: string): void {
  need(j.format === format, source, `format is ${quote(j.format)}, expected ${quote(format)}`);
  need(j.formatVersion === FORMAT_VERSION, source,
    `formatVersion ${quote(j.formatVersion)} is not supported (this reader knows version ${FORMAT_VERSION})`);
}

export function readSuiteJson(dir: string): SuiteJson {
  const path = join(dir, SUITE_FILE);
  const j = readJson(path, 'suite file');
  const src = quote(path);
  need(isObj(j), src, 'not a JSON object');
  checkVersion(j, SUITE_FORMAT, src);
  need(typeof j.semanticsVersion === 'number', src, 'semanticsVersion must be a number');
  need(j.semanticsVersion === SEMANTICS_VERSION, src,
    `semanticsVersion ${j.semanticsVersion} differs from this tool's ${SEMANTICS_VERSION}`);
  checkTolerances(j.tolerances, src);
  need(Array.isArray(j.cases), src, 'cases must be an array');
  const seen = new Set<string>();
  for (const c of j.cases as unknown[]) {
    need(isObj(c), src, 'each entry of cases must be an object');
    const name = checkCaseName(c.name, src);
    need(!seen.has(name), src, `case ${quote(name)} is listed twice`);
    seen.add(name);
  }
  return j as unknown as SuiteJson;
}

function checkTensorEntry(t: unknown, src: string): TensorEntry {
  need(isObj(t) && typeof t.name === 'string' && t.name.length > 0, src, 'each tensor needs a name');
  const name = quote(t.name);
  need((ROLES as readonly unknown[]).includes(t.role), src, `tensor ${name}: role ${quote(t.role)} is not one of ${ROLES.join(', ')}`);
  need(t.dtype === 'F32' || t.dtype === 'I32', src, `tensor ${name}: dtype must be F32 or I32`);
  need(Array.isArray(t.shape) && t.shape.every((d) => Number.isSafeInteger(d) && d >= 0), src, `tensor ${name}: bad shape`);
  if (!INPUT_ROLES.includes(t.role as Role)) need(t.rule === 'values' || t.rule === 'grads', src, `tensor ${name}: rule must be values or grads`);
  return t as unknown as TensorEntry;
}

export function readCaseJson(suiteDir: string, name: string): CaseJson {
  const path = join(suiteDir, name, CASE_FILE);
  const j = readJson(path, 'case file');
  const src = quote(path);
  need(isObj(j), src, 'not a JSON object');
  checkVersion(j, SUITE_FORMAT, src);
  need(j.name === name, src, `name ${quote(j.name)} differs from its folder ${quote(name)}`);
  need(['op', 'model', 'train', 'grow'].includes(j.kind as string), src, `kind ${quote(j.kind)} is not op, model, train or grow`);
  if (j.kind === 'op') need(typeof j.op === 'string' && isObj(j.attrs), src, 'an op case needs op and attrs');
  else need(isObj(j.config), src, `a ${j.kind} case needs config`);
  need(Array.isArray(j.tensors), src, 'tensors must be an array');
  const names = new Set<string>();
  for (const t of j.tensors as unknown[]) {
    const e = checkTensorEntry(t, src);
    need(!names.has(e.name), src, `tensor ${quote(e.name)} is listed twice`);
    names.add(e.name);
  }
  checkTolerances(j.tolerances, src);
  return j as unknown as CaseJson;
}

/** A case's config (official keys) as a validated ModelConfig. */
export function caseConfig(c: CaseJson, which: 'config' | 'baseConfig' = 'config'): ModelConfig {
  const raw = c[which];
  if (!isObj(raw)) throw new UserError(`case ${quote(c.name)}: ${which} is missing`);
  return configFromObject(raw, `case ${quote(c.name)} ${which}`);
}

/** candidate.json if the folder has one (it is optional), else null. */
export function readCandidateJson(dir: string): CandidateJson | null {
  const path = join(dir, CANDIDATE_FILE);
  if (!existsSync(path)) return null;
  const j = readJson(path, 'candidate file');
  const src = quote(path);
  need(isObj(j), src, 'not a JSON object');
  checkVersion(j, CANDIDATE_FORMAT, src);
  need(j.unsupported === undefined || isObj(j.unsupported), src, 'unsupported must map case names to reasons');
  return j as unknown as CandidateJson;
}

// ------------------------------------------------------------------------------- configs

/** The suite's classes with a case's overrides (per class, values and/or grads replaced). */
export type ToleranceOverrides = Partial<Record<ClassName, Partial<Tolerance>>>;

export function withOverrides(t: Tolerances, o: ToleranceOverrides | undefined): Tolerances {
  const out = structuredClone(t);
  for (const [cls, v] of Object.entries(o ?? {}) as [ClassName, Partial<Tolerance>][]) Object.assign(out[cls], v);
  return out;
}

/** A ModelConfig under the official GPT-NeoX keys (plus vocab_size and our two extensions). */
export function officialConfig(c: ModelConfig): Record<string, unknown> {
  const o: Record<string, unknown> = {
    num_layers: c.numLayers, hidden_size: c.hiddenSize, num_attention_heads: c.numHeads,
    qkv_slot_num: c.qkvSlots, proj_slot_num: c.projSlots, ffn_slot_num: c.ffnSlots,
    max_position_embeddings: c.maxPositions, pos_emb: 'rotary', rotary_pct: c.rotaryPct,
    rotary_emb_base: c.rotaryBase, norm: 'layernorm_nonparam', final_norm: 'layernorm',
    norm_activation_type: c.variant, no_weight_tying: !c.tied, layernorm_epsilon: c.eps,
    vocab_size: c.vocabSize,
  };
  if (Object.keys(c.normSlots).length > 0) o.tokenformer_norm_slots = { ...c.normSlots };
  if (c.layerSlots && Object.keys(c.layerSlots).length > 0) o.tokenformer_layer_slots = { ...c.layerSlots };
  return o;
}

const flat = (x: unknown): boolean => typeof x !== 'object' || x === null || (Array.isArray(x) && x.every((y) => typeof y !== 'object' || y === null));

/** JSON for suite.json and case.json: flat objects and arrays of scalars on one line (a tensor entry per line). */
export function jsonText(v: unknown, ind = ''): string {
  if (Array.isArray(v)) {
    if (v.every((x) => typeof x !== 'object' || x === null)) return JSON.stringify(v);
    return `[\n${v.map((x) => `${ind} ${jsonText(x, `${ind} `)}`).join(',\n')}\n${ind}]`;
  }
  if (typeof v === 'object' && v !== null) {
    const entries = Object.entries(v);
    const one = JSON.stringify(v);
    if (entries.every(([, x]) => flat(x)) && one.length <= 160) return one;
    return `{\n${entries.map(([k, x]) => `${ind} ${JSON.stringify(k)}: ${jsonText(x, `${ind} `)}`).join(',\n')}\n${ind}}`;
  }
  return JSON.stringify(v);
}
