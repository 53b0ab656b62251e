// `conformance check` on candidates that are wrong in every way the format allows: a case folder
// missing, a tensor missing, a file that is not safetensors, a wrong shape, one element off (the
// report must name that element), a case declared unsupported; the comparison rules on the worked
// examples of spec/conformance.md; and the CLI's exit codes (0 pass, 1 a failed check, 2 bad input).
// The candidate is our CPU backend through `conformance run` on a few cases, edited by hand.

import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { checkSuite, type Report } from '../cli/conformance/check.ts';
import { compareTensor } from '../cli/conformance/compare.ts';
import { exportSuite } from '../cli/conformance/export.ts';
import { defaultTolerances } from '../cli/conformance/format.ts';
import { formatReport, reportJson } from '../cli/conformance/report.ts';
import { runSuite } from '../cli/conformance/run-backend.ts';
import { readSafetensors, writeSafetensorsAtomic } from '../src/safetensors.ts';
import { expectUserError, inPool, runCliAsync } from './helpers/cli.ts';

const CASES = 'model_l2_tied,add_odd,matmul_nn_odd,gelu_randn,layernorm_odd';
let dir = '';
let suite = '';
let good = '';

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tf-conformance-check-'));
  suite = join(dir, 'suite');
  good = join(dir, 'cpu');
  await exportSuite(suite, { seed: 7, command: 'test', version: 'test', only: CASES });
  await runSuite(suite, good, 'cpu');
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const tol = defaultTolerances()['reference-f32'];
const caseOf = (r: Report, name: string) => r.cases.find((c) => c.case === name)!;

/** A copy of the good candidate, edited by `edit(folder)`. */
function variant(name: string, edit: (d: string) => void): string {
  const d = join(dir, name);
  cpSync(good, d, { recursive: true });
  edit(d);
  return d;
}

function rewrite(d: string, c: string, f: (t: Map<string, { shape: number[]; data: Float32Array }>) => void): void {
  const path = join(d, c, 'outputs.safetensors');
  const t = new Map([...readSafetensors(path)].map(([n, x]) => [n, { shape: x.shape, data: x.data as Float32Array }]));
  f(t);
  writeSafetensorsAtomic(path, t);
}

describe('comparison rules (the worked examples of spec/conformance.md)', () => {
  test('values: |x − ref| ≤ atol + rtol·|ref|', () => {
    const r = compareTensor([2.0003, -0.5], [2, -0.5], 'values', tol); // bound at 2: 1e-5 + 2e-4 = 2.1e-4
    expect(r.worst).toBe(0);
    expect(r.ratio).toBeCloseTo(3e-4 / 2.1e-4, 3);
    expect(r.nmse).toBeCloseTo(9e-8 / 4.25, 12);
  });
  test('grads: |g − ref| ≤ rel·|ref| + maxRel·max|ref|; an all-zero reference falls back to the values atol', () => {
    const r = compareTensor([10.005, 1e-5], [10, 0], 'grads', tol); // bounds 1e-2 + 1e-5 and 0 + 1e-5
    expect(r.ratio).toBeCloseTo(1, 6);
    expect(compareTensor([0, 5e-6], [0, 0], 'grads', tol).ratio).toBeCloseTo(0.5, 6);
    expect(compareTensor([NaN], [1], 'values', tol).ratio).toBe(Infinity);
    expect(compareTensor([0], [0], 'grads', tol).ratio).toBe(0);
  });
});

