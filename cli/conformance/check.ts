// `tokenformer conformance check`: compares a candidate folder (CANDIDATE/<case>/outputs.safetensors)
// with a suite, tensor by tensor under the chosen tolerance class, and builds the report: per case
// pass/fail, the worst error as a fraction of the tolerance, NMSE, and the first tensor (in the
// case's order: the forward's intermediates, outputs, then gradients) that leaves tolerance.
// A missing case, tensor or unreadable file is a line in the report, never a crash; a bad suite
// is a UserError (exit 2).
// Omits: printing (report.ts) and computing anything.

import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../src/errors.ts';
import { quote } from '../../src/fsguard.ts';
import { readSafetensors, type SafeTensor, type SafeTensors } from '../../src/safetensors.ts';
import { compareTensor, unravel } from './compare.ts';
import {
  EXPECTED_FILE, OUTPUTS_FILE, onlyMatcher, readCandidateJson, readCaseJson, readSuiteJson,
  type CaseJson, type ClassName, type Role, type TensorEntry, type Tolerance,
} from './format.ts';

export type TensorStatus = 'pass' | 'fail' | 'missing' | 'bad';
export type CaseStatus = 'pass' | 'fail' | 'missing' | 'invalid' | 'skipped';

export interface Element {
  tensor: string;
  index: number[];
  got: number;
  want: number;
  ratio: number;
}

export interface TensorReport {
  name: string;
  role: Role;
  status: TensorStatus;
  ratio: number | null;
  nmse: number | null;
  index: number[] | null;
  got: number | null;
  want: number | null;
  problem?: string;
  block?: number | null;
  point?: string;
}

export interface CaseReport {
  case: string;
  kind: string;
  op?: string;
  status: CaseStatus;
  /** The largest error as a fraction of its bound, over every tensor given. */
  worst: Element | null;
  /** The largest NMSE over the tensors given. */
  nmse: number | null;
  /** The first expected tensor, in the case's order, that is out of tolerance or malformed. */
  firstDivergence: (Element & { block: number | null; point: string | null; role: Role }) | null;
  missing: string[];
  problems: string[];
  tensors: TensorReport[];
}

export interface Report {
  format: 'tokenformer-conformance-report';
  formatVersion: 1;
  suite: string;
  candidate: string;
  implementation: string | null;
  class: ClassName;
  tolerance: Tolerance;
  summary: { cases: number; passed: number; failed: number; skipped: number };
  cases: CaseReport[];
}

/** Thrown by the CLI after printing a report with failures (exit code 1). */
export class CheckFailed extends Error {
  override name = 'CheckFailed';
  constructor(readonly failed: number) {
    super(`${failed} case(s) failed`);
  }
}

function checkTensor(e: TensorEntry, want: SafeTensor, got: SafeTensor | undefined, tol: Tolerance): TensorReport {
  const r: TensorReport = { name: e.name, role: e.role, status: 'missing', ratio: null, nmse: null, index: null, got: null, want: null };
  if (e.block !== undefined) r.block = e.block;
  if (e.point !== undefined) r.point = e.point;
  if (!got) return r;
  const shapeOk = got.shape.length === e.shape.length && got.shape.every((d, i) => d === e.shape[i]);
  if (!(got.data instanceof Float32Array)) return { ...r, status: 'bad', problem: `dtype ${got.dtype}; expected a float (F32, F16 or BF16)` };
  if (!shapeOk) return { ...r, status: 'bad', problem: `shape [${got.shape}], expected [${e.shape}]` };
  const c = compareTensor(got.data, want.data, e.rule ?? 'values', tol);
  return {
    ...r, status: c.ratio <= 1 ? 'pass' : 'fail', ratio: c.ratio, nmse: c.nmse,
    index: c.worst >= 0 ? unravel(c.worst, e.shape) : null, got: c.got, want: c.want,
  };
}

