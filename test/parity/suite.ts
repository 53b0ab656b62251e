// The one parity suite every backend runs: each golden op (forward and backward), each tiny
// model (logits, loss, every gradient), and three training steps against the CPU reference.
// Tolerances come from golden/manifest.json: 'reference' for cpu, 'gpu_f32' otherwise. Every
// fixture op has a runner (the table is typed by FixtureOp); a fixture whose op FIXTURE_OPS
// does not know fails, and an op without a kernel (gelu) is a skip that prints why.

import { describe, expect, test } from 'vitest';
import type { Backend, Handle } from '../../src/backend.ts';
import { checkGrads, checkValues } from '../helpers/compare.ts';
import { fixtureOp, loadFixture, loadManifest, need, type OpFixture, type Tolerance } from '../helpers/golden.ts';
import { toleranceClass, type Loaded } from '../helpers/backends.ts';
import { hostModel, modelCheck } from './model-check.ts';
import { OP_RUNNERS, type BackendRunner, type NoKernel, type Result } from './op-runners.ts';
import { runSteps, type StepRecord } from './train-steps.ts';

const manifest = loadManifest();

export function defineParitySuite(loaded: Loaded, opts: { cpuReference?: () => Promise<Backend<Handle>> } = {}) {
  const { name, backend, reason } = loaded;
  const tolClass = toleranceClass(name);
  const tol = manifest.tolerances[tolClass];
  describe.skipIf(!backend)(`parity on ${name}${backend ? '' : ` (skipped: ${reason})`}`, () => {
    const be = backend!;
    describe('golden ops', () => {
      for (const op of manifest.ops) defineOpTest(be, op, name === 'cpu', tol);
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

/** One golden op: through the backend, or (an op with no kernel) the CPU reference's function
 *  on the cpu backend and a skip with the reason elsewhere. An unknown op fails. */
function defineOpTest(be: Backend<Handle>, op: OpFixture, isCpu: boolean, tol: Tolerance): void {
  let runner: BackendRunner | NoKernel;
  try {
    runner = OP_RUNNERS[fixtureOp(op)];
  } catch (e) {
    test(op.name, () => {
      throw e;
    });
    return;
  }
  if (typeof runner === 'function') {
    const run = runner;
    test(op.name, async () => {
      const fx = loadFixture(op.file);
      expect(await mismatches(fx, await hostOf(be, await run(be, fx, op.attrs)), tol)).toEqual([]);
    });
  } else if (isCpu) {
    const { reference } = runner;
    test(`${op.name} (the CPU reference function: ${runner.noKernel})`, () => {
      const fx = loadFixture(op.file);
      expect(mismatches(fx, reference(fx, op.attrs), tol)).toEqual([]);
    });
  } else {
    test.skip(`${op.name} (skipped: ${runner.noKernel})`, () => {});
  }
}

async function hostOf(be: Backend<Handle>, r: Result): Promise<Record<string, Float32Array>> {
  const out: Record<string, Float32Array> = {};
  for (const [k, t] of Object.entries(r)) out[k] = await be.read(t);
  return out;
}

/** Each output against the fixture tensor of its name: grad_* as gradients, else values. */
function mismatches(fx: ReturnType<typeof loadFixture>, got: Record<string, Float32Array>, tol: Tolerance): string[] {
  const errors: string[] = [];
  for (const [out, host] of Object.entries(got)) {
    const want = need(fx, out).data;
    const e = out.startsWith('grad_') ? checkGrads(out, host, want, tol.grads) : checkValues(out, host, want, tol.values);
    if (e) errors.push(e);
  }
  return errors;
}
