// The training loop on the CPU reference: loss goes down, a run stopped and resumed from its
// checkpoint has exactly the same loss curve as an uninterrupted one, and a run grown
// mid-training keeps its function, its old rows' optimizer state, and learns on.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createCpuBackend } from '../../backends/cpu.ts';
import { loadCheckpoint } from '../../src/train/checkpoint.ts';
import { Trainer } from '../../src/train/trainer.ts';
import { growModel } from '../../src/grow.ts';
import { initParams } from '../../src/params.ts';
import { Rng } from '../../src/rng.ts';
import { sampleBatch } from '../../src/train/data.ts';
import { tinyArgs, tinyConfig, tinyCorpus } from './helpers.ts';

const be = createCpuBackend();
const corpus = tinyCorpus();

describe('Trainer', () => {
  it('lowers the training loss', async () => {
    const t = Trainer.fresh(be, tinyConfig(), null, tinyArgs({ steps: 40, evalEvery: 40, lr: 1e-2, minLr: 1e-3 }), corpus);
    await t.run();
    const h = t.state.history;
    expect(h[0].valLoss!).toBeGreaterThan(5); // ≈ ln 256 at init
    expect(h[40].valLoss!).toBeLessThan(h[0].valLoss! - 1.5);
    expect(h[40].tokens).toBe(40 * 2 * 16);
    expect(h[40].flops).toBeGreaterThan(0);
  });

  it('resumes exactly: the loss curve equals the uninterrupted run (with accumulation)', async () => {
    const args = tinyArgs({ accum: 2 });
    const dirA = join(mkdtempSync(join(tmpdir(), 'tf-res-')), 'a');
    const dirB = join(mkdtempSync(join(tmpdir(), 'tf-res-')), 'b');
    const full = Trainer.fresh(be, tinyConfig(), null, args, corpus);
    await full.run({}, dirA);
    const first = Trainer.fresh(be, tinyConfig(), null, args, corpus);
    await first.run({}, dirB, 3); // "killed" after the step-3 checkpoint
    const ck = loadCheckpoint(dirB);
    expect(ck.state.step).toBe(3);
    const resumed = Trainer.resume(be, ck, corpus);
    await resumed.run({}, dirB);
    expect(resumed.state.history).toEqual(full.state.history); // bit-identical losses, lr, norms
    const wa = loadCheckpoint(dirA).weights;
    const wb = loadCheckpoint(dirB).weights;
    for (const [name, t] of wa) expect(Array.from(wb.get(name)!.data)).toEqual(Array.from(t.data));
  });

  it('grows mid-training: the next loss equals the old model\'s on that batch, old rows train as without growth, then learns', async () => {
    // The final-norm weight at 0.2 keeps ‖g‖ below the clip threshold in both runs (asserted
    // below), so the old rows' update does not depend on the new keys' share of the norm.
    const c = tinyConfig();
    const w = initParams(c, new Rng(1234));
    w.get('sequential.4.norm.weight')!.fill(0.2);
    const args = tinyArgs({ steps: 4, evalEvery: 0, saveEvery: 0 });
    const t = Trainer.fresh(be, c, w, args, corpus);
    const u = Trainer.fresh(be, c, w, args, corpus); // the same run, never grown
    await t.run();
    await u.run();
    const before = await t.evaluate();
    // The batch of the next update: the data cursor is the saved rng state.
    const next = sampleBatch(corpus.train, args.batch, args.seq, Rng.fromState(t.state.dataRng));
    const f = t.model.forward(be.uploadInt(next.ids, [next.batch, next.seq]), be.uploadInt(next.targets, [next.batch, next.seq]));
    const oldLoss = (await be.read(f.loss!))[0];
    t.model.release(f);
    const oldHost = await t.model.toHost();
    const g = growModel(t.config, oldHost, { qkv: 16, proj: 16, ffn: 32 }, 'zero', new Rng(1));
    await t.grow(g.config, g.weights);
    expect(await t.evaluate()).toBe(before);
    const name = 'sequential.2.mlp.key_param_tokens';
    const m1 = await be.read(t.opt.m.get(name)!);
    expect(Array.from(m1.subarray(0, 16 * 16))).toEqual(Array.from(await be.read(u.opt.m.get(name)!)));
    expect(m1.subarray(16 * 16).every((v) => v === 0)).toBe(true);
    expect(m1.length).toBe(32 * 16);
    const pt = await t.trainStep();
    const pu = await u.trainStep();
    expect(Math.abs(pt.loss! - oldLoss)).toBeLessThanOrEqual(1e-6 * oldLoss); // zero growth kept the function
    expect(pu.loss).toBe(pt.loss);
    expect(pt.gradNorm!).toBeLessThan(1);
    expect(pu.gradNorm!).toBeLessThan(1);
    // Every old row's weight and moments after the update equal the ungrown run's: moments
    // and the step count (bias correction) were carried over.
    const [ht, hu] = [await t.model.toHost(), await u.model.toHost()];
    const [mt, mu] = [await t.opt.toHost(), await u.opt.toHost()];
    for (const [pname, ref] of hu) {
      const near = (a: Float32Array, b: Float32Array, what: string) => b.forEach((x, i) =>
        expect(Math.abs(a[i] - x), `${what}[${i}]`).toBeLessThanOrEqual(1e-6 * Math.abs(x) + 1e-12));
      near(ht.get(pname)!, ref, pname);
      near(mt.get(`m.${pname}`)!.data, mu.get(`m.${pname}`)!.data, `m.${pname}`);
      near(mt.get(`v.${pname}`)!.data, mu.get(`v.${pname}`)!.data, `v.${pname}`);
    }
    expect(ht.get(name)!.subarray(16 * 16).some((v) => v !== 0)).toBe(true); // the new keys learn
    // And it keeps learning: a new 20-update stage lowers the validation loss by a clear margin.
    const grown = await t.evaluate();
    const stage = t.continueWith(tinyArgs({ steps: 20, lr: 1e-2, minLr: 1e-3, evalEvery: 0, saveEvery: 0 }));
    await stage.run();
    expect(await stage.evaluate()).toBeLessThan(grown - 0.5);
    stage.dispose();
    u.dispose();
  });
});
