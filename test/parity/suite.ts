// The one parity suite every backend runs: each golden op (forward and backward), each tiny
// model (logits, loss, every gradient), and three training steps against the CPU reference.
// Tolerances come from golden/manifest.json: 'reference' for cpu, 'gpu_f32' otherwise.

import { describe, expect, test } from 'vitest';
import type { Backend, Handle } from '../../src/backend.ts';
import { checkGrads, checkValues } from '../helpers/compare.ts';
import { loadFixture, loadManifest, need } from '../helpers/golden.ts';
import { toleranceClass, type Loaded } from '../helpers/backends.ts';
import { hostModel, modelCheck } from './model-check.ts';
import { OP_RUNNERS } from './op-runners.ts';
import { runSteps, type StepRecord } from './train-steps.ts';

const manifest = loadManifest();

export function defineParitySuite(loaded: Loaded, opts: { cpuReference?: () => Promise<Backend<Handle>> } = {}) {
  const { name, backend, reason } = loaded;
  const tolClass = toleranceClass(name);
  const tol = manifest.tolerances[tolClass];
  describe.skipIf(!backend)(`parity on ${name}${backend ? '' : ` (skipped: ${reason})`}`, () => {
    const be = backend!;
    describe('golden ops', () => {
      test.each(manifest.ops.filter((o) => o.op in OP_RUNNERS).map((o) => [o.name, o] as const))('%s', async (_n, op) => {
        const fx = loadFixture(op.file);
        const got = await OP_RUNNERS[op.op](be, fx, op.attrs);
        const errors: string[] = [];
        for (const [out, t] of Object.entries(got)) {
          const want = need(fx, out).data;
          const host = await be.read(t);
          const e = out.startsWith('grad_') ? checkGrads(out, host, want, tol.grads) : checkValues(out, host, want, tol.values);
          if (e) errors.push(e);
        }
        expect(errors).toEqual([]);
      });
    });
    describe('golden models', () => {
      test.each(manifest.models.map((m) => [m.name, m] as const))('%s: logits, loss, every gradient', async (_n, m) => {
        expect(await modelCheck(be, m, tolClass)).toEqual([]);
      });
    });
    describe('golden training steps', () => {
      test.each(manifest.train.map((t) => [t.name, t] as const))('%s: three AdamW steps', async (_n, tr) => {
        const m = manifest.models.find((x) => x.name === tr.model)!;
        const fx = loadFixture(m.file);
        const want = loadFixture(tr.file);
        const { config, weights } = hostModel(fx, m);
        const rec: StepRecord = await runSteps(be, config, weights, fx, tr.lrs);
        const errors: string[] = [];
        const push = (e: string | null) => e && errors.push(e);
        push(checkValues('losses', rec.losses, need(want, 'losses').data, tol.values));
        for (const [p, data] of rec.params) push(checkGrads(`final ${p}`, data, need(want, `final.${p}`).data, tol.grads));
        expect(errors).toEqual([]);
      });
    });
    if (opts.cpuReference) {
      test('three training steps match the CPU backend', async () => {
        const cpu = await opts.cpuReference!();
        const m = manifest.models[0];
        const fx = loadFixture(m.file);
        const { config, weights } = hostModel(fx, m);
        const lrs = [1e-2, 1e-2, 1e-2];
        const mine = await runSteps(be, config, weights, fx, lrs);
        const ref = await runSteps(cpu, config, weights, fx, lrs);
        expect(checkValues('losses', mine.losses, ref.losses, tol.values)).toBeNull();
      });
    }
  });
}