function readExpected(suite: string, c: CaseJson): SafeTensors {
  const ex = readSafetensors(join(suite, c.name, EXPECTED_FILE), 'expected file');
  for (const e of c.tensors) {
    if (e.rule !== undefined && !ex.has(e.name)) throw new UserError(`suite case ${quote(c.name)}: expected.safetensors lacks ${quote(e.name)}`);
  }
  return ex;
}

/** The candidate's outputs, or a reason they cannot be read (a missing file is 'missing'). */
function readOutputs(dir: string, name: string): SafeTensors | { status: 'missing' | 'invalid'; problem: string } {
  const path = join(dir, name, OUTPUTS_FILE);
  if (!existsSync(path)) return { status: 'missing', problem: `no ${name}/${OUTPUTS_FILE}` };
  try {
    return readSafetensors(path, 'candidate outputs');
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    return { status: 'invalid', problem: e.message.split('\n')[0] };
  }
}

function summarize(r: CaseReport): void {
  const elementOf = (t: TensorReport): Element => ({ tensor: t.name, index: t.index ?? [], got: t.got ?? NaN, want: t.want ?? NaN, ratio: t.ratio ?? Infinity });
  for (const t of r.tensors) {
    if (t.ratio !== null && (r.worst === null || t.ratio > r.worst.ratio)) r.worst = elementOf(t);
    if (t.nmse !== null) r.nmse = Math.max(r.nmse ?? 0, t.nmse);
    if (t.status === 'missing' && t.role !== 'intermediate') r.missing.push(t.name);
    if (t.status === 'bad') r.problems.push(`${t.name}: ${t.problem}`);
  }
  const first = r.tensors.find((t) => t.status === 'fail' || t.status === 'bad');
  if (first) r.firstDivergence = { ...elementOf(first), block: first.block ?? null, point: first.point ?? null, role: first.role };
  const failed = first !== undefined || r.missing.length > 0;
  r.status = failed ? 'fail' : 'pass';
}

function checkCase(suite: string, cand: string, c: CaseJson, tol: Tolerance, unsupported: Record<string, string>): CaseReport {
  const r: CaseReport = {
    case: c.name, kind: c.kind, ...(c.op ? { op: c.op } : {}), status: 'fail', worst: null, nmse: null,
    firstDivergence: null, missing: [], problems: [], tensors: [],
  };
  const expected = readExpected(suite, c);
  if (Object.hasOwn(unsupported, c.name)) {
    return { ...r, status: 'skipped', problems: [`declared unsupported by the candidate: ${String(unsupported[c.name]).slice(0, 200)}`] };
  }
  const out = readOutputs(cand, c.name);
  if (!(out instanceof Map)) return { ...r, status: out.status, problems: [out.problem] };
  for (const e of c.tensors) {
    if (e.rule === undefined) continue; // inputs
    r.tensors.push(checkTensor(e, expected.get(e.name)!, out.get(e.name), tol));
  }
  summarize(r);
  return r;
}

export function checkSuite(suite: string, candidate: string, cls: ClassName, only?: string): Report {
  if (!existsSync(candidate) || !statSync(candidate).isDirectory()) throw new UserError(`candidate folder ${quote(candidate)} does not exist`);
  const s = readSuiteJson(suite);
  const match = onlyMatcher(only);
  const cj = readCandidateJson(candidate);
  const unsupported = cj?.unsupported ?? {};
  const cases: CaseReport[] = [];
  for (const entry of s.cases.filter((e) => match(e.name))) {
    const c = readCaseJson(suite, entry.name);
    cases.push(checkCase(suite, candidate, c, c.tolerances[cls], unsupported));
  }
  if (cases.length === 0) throw new UserError(`--only ${JSON.stringify(only)} selects no case of the suite`);
  const count = (st: CaseStatus[]) => cases.filter((c) => st.includes(c.status)).length;
  return {
    format: 'tokenformer-conformance-report', formatVersion: 1, suite, candidate,
    implementation: cj?.implementation ?? null, class: cls, tolerance: s.tolerances[cls],
    summary: { cases: cases.length, passed: count(['pass']), failed: count(['fail', 'missing', 'invalid']), skipped: count(['skipped']) },
    cases,
  };
}
