// `tokenformer conformance export`: builds every case (or a user config's model cases), computes
// the expected values on the CPU reference (float32 storage, float64 accumulation), and writes
// the suite folder: suite.json, and per case case.json, inputs.safetensors, expected.safetensors
// (spec/conformance.md).
// Omits: running candidates (run-backend.ts) and comparing (check.ts).

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadBackend } from '../../backends/index.ts';
import type { Backend, Handle } from '../../src/backend.ts';
import type { ModelConfig } from '../../src/config.ts';
import { writeFileAtomic } from '../../src/atomic.ts';
import { UserError } from '../../src/errors.ts';
import { geluBackward, geluForward } from '../../src/ops/gelu.ts';
import { Rng } from '../../src/rng.ts';
import { writeSafetensorsAtomic, type TensorIn } from '../../src/safetensors.ts';
import { configCases, defaultModelCases, seedFor, type ModelCaseSpec } from './export-models.ts';
import { opCases, type OpCaseSpec } from './export-ops.ts';
import { writeFolder } from './folder.ts';
import {
  CASE_FILE, EXPECTED_FILE, FORMAT_VERSION, INPUTS_FILE, SEMANTICS_VERSION, SUITE_FILE, SUITE_FORMAT, defaultTolerances, jsonText, onlyMatcher, withOverrides,
  type CaseJson, type Role, type Rule, type SuiteJson, type TensorEntry,
} from './format.ts';
import { MODEL_RUNNERS } from './run-models.ts';
import { runOpCase, type HostTensor, type Outputs } from './run-ops.ts';

export const SUITE_KIND = { what: 'suite', marker: SUITE_FILE, caseFiles: [CASE_FILE, INPUTS_FILE, EXPECTED_FILE] } as const;

export interface ExportOptions {
  seed: number;
  /** Comma-separated globs over case names. */
  only?: string;
  /** A user's config: only its model cases. */
  config?: { config: ModelConfig; stem: string; batch: number; seq: number };
  command: string;
  version: string;
  log?: (line: string) => void;
}

type Pending = { name: string; spec: { kind: 'op'; op: OpCaseSpec } | { kind: 'model'; m: ModelCaseSpec } };

function listCases(o: ExportOptions): Pending[] {
  if (o.config) {
    const c = o.config;
    return configCases(c.config, c.stem, o.seed, c.batch, c.seq).map((m) => ({ name: m.name, spec: { kind: 'model', m } }));
  }
  return [
    ...opCases().map((op): Pending => ({ name: op.name, spec: { kind: 'op', op } })),
    ...defaultModelCases(o.seed).map((m): Pending => ({ name: m.name, spec: { kind: 'model', m } })),
  ];
}

/** The role and rule of an expected tensor, from its name (spec/conformance.md, "Names"). */
export function classify(name: string): { role: Role; rule: Rule; block?: number | null; point?: string } {
  if (name.startsWith('grad_') || name.startsWith('grad.')) return { role: 'gradient', rule: 'grads' };
  const m = /^block\.(\d+)\.(\w+)$/.exec(name);
  if (m) return { role: 'intermediate', rule: 'values', block: Number(m[1]), point: m[2] };
  if (name === 'embed' || name === 'final_norm') return { role: 'intermediate', rule: 'values', block: null, point: name };
  if (name === 'logits') return { role: 'output', rule: 'values', block: null, point: name };
  return { role: 'output', rule: 'values' };
}

function entry(name: string, role: Role, t: HostTensor, extra: Partial<TensorEntry> = {}): TensorEntry {
  return { name, role, dtype: t.data instanceof Int32Array ? 'I32' : 'F32', shape: [...t.shape], ...extra };
}