describe('check reports what is wrong, case by case', () => {
  test('our CPU backend passes; gelu is declared unsupported (no kernel) and reported as skipped', () => {
    const r = checkSuite(suite, good, 'reference-f32');
    expect(r.summary).toEqual({ cases: 5, passed: 4, failed: 0, skipped: 1 });
    expect(caseOf(r, 'gelu_randn').status).toBe('skipped');
    expect(r.cases.every((c) => c.status === 'skipped' || c.worst!.ratio === 0)).toBe(true);
  });

  test('a missing case, a missing tensor, a file that is not safetensors and a wrong shape are each one line', () => {
    const bad = variant('bad', (d) => {
      rmSync(join(d, 'matmul_nn_odd'), { recursive: true });
      writeFileSync(join(d, 'add_odd', 'outputs.safetensors'), 'not a safetensors file at all');
      rewrite(d, 'model_l2_tied', (t) => {
        for (const n of [...t.keys()]) if (n.startsWith('block.') || n === 'embed' || n === 'final_norm') t.delete(n);
        t.delete('grad.sequential.2.mlp.key_param_tokens');
      });
      rewrite(d, 'layernorm_odd', (t) => t.set('grad_bias', { shape: [6, 8], data: new Float32Array(48) }));
    });
    const r = checkSuite(suite, bad, 'reference-f32');
    expect(r.summary).toEqual({ cases: 5, passed: 0, failed: 4, skipped: 1 });
    expect(caseOf(r, 'matmul_nn_odd')).toMatchObject({ status: 'missing', problems: ['no matmul_nn_odd/outputs.safetensors'] });
    const inv = caseOf(r, 'add_odd');
    expect(inv.status).toBe('invalid');
    expect(inv.problems).toHaveLength(1);
    expect(inv.problems[0]).toMatch(/outputs\.safetensors/);
    const m = caseOf(r, 'model_l2_tied');
    expect(m).toMatchObject({ status: 'fail', missing: ['grad.sequential.2.mlp.key_param_tokens'], firstDivergence: null });
    expect(caseOf(r, 'layernorm_odd').problems).toEqual(['grad_bias: shape [6,8], expected [48]']);
    const text = formatReport(r);
    expect(text).toMatch(/model_l2_tied +FAIL .* missing grad\.sequential\.2\.mlp\.key_param_tokens/);
    expect(text).toContain('no intermediates given');
    expect(text).toMatch(/add_odd +INVALID/);
    expect(text).toMatch(/matmul_nn_odd +MISSING/);
  });

  test('one element off in block 1\'s attention output: the first divergence names that block, point and index', () => {
    const off = variant('off', (d) => rewrite(d, 'model_l2_tied', (t) => {
      const a = t.get('block.1.attn')!; // (B, T, C) = (2, 7, 32)
      a.data[(1 * 7 + 3) * 32 + 5] += 0.01;
    }));
    const c = caseOf(checkSuite(suite, off, 'reference-f32'), 'model_l2_tied');
    expect(c.status).toBe('fail');
    expect(c.firstDivergence).toMatchObject({ tensor: 'block.1.attn', block: 1, point: 'attn', index: [1, 3, 5] });
    expect(c.firstDivergence!.ratio).toBeGreaterThan(10);
  });

  test('--json keeps non-finite numbers as strings', () => {
    const nan = variant('nan', (d) => rewrite(d, 'add_odd', (t) => { t.get('c')!.data[3] = NaN; }));
    const j = JSON.parse(reportJson(checkSuite(suite, nan, 'gpu-f32', 'add_odd')));
    expect(j.cases[0]).toMatchObject({ status: 'fail', worst: { tensor: 'c', ratio: 'Infinity', got: 'NaN' } });
  });
});

describe('the CLI', () => {
  test('exit 0 on a pass, 1 on a failed check, 2 on bad input (one error line)', async () => {
    const off = variant('cli-off', (d) => rewrite(d, 'add_odd', (t) => { t.get('c')!.data[0] += 1; }));
    const [pass, fail, json, noSuite, noCand, badClass, badRun, notEmpty] = await inPool([
      () => runCliAsync(['conformance', 'check', suite, good]),
      () => runCliAsync(['conformance', 'check', suite, off]),
      () => runCliAsync(['conformance', 'check', suite, off, '--json', '--class', 'gpu-f32']),
      () => runCliAsync(['conformance', 'check', join(dir, 'nowhere'), good]),
      () => runCliAsync(['conformance', 'check', suite, join(dir, 'nowhere')]),
      () => runCliAsync(['conformance', 'check', suite, good, '--class', 'fp8']),
      () => runCliAsync(['conformance', 'run', suite, join(dir, 'x'), '--backend', 'tpu']),
      () => runCliAsync(['conformance', 'export', suite.replace(/suite$/, 'cpu'), '--only', 'add_odd']),
    ].map((f) => () => f()), 3);
    expect(pass.code, pass.err).toBe(0);
    expect(pass.out).toMatch(/4\/5 passed, 0 failed, 1 skipped/);
    expect(fail.code, fail.err).toBe(1);
    expect(fail.out).toMatch(/add_odd +FAIL .*c\[0,0\] got/);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.out).summary).toEqual({ cases: 5, passed: 3, failed: 1, skipped: 1 });
    expectUserError(noSuite, /suite file .*nowhere/);
    expectUserError(noCand, /candidate folder .* does not exist/);
    expectUserError(badClass, /--class must be one of/);
    expectUserError(badRun, /unknown backend/);
    expectUserError(notEmpty, /not a suite this tool wrote/);
  }, 300_000);
});
