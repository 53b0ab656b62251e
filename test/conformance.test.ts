// The conformance kit end to end with an implementation written elsewhere: export the suite,
// run the Python adapter (torch float64, conformance/python/) on it, check it. It must pass the
// whole suite at reference-f32, which is also the proof that the exported expected values (the
// CPU reference) agree with PyTorch float64; each planted bug (--mutate) must fail, with the
// report's first divergence at the right block and point. Plus what the suite itself promises:
// zero growth leaves the outputs bit-identical, the classes come from golden/manifest.json; and
// `export --config` makes a suite for a user's YAML that the adapter passes too.
// Needs Debian's python3 with torch for the adapter parts; without it they skip with the reason,
// unless TOKENFORMER_REQUIRE names 'torch'.

import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { checkSuite, type CaseReport, type Report } from '../cli/conformance/check.ts';
import { exportSuite } from '../cli/conformance/export.ts';
import { readCaseJson, readSuiteJson } from '../cli/conformance/format.ts';
import { formatReport } from '../cli/conformance/report.ts';
import { readSafetensors } from '../src/safetensors.ts';
import { required } from './helpers/backends.ts';
import { runCliAsync } from './helpers/cli.ts';

const PY = '/usr/bin/python3';
const ADAPTER = join(import.meta.dirname, '..', 'conformance', 'python', 'adapter.py');
const probe = spawnSync(PY, ['-c', 'import torch, numpy'], { encoding: 'utf8' });
const noTorch = probe.error ? `${PY} not found` : probe.status !== 0 ? `${PY} has no torch/numpy` : '';
const skipTorch = noTorch !== '' && !required('torch');
if (skipTorch) console.warn(`[skip] conformance python adapter: ${noTorch}`);

let dir = '';
let suite = '';

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tf-conformance-'));
  suite = join(dir, 'suite');
  await exportSuite(suite, { seed: 1234, command: 'test', version: 'test' });
}, 600_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function adapter(out: string, ...args: string[]): Promise<{ code: number | null; err: string }> {
  return adapterOn(suite, out, ...args);
}

function adapterOn(s: string, out: string, ...args: string[]): Promise<{ code: number | null; err: string }> {
  return new Promise((done, fail) => {
    const child = spawn(PY, [ADAPTER, s, join(dir, out), '--quiet', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; });
    child.on('error', fail);
    child.on('close', (code) => done({ code, err }));
  });
}

const tensors = (c: string) => readSafetensors(join(suite, c, 'expected.safetensors'));
const values = (c: string, name: string) => Array.from(tensors(c).get(name)!.data);
const caseOf = (r: Report, name: string): CaseReport => r.cases.find((c) => c.case === name)!;

