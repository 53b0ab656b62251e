// Our own backends as conformance candidates, judged exactly as another implementation would be:
// `conformance run` (cli/conformance/run-backend.ts reads the suite through the documented format)
// writes each backend's outputs, `conformance check` judges them, the CPU reference at
// reference-f32 and every accelerator at gpu-f32. GELU has no backend kernel, so its cases must
// be the only ones declared unsupported. Unavailable backends skip with the reason printed.
// NOTE: the GPU.js modes run a subset (every op kind, a model and a growth case): GPU.js compiles
// a kernel per shape, and the whole suite takes minutes on a software renderer.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { checkSuite } from '../cli/conformance/check.ts';
import { exportSuite } from '../cli/conformance/export.ts';
import { onlyMatcher, readSuiteJson } from '../cli/conformance/format.ts';
import { runSuite } from '../cli/conformance/run-backend.ts';
import { BACKEND_NAMES, tryLoad } from './helpers/backends.ts';

const GPUJS_SUBSET = 'matmul_nn_odd,matmul_batched_shared_b,add_odd,gelu_randn,norm_act_*_odd,pattention_*_grown,layernorm_odd,'
  + 'layernorm_nonparam_odd,rotary_partial,permute0213_odd,causal_softmax_odd,attention_odd,embedding_odd,cross_entropy_v67,'
  + 'sum_squares_three,adamw_step4_grad_scale,model_l2_tied,grow_layer_l2_tied';

let dir = '';
let suite = '';
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tf-conformance-backends-'));
  suite = join(dir, 'suite');
  await exportSuite(suite, { seed: 1234, command: 'test', version: 'test' });
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const loaded = await Promise.all(BACKEND_NAMES.map((n) => tryLoad(n)));

describe.each(loaded.map((l) => [l.name, l] as const))('conformance on %s', (name, l) => {
  const only = name.startsWith('gpujs-') ? GPUJS_SUBSET : undefined;
  if (only && l.backend) console.warn(`[subset] conformance on ${name}: ${GPUJS_SUBSET.split(',').length} case patterns (GPU.js compiles a kernel per shape)`);
  test.skipIf(!l.backend)(`run + check${l.backend ? '' : ` (skipped: ${l.reason})`}`, async () => {
    const out = join(dir, name);
    try {
      await runSuite(suite, out, l.backend!, only);
    } finally {
      await l.backend!.destroy();
    }
    const cls = name === 'cpu' ? 'reference-f32' : 'gpu-f32';
    const r = checkSuite(suite, out, cls, only);
    const bad = r.cases.filter((c) => c.status !== 'pass' && c.status !== 'skipped')
      .map((c) => `${c.case}: ${c.status} ${JSON.stringify(c.firstDivergence)} ${c.missing.join(' ')} ${c.problems.join(' ')}`);
    expect(bad).toEqual([]);
    const gelu = readSuiteJson(suite).cases.map((c) => c.name).filter((n) => n.startsWith('gelu_') && onlyMatcher(only)(n));
    expect(r.cases.filter((c) => c.status === 'skipped').map((c) => c.case)).toEqual(gelu);
    expect(r.summary.passed).toBe(r.summary.cases - gelu.length);
    if (name === 'cpu') expect(Math.max(...r.cases.map((c) => c.worst?.ratio ?? 0))).toBe(0);
    console.log(`conformance ${name} (${cls}): ${r.summary.passed}/${r.summary.cases} passed; worst ${Math.max(...r.cases.map((c) => c.worst?.ratio ?? 0)).toFixed(4)} of the tolerance`);
  }, 600_000);
});