async function expectedOf(be: Backend<Handle>, c: CaseJson, inputs: Map<string, HostTensor>): Promise<Outputs> {
  if (c.kind !== 'op') return MODEL_RUNNERS[c.kind](be, c, inputs);
  if (c.op !== 'gelu') return runOpCase(be, c, inputs);
  const x = inputs.get('x')!.data as Float32Array;
  const y = new Float32Array(x.length);
  const dX = new Float32Array(x.length);
  geluForward(y, x);
  geluBackward(dX, inputs.get('d_y')!.data as Float32Array, x);
  const shape = [...inputs.get('x')!.shape];
  return new Map([['y', { shape, data: y }], ['grad_x', { shape, data: dX }]]);
}

/** case.json without its tensor list (filled in once the expected values exist), keys in reading order. */
function caseBase(p: Pending, seed: number): { c: CaseJson; inputs: [string, Role, HostTensor][] } {
  const common = { format: SUITE_FORMAT, formatVersion: FORMAT_VERSION, name: p.name };
  const tail = { tensors: [], tolerances: defaultTolerances() };
  if (p.spec.kind === 'op') {
    const op = p.spec.op;
    tail.tolerances = withOverrides(tail.tolerances, op.tolerances);
    const c: CaseJson = { ...common, kind: 'op', description: op.description, op: op.op, attrs: op.attrs, ...tail };
    return { c, inputs: op.inputs(new Rng(seedFor(seed, `op:${op.name}`))) };
  }
  const m = p.spec.m;
  const { kind, description, ...rest } = m.fields;
  return { c: { ...common, kind: kind!, description: description!, ...rest, ...tail }, inputs: m.inputs };
}

async function writeCase(dir: string, be: Backend<Handle>, p: Pending, seed: number): Promise<CaseJson> {
  const { c, inputs } = caseBase(p, seed);
  const host = new Map(inputs.map(([n, , t]) => [n, t]));
  const expected = await expectedOf(be, c, host);
  c.tensors = [
    ...inputs.map(([n, role, t]) => entry(n, role, t)),
    ...[...expected].map(([n, t]) => { const k = classify(n); return entry(n, k.role, t, k); }),
  ];
  const toFile = (m: Iterable<[string, HostTensor]>) => new Map([...m].map(([n, t]): [string, TensorIn] => [n, { shape: t.shape, data: t.data }]));
  const caseDir = join(dir, p.name);
  mkdirSync(caseDir);
  writeSafetensorsAtomic(join(caseDir, INPUTS_FILE), toFile(host), { format: 'pt' });
  writeSafetensorsAtomic(join(caseDir, EXPECTED_FILE), toFile(expected), { format: 'pt' });
  writeFileAtomic(join(caseDir, CASE_FILE), `${jsonText(c)}\n`);
  return c;
}

/** Writes the suite; returns how many cases and their names. */
export async function exportSuite(dir: string, o: ExportOptions): Promise<string[]> {
  const match = onlyMatcher(o.only);
  const cases = listCases(o).filter((p) => match(p.name));
  if (cases.length === 0) throw new UserError(`--only ${JSON.stringify(o.only)} selects no case`);
  const be = await loadBackend('cpu');
  const suite: SuiteJson = {
    format: SUITE_FORMAT, formatVersion: FORMAT_VERSION, semanticsVersion: SEMANTICS_VERSION,
    generator: {
      name: 'tokenformer', version: o.version, command: o.command, seed: o.seed,
      reference: 'the CPU reference (backends/cpu.ts, src/ops/): float32 storage, float64 accumulation',
      config: o.config ? o.config.stem : null,
    },
    tolerances: defaultTolerances(),
    cases: [],
  };
  await writeFolder(dir, SUITE_KIND, async (staging) => {
    for (const p of cases) {
      const c = await writeCase(staging, be, p, o.seed);
      suite.cases.push({ name: c.name, kind: c.kind, ...(c.op ? { op: c.op } : {}) });
      o.log?.(`  ${c.kind.padEnd(5)} ${c.name}`);
    }
    writeFileAtomic(join(staging, SUITE_FILE), `${jsonText(suite)}\n`);
  });
  return cases.map((p) => p.name);
}