describe('the exported suite', () => {
  test('suite.json lists every case folder; reference-f32 and gpu-f32 are golden/manifest.json\'s classes', () => {
    const s = readSuiteJson(suite);
    expect(readdirSync(suite).filter((f) => f !== 'suite.json').sort()).toEqual(s.cases.map((c) => c.name).sort());
    const m = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'golden', 'manifest.json'), 'utf8'));
    expect(s.tolerances['reference-f32']).toEqual({ values: m.tolerances.reference.values, grads: m.tolerances.reference.grads });
    expect(s.tolerances['gpu-f32']).toEqual({ values: m.tolerances.gpu_f32.values, grads: m.tolerances.gpu_f32.grads });
    expect(s.cases.length).toBeGreaterThan(60);
    for (const kind of ['op', 'model', 'train', 'grow']) expect(s.cases.some((c) => c.kind === kind)).toBe(true);
  });

  test('every tensor case.json names is in its file with that dtype and shape, in the trace order of spec/conformance.md', () => {
    for (const { name } of readSuiteJson(suite).cases) {
      const c = readCaseJson(suite, name);
      const files = { inputs: readSafetensors(join(suite, name, 'inputs.safetensors')), expected: tensors(name) };
      for (const t of c.tensors) {
        const got = (t.rule ? files.expected : files.inputs).get(t.name);
        expect({ name, tensor: t.name, dtype: got?.dtype, shape: got?.shape }).toEqual({ name, tensor: t.name, dtype: t.dtype, shape: t.shape });
      }
    }
    const points = readCaseJson(suite, 'model_l2_tied').tensors.filter((t) => t.role === 'intermediate').map((t) => t.name);
    const block = (i: number) => ['h', 'q', 'k', 'v', 'q_rot', 'k_rot', 'attn', 'proj', 'x1', 'ffn_in', 'ffn_out', 'out'].map((p) => `block.${i}.${p}`);
    expect(points).toEqual(['embed', ...block(0), ...block(1), 'final_norm']);
  });

  test('zero growth: logits and loss bit-identical to the base model, old gradients within 1e-6, new keys learn, new values get 0', () => {
    expect(values('grow_zero_l2_tied', 'logits')).toEqual(values('model_l2_tied', 'logits'));
    expect(values('grow_zero_l2_tied', 'loss')).toEqual(values('model_l2_tied', 'loss'));
    expect(values('grow_layer_l2_tied', 'logits')).toEqual(values('model_l2_tied', 'logits'));
    const c = readCaseJson(suite, 'grow_layer_l2_tied');
    expect(c.growth!.layers).toEqual([{ prefix: 'sequential.3.mlp', from: 40, to: 60, normN: 40 }]);
    const grown = tensors('grow_layer_l2_tied');
    const dK = grown.get('grad.sequential.3.mlp.key_param_tokens')!.data;
    const dV = grown.get('grad.sequential.3.mlp.value_param_tokens')!.data;
    const old = tensors('model_l2_tied').get('grad.sequential.3.mlp.key_param_tokens')!.data;
    const C = 32;
    for (let i = 0; i < 40 * C; i++) expect(Math.abs(dK[i] - old[i])).toBeLessThanOrEqual(1e-6 * Math.abs(old[i]));
    expect(Math.max(...Array.from(dK.subarray(40 * C)).map(Math.abs))).toBeGreaterThan(1e-4);
    expect(Array.from(dV.subarray(40 * C)).every((x) => x === 0)).toBe(true);
  });

  test('a train case starts from its model case: the first loss is the model\'s loss; clipping is active', () => {
    expect(values('train_l2_tied', 'step1.loss')).toEqual(values('model_l2_tied', 'loss'));
    expect(values('train_l2_tied', 'step1.grad_norm')[0]).toBeGreaterThan(1);
    expect(values('train_l2_tied', 'step2.loss')[0]).toBeLessThan(values('train_l2_tied', 'step1.loss')[0]);
  });

  test('export refuses a non-empty folder that is not a suite, and replaces a suite it wrote', async () => {
    const other = join(dir, 'other');
    mkdirSync(other);
    writeFileSync(join(other, 'notes.txt'), 'mine');
    await expect(exportSuite(other, { seed: 1, command: 't', version: 't', only: 'add_odd' })).rejects.toThrow(/not a suite this tool wrote/);
    expect(readdirSync(other)).toEqual(['notes.txt']);
    const again = join(dir, 'again');
    await exportSuite(again, { seed: 1, command: 't', version: 't', only: 'add_odd,matmul_nn_odd' });
    await exportSuite(again, { seed: 1, command: 't', version: 't', only: 'gelu_*' });
    expect(readdirSync(again).sort()).toEqual(['gelu_randn', 'gelu_sweep', 'suite.json']);
  });
});

