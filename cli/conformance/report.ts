// The conformance report for people (a table, then what failed and where it first diverged) and
// for machines (JSON, with ±Infinity and NaN written as strings, which JSON cannot hold).
// Omits: computing the report (check.ts).

import type { CaseReport, Element, Report } from './check.ts';

function num(x: number | null | undefined, digits = 3): string {
  if (x === null || x === undefined) return '-';
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (x === 0) return '0';
  const a = Math.abs(x);
  return a >= 1e4 || a < 1e-3 ? x.toExponential(digits - 1) : x.toPrecision(digits);
}

/** Where an element is, for a table cell: `block 0 · q: block.0.q[1,3,17]`. */
export function where(e: Element & { block?: number | null; point?: string | null }): string {
  const at = `${e.tensor}[${e.index.join(',')}]`;
  if (e.block !== undefined && e.block !== null) return `block ${e.block} · ${e.point}: ${at}`;
  return at;
}

function divergence(c: CaseReport): string {
  if (c.status === 'skipped' || c.status === 'missing' || c.status === 'invalid') return c.problems[0] ?? '';
  const f = c.firstDivergence;
  if (f) return `${where(f)} got ${num(f.got, 6)} want ${num(f.want, 6)} (${num(f.ratio)}× tol)`;
  if (c.missing.length > 0) return `missing ${c.missing[0]}${c.missing.length > 1 ? ` and ${c.missing.length - 1} more` : ''}`;
  return '-';
}

const RESULT: Record<CaseReport['status'], string> = { pass: 'pass', fail: 'FAIL', missing: 'MISSING', invalid: 'INVALID', skipped: 'skip' };

function details(c: CaseReport): string[] {
  const lines: string[] = [];
  if (c.missing.length > 0) lines.push(`  missing (${c.missing.length}): ${c.missing.slice(0, 8).join(', ')}${c.missing.length > 8 ? ', …' : ''}`);
  for (const p of c.problems.slice(0, 8)) lines.push(`  ${p}`);
  const bad = c.tensors.filter((t) => t.status === 'fail').sort((a, b) => (b.ratio ?? 0) - (a.ratio ?? 0));
  for (const t of bad.slice(0, 5)) {
    lines.push(`  ${t.name}[${(t.index ?? []).join(',')}]: got ${num(t.got, 6)} want ${num(t.want, 6)}, ${num(t.ratio)}× tol, NMSE ${num(t.nmse)}`);
  }
  if (bad.length > 5) lines.push(`  … ${bad.length - 5} more tensors out of tolerance`);
  const noTrace = c.kind !== 'op' && c.kind !== 'train' && c.tensors.some((t) => t.role === 'intermediate') && c.tensors.every((t) => t.role !== 'intermediate' || t.status === 'missing');
  if (noTrace) lines.push('  (no intermediates given: the first divergence is among the outputs and gradients only)');
  return lines;
}

export function formatReport(r: Report): string {
  const t = r.tolerance;
  const w = Math.max(4, ...r.cases.map((c) => c.case.length));
  const lines = [
    `suite ${r.suite}, candidate ${r.candidate}${r.implementation ? ` (${r.implementation})` : ''}`,
    `class ${r.class}: values |x − ref| ≤ ${t.values.atol} + ${t.values.rtol}·|ref|; grads |g − ref| ≤ ${t.grads.rel}·|ref| + ${t.grads.maxRel}·max|ref|`,
    '',
    `${'case'.padEnd(w)}  result   worst/tol      NMSE  first divergence`,
  ];
  for (const c of r.cases) {
    lines.push(`${c.case.padEnd(w)}  ${RESULT[c.status].padEnd(7)}  ${num(c.worst?.ratio).padStart(9)}  ${num(c.nmse).padStart(8)}  ${divergence(c)}`);
  }
  const failed = r.cases.filter((c) => c.status !== 'pass' && c.status !== 'skipped');
  if (failed.length > 0) {
    lines.push('', 'failures:');
    for (const c of failed) lines.push(`${c.case} (${c.kind}${c.op ? ` ${c.op}` : ''}): ${RESULT[c.status]}`, ...details(c));
  }
  const s = r.summary;
  lines.push('', `${s.passed}/${s.cases} passed, ${s.failed} failed${s.skipped ? `, ${s.skipped} skipped (declared unsupported)` : ''}`);
  return `${lines.join('\n')}\n`;
}

/** JSON of the report; non-finite numbers become "Infinity", "-Infinity" or "NaN". */
export function reportJson(r: Report): string {
  return `${JSON.stringify(r, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v), 1)}\n`;
}
