// Gradient accumulation in the Trainer (spec/training.md, src/train/trainer.ts): an update
// over K micro-batches applies the MEAN of their gradients. The mean is computed here
// independently (forward/backward of each micro-batch with dLoss = 1, averaged in float64),
// and the trainer's recorded gradNorm, loss, parameters and Adam moments are checked against
// it and against an AdamW written out here (β 0.9/0.95, eps 1e-8, decay 0.1 except the
// final norm, clip 1.0). Omits: the schedule (lr is held constant) and checkpoints.

import { describe, expect, it } from 'vitest';
import { createCpuBackend } from '../../backends/cpu.ts';
import type { ModelConfig } from '../../src/config.ts';
import { TokenFormer } from '../../src/model.ts';
import { initParams } from '../../src/params.ts';
import { Rng } from '../../src/rng.ts';
import { sampleBatch } from '../../src/train/data.ts';
import { Trainer, dataSeed, type TrainArgs } from '../../src/train/trainer.ts';
import { tinyArgs, tinyConfig, tinyCorpus } from './helpers.ts';

const be = createCpuBackend();
const corpus = tinyCorpus();
const LR = 1e-2;
const B = 2, T = 8;

type Host = Map<string, Float64Array>;

/** The mean over the next K micro-batches of `data` of each parameter's gradient, and the mean loss. */
async function meanGrad(c: ModelConfig, w: Map<string, Float32Array>, data: Rng, K: number): Promise<{ g: Host; loss: number }> {
  const m = TokenFormer.fromHost(be, c, w);
  const g: Host = new Map();
  let loss = 0;
  for (let k = 0; k < K; k++) {
    const b = sampleBatch(corpus.train, B, T, data);
    const f = m.forward(be.uploadInt(b.ids, [B, T]), be.uploadInt(b.targets, [B, T]));
    loss += (await be.read(f.loss!))[0] / K;
    for (const [name, t] of m.backward(f, 1)) {
      const d = await be.read(t);
      if (!g.has(name)) g.set(name, new Float64Array(d.length));
      const acc = g.get(name)!;
      d.forEach((x, i) => (acc[i] += x / K));
    }
  }
  m.dispose();
  return { g, loss };
}

const normOf = (g: Host) => Math.sqrt([...g.values()].reduce((s, d) => s + d.reduce((a, x) => a + x * x, 0), 0));

/** One AdamW update in float64 (torch.optim.AdamW after clip_grad_norm_(1.0)); mutates p, m, v. */
function adamw(c: ModelConfig, p: Host, m: Host, v: Host, g: Host, step: number): void {
  const [b1, b2, eps, wd] = [0.9, 0.95, 1e-8, 0.1];
  const coef = Math.min(1, 1.0 / (normOf(g) + 1e-6));
  const noDecay = new Set([`sequential.${c.numLayers + 3}.norm.weight`, `sequential.${c.numLayers + 3}.norm.bias`]);
  for (const [name, gr] of g) {
    const [pp, mm, vv] = [p.get(name)!, m.get(name)!, v.get(name)!];
    const decay = noDecay.has(name) ? 1 : 1 - LR * wd;
    for (let i = 0; i < gr.length; i++) {
      const gi = coef * gr[i];
      mm[i] = b1 * mm[i] + (1 - b1) * gi;
      vv[i] = b2 * vv[i] + (1 - b2) * gi * gi;
      pp[i] = pp[i] * decay - (LR * (mm[i] / (1 - b1 ** step))) / (Math.sqrt(vv[i] / (1 - b2 ** step)) + eps);
    }
  }
}

/** max |got − want| over a tensor, judged against tol·max|want| + atol. */
function expectTensor(got: Float32Array, want: Float64Array, rtol: number, atol: number, what: string): void {
  let scale = 0, err = 0;
  want.forEach((x, i) => {
    scale = Math.max(scale, Math.abs(x));
    err = Math.max(err, Math.abs(got[i] - x));
  });
  if (!(err <= rtol * scale + atol)) expect.fail(`${what}: max error ${err} (scale ${scale})`);
}

function args(accum: number, steps: number): TrainArgs {
  return tinyArgs({ accum, steps, batch: B, seq: T, lr: LR, minLr: LR, warmup: 0, evalEvery: 0, saveEvery: 0, seed: 31 });
}

describe('gradient accumulation', () => {
  it('gradNorm is √Σg² of the MEAN micro-batch gradient, loss the mean loss (K = 3)', async () => {
    const c = tinyConfig();
    const w = initParams(c, new Rng(4));
    const t = Trainer.fresh(be, c, w, args(3, 1), corpus);
    const p = await t.trainStep();
    const want = await meanGrad(c, w, new Rng(dataSeed(31)), 3);
    expect(Math.abs(p.gradNorm! - normOf(want.g))).toBeLessThanOrEqual(1e-5 * normOf(want.g));
    expect(Math.abs(p.loss! - want.loss)).toBeLessThanOrEqual(1e-6 * want.loss);
    t.dispose();
  });

  it('below the clip threshold (0.5 < ‖ḡ‖ < 1) two updates equal AdamW on the mean gradient (K = 2)', async () => {
    const c = tinyConfig();
    const w = initParams(c, new Rng(4));
    // The final-norm weight scales the head's gradient: 0.35 puts ‖ḡ‖ between 0.5 and 1, so
    // the mean is not clipped while the sum (2‖ḡ‖ > 1) would be: the update tells them apart.
    w.get('sequential.4.norm.weight')!.fill(0.35);
    w.get('sequential.4.norm.bias')!.forEach((_, i, d) => (d[i] = 0.01 * (i - 8)));
    const t = Trainer.fresh(be, c, w, args(2, 2), corpus);
    const data = new Rng(dataSeed(31));
    const p: Host = new Map([...w].map(([n, d]) => [n, Float64Array.from(d)]));
    const m: Host = new Map([...w].map(([n, d]) => [n, new Float64Array(d.length)]));
    const v: Host = new Map([...w].map(([n, d]) => [n, new Float64Array(d.length)]));
    let host = w;
    for (const step of [1, 2]) {
      const g = await meanGrad(c, host, data, 2);
      if (step === 1) {
        expect(normOf(g.g)).toBeGreaterThan(0.5);
        expect(normOf(g.g)).toBeLessThan(1);
      }
      // The update is applied to the trainer's own weights (its gradients were taken there).
      for (const [n, d] of host) p.set(n, Float64Array.from(d));
      adamw(c, p, m, v, g.g, step);
      const point = await t.trainStep();
      expect(point.lr).toBe(LR);
      expect(Math.abs(point.gradNorm! - normOf(g.g))).toBeLessThanOrEqual(1e-5 * normOf(g.g));
      host = await t.model.toHost();
      for (const [n, want] of p) {
        expectTensor(host.get(n)!, want, 1e-6, 1e-4 * LR, `step ${step} param ${n}`);
        expectTensor(await be.read(t.opt.m.get(n)!), m.get(n)!, 1e-5, 1e-12, `step ${step} m.${n}`);
        expectTensor(await be.read(t.opt.v.get(n)!), v.get(n)!, 1e-5, 1e-16, `step ${step} v.${n}`);
      }
    }
    t.dispose();
  });
});
