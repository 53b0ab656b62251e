// AdamW on the backend: one update against a host computation (decay, no-decay, clipping),
// accumulation = the mean gradient, moment growth, and host save/load.
import { describe, expect, it } from 'vitest';
import { createCpuBackend } from '../../backends/cpu.ts';
import { AdamW, OFFICIAL_ADAMW, accumulateGrads } from '../../src/train/optimizer.ts';
import { TokenFormer } from '../../src/model.ts';
import { initParams } from '../../src/params.ts';
import { Rng } from '../../src/rng.ts';
import { tinyConfig } from './helpers.ts';

const be = createCpuBackend();

/** torch.optim.AdamW semantics with the global clip, in float64 on the host. */
function hostAdamW(p: number[], g: number[], lr: number, wd: number, coef: number): number[] {
  const { beta1, beta2, eps } = OFFICIAL_ADAMW;
  return p.map((x, i) => {
    const gi = g[i] * coef;
    const m = (1 - beta1) * gi;
    const v = (1 - beta2) * gi * gi;
    return x * (1 - lr * wd) - (lr * (m / (1 - beta1))) / (Math.sqrt(v / (1 - beta2)) + eps);
  });
}

describe('AdamW', () => {
  it('one update: decay except noDecay params, global-norm clipping at 1.0', async () => {
    const specs = [{ name: 'a', shape: [3], noDecay: false }, { name: 'b', shape: [2], noDecay: true }];
    const pa = [0.5, -1, 2];
    const pb = [1, 1];
    const ga = [3, 0, -4];
    const gb = [0, 12]; // ‖g‖ = 13 → coef = 1/(13 + 1e-6)
    const params = new Map([['a', be.upload(Float32Array.from(pa), [3])], ['b', be.upload(Float32Array.from(pb), [2])]]);
    const grads = new Map([['a', be.upload(Float32Array.from(ga), [3])], ['b', be.upload(Float32Array.from(gb), [2])]]);
    const opt = new AdamW(be, specs);
    const normSq = opt.update(params, grads, 0.01);
    expect((await be.read(normSq))[0]).toBe(169);
    const coef = 1 / (13 + 1e-6);
    const ea = hostAdamW(pa, ga, 0.01, 0.1, coef);
    const eb = hostAdamW(pb, gb, 0.01, 0, coef);
    const ra = await be.read(params.get('a')!);
    const rb = await be.read(params.get('b')!);
    ea.forEach((x, i) => expect(ra[i]).toBeCloseTo(x, 6));
    eb.forEach((x, i) => expect(rb[i]).toBeCloseTo(x, 6));
    expect(rb[0]).toBe(1); // zero gradient, no decay: untouched
    expect(opt.step).toBe(1);
  });

  it('accumulating micro-batch gradients with dLoss = 1/accum gives the full-batch gradient', async () => {
    const c = tinyConfig();
    const model = TokenFormer.fromHost(be, c, initParams(c, new Rng(3)));
    const rng = new Rng(9);
    const ids = Int32Array.from({ length: 2 * 8 }, () => rng.int(256));
    const tg = Int32Array.from({ length: 2 * 8 }, () => rng.int(256));
    const grad = (from: number, rows: number, dLoss: number) => {
      const i = be.uploadInt(ids.slice(from * 8, (from + rows) * 8), [rows, 8]);
      const t = be.uploadInt(tg.slice(from * 8, (from + rows) * 8), [rows, 8]);
      return model.backward(model.forward(i, t), dLoss);
    };
    const full = grad(0, 2, 1);
    const acc = accumulateGrads(be, accumulateGrads(be, null, grad(0, 1, 0.5)), grad(1, 1, 0.5));
    for (const [name, g] of full) {
      const a = await be.read(g);
      const b = await be.read(acc.get(name)!);
      const scale = Math.max(...a.map(Math.abs));
      a.forEach((x, i) => expect(Math.abs(x - b[i])).toBeLessThanOrEqual(1e-5 * scale + 1e-9));
    }
  });

  it('grows moments: old rows kept as the prefix, new rows and new params zero', async () => {
    const opt = new AdamW(be, [{ name: 'k', shape: [2, 2], noDecay: false }]);
    const params = new Map([['k', be.upload(Float32Array.from([1, 2, 3, 4]), [2, 2])]]);
    opt.update(params, new Map([['k', be.upload(Float32Array.from([1, -1, 2, -2]), [2, 2])]]), 0.1);
    const m0 = await be.read(opt.m.get('k')!);
    await opt.grow([{ name: 'k', shape: [3, 2], noDecay: false }, { name: 'new', shape: [4], noDecay: false }]);
    const m1 = await be.read(opt.m.get('k')!);
    expect(Array.from(m1.subarray(0, 4))).toEqual(Array.from(m0));
    expect(Array.from(m1.subarray(4))).toEqual([0, 0]);
    expect(Array.from(await be.read(opt.v.get('new')!))).toEqual([0, 0, 0, 0]);
    expect(opt.step).toBe(1);
    await expect(opt.grow([{ name: 'k', shape: [3, 3], noDecay: false }])).rejects.toThrow(/appending rows/);
  });

  it('saves and loads its state through the host', async () => {
    const specs = [{ name: 'k', shape: [2], noDecay: false }];
    const opt = new AdamW(be, specs);
    opt.update(new Map([['k', be.upload(Float32Array.from([1, 2]), [2])]]), new Map([['k', be.upload(Float32Array.from([0.5, 0.25]), [2])]]), 0.1);
    const host = await opt.toHost();
    expect([...host.keys()]).toEqual(['m.k', 'v.k']);
    const back = new AdamW(be, specs);
    back.loadHost(host, opt.step, 'test');
    expect(Array.from(await be.read(back.v.get('k')!))).toEqual(Array.from(host.get('v.k')!.data));
    expect(back.step).toBe(1);
    expect(() => back.loadHost(new Map(), 1, 'x.safetensors')).toThrow(/missing optimizer moment 'm.k'/);
  });
});