/** planted bug → a case it breaks, and where the first divergence must be; a control case it leaves passing. */
const MUTATIONS: [string, string, number | null, string, string | null][] = [
  ['drop-sqrt-n', 'model_l2_tied', 0, 'q', null],
  ['tanh-gelu', 'model_l2_tied', 0, 'q', 'model_softmax_tied'],
  ['rotary-wrong-half', 'model_l2_tied', 0, 'q_rot', 'model_seq1_batch3'],
  ['eps-outside-sqrt', 'model_l2_tied', 0, 'h', null],
  ['causal-off-by-one', 'model_l2_tied', 0, 'attn', 'model_seq1_batch3'],
  ['softmax-no-n', 'model_softmax_tied', 0, 'q', 'model_l2_tied'],
  ['attn-scale-d', 'model_l2_tied', 0, 'attn', null],
  ['tied-head-transposed', 'model_l2_tied', null, 'logits', 'model_odd_l2_untied'],
  ['norm-n-current', 'grow_layer_l2_tied', 1, 'ffn_out', 'model_l2_tied'],
];

describe.skipIf(skipTorch)('the Python adapter (torch float64)', () => {
  const reports = new Map<string, Report>();
  beforeAll(async () => {
    expect(noTorch).toBe('');
    const only = [...new Set(MUTATIONS.flatMap(([, c, , , control]) => (control ? [c, control] : [c])))].join(',');
    const [clean, muts] = await Promise.all([adapter('py'), adapter('mut', '--each-mutation', '--only', only)]);
    expect(clean.code, clean.err).toBe(0);
    expect(muts.code, muts.err).toBe(0);
    reports.set('clean', checkSuite(suite, join(dir, 'py'), 'reference-f32'));
    for (const [m] of MUTATIONS) reports.set(m, checkSuite(suite, join(dir, 'mut', m), 'reference-f32', only));
  }, 600_000);

  test('passes every case of the suite at reference-f32 (the CPU reference agrees with torch float64)', () => {
    const r = reports.get('clean')!;
    const bad = r.cases.filter((c) => c.status !== 'pass').map((c) => `${c.case}: ${c.status} ${JSON.stringify(c.firstDivergence)} ${c.missing}`);
    expect(bad).toEqual([]);
    expect(r.summary).toEqual({ cases: readSuiteJson(suite).cases.length, passed: r.summary.cases, failed: 0, skipped: 0 });
    expect(Math.max(...r.cases.map((c) => c.worst?.ratio ?? 0))).toBeLessThan(0.5);
  });

  test.each(MUTATIONS)('--mutate %s fails %s, first divergence at block %s · %s', (m, c, block, point, control) => {
    const r = reports.get(m)!;
    const hit = caseOf(r, c);
    expect(hit.status).toBe('fail');
    expect(hit.firstDivergence).toMatchObject({ block, point });
    expect(hit.firstDivergence!.ratio).toBeGreaterThan(1);
    const where = block === null ? `${point}[` : `block ${block} · ${point}: block.${block}.${point}[`;
    expect(formatReport(r).split('\n').find((l) => l.startsWith(`${c} `))).toContain(where);
    if (control) expect(caseOf(r, control).status).toBe('pass');
  });

  test('export --config (an official-style YAML) makes the model, train and grow cases for it, and the adapter passes them', async () => {
    const cfgSuite = join(dir, 'config-suite');
    const yml = join(import.meta.dirname, '..', 'golden', 'models', 'tiny_gelu_l2_untied.yml');
    const e = await runCliAsync(['conformance', 'export', cfgSuite, '--config', yml, '--seed', '5', '--batch', '1', '--seq', '5', '--quiet']);
    expect(e.code, e.err).toBe(0);
    const s = readSuiteJson(cfgSuite);
    expect(s.cases.map((c) => c.name)).toEqual(['model_tiny_gelu_l2_untied', 'train_tiny_gelu_l2_untied', 'grow_zero_tiny_gelu_l2_untied']);
    expect(readCaseJson(cfgSuite, 'model_tiny_gelu_l2_untied')).toMatchObject({ batch: 1, seq: 5, config: { hidden_size: 32, qkv_slot_num: 16, no_weight_tying: true } });
    const r = await adapterOn(cfgSuite, 'config-py');
    expect(r.code, r.err).toBe(0);
    expect(checkSuite(cfgSuite, join(dir, 'config-py'), 'reference-f32').summary).toEqual({ cases: 3, passed: 3, failed: 0, skipped: 0 });
  }, 300_000);
});
