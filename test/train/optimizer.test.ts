// AdamW on the backend: one update against a host computation (decay, no-decay, clipping),
// clipping on later steps (nonzero moments) and the threshold, decay on every parameter but
// the final norm, accumulation = the mean gradient, moment growth, and host save/load.
import { describe, expect, it } from 'vitest';
import { createCpuBackend } from '../../backends/cpu.ts';
import { AdamW, OFFICIAL_ADAMW, accumulateGrads } from '../../src/train/optimizer.ts';
import { TokenFormer } from '../../src/model.ts';
import { initParams, paramSpecs } from '../../src/params.ts';
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

  it('clips on later steps too: three updates with ‖g‖ = 13, 5, 0.5 match AdamW with clip 1.0 (and 2.0)', async () => {
    // Adam's first step cancels any scale of g (m̂/√v̂ = g/|g|), so only later steps, where
    // coefficients of different steps meet in m and v, show the clip in the weights.
    const grads = [[[3, 0, -4], [0, 12]], [[0, 3, 0], [4, 0]], [[0.3, 0, 0], [0, 0.4]]];
    const norms = [13, 5, 0.5];
    for (const max of [1.0, 2.0]) {
      const specs = [{ name: 'a', shape: [3], noDecay: false }, { name: 'b', shape: [2], noDecay: true }];
      const params = new Map([['a', be.upload(Float32Array.of(0.5, -1, 2), [3])], ['b', be.upload(Float32Array.of(1, -0.5), [2])]]);
      const opt = max === 1.0 ? new AdamW(be, specs) : new AdamW(be, specs, { ...OFFICIAL_ADAMW, maxGradNorm: max });
      // Independent float64 state: torch.optim.AdamW(β 0.9/0.95, eps 1e-8, wd 0.1 / 0) after clip_grad_norm_(max).
      const st = [{ p: [0.5, -1, 2], m: [0, 0, 0], v: [0, 0, 0], wd: 0.1 }, { p: [1, -0.5], m: [0, 0], v: [0, 0], wd: 0 }];
      for (let s = 0; s < 3; s++) {
        const g = new Map([['a', be.upload(Float32Array.from(grads[s][0]), [3])], ['b', be.upload(Float32Array.from(grads[s][1]), [2])]]);
        expect(Math.sqrt((await be.read(opt.update(params, g, 0.01)))[0])).toBeCloseTo(norms[s], 6);
        const coef = Math.min(1, max / (norms[s] + 1e-6));
        st.forEach((x, k) => x.p.forEach((_, i) => {
          const gi = coef * grads[s][k][i];
          x.m[i] = 0.9 * x.m[i] + 0.1 * gi;
          x.v[i] = 0.95 * x.v[i] + 0.05 * gi * gi;
          x.p[i] = x.p[i] * (1 - 0.01 * x.wd) - (0.01 * (x.m[i] / (1 - 0.9 ** (s + 1)))) / (Math.sqrt(x.v[i] / (1 - 0.95 ** (s + 1))) + 1e-8);
        }));
        for (const [k, name] of ['a', 'b'].entries()) {
          const [p, m, v] = [params.get(name)!, opt.m.get(name)!, opt.v.get(name)!].map((t) => t.store.data as Float32Array);
          st[k].p.forEach((want, i) => expect(Math.abs(p[i] - want), `max ${max} step ${s + 1} ${name}[${i}]`).toBeLessThan(1e-6 * (1 + Math.abs(want))));
          st[k].m.forEach((want, i) => expect(Math.abs(m[i] - want)).toBeLessThanOrEqual(1e-6 * Math.abs(want)));
          st[k].v.forEach((want, i) => expect(Math.abs(v[i] - want)).toBeLessThanOrEqual(1e-6 * Math.abs(want)));
        }
      }
    }
  });

  it('decays every parameter by lr·wd·p except the final norm weight and bias (zero gradients)', async () => {
    for (const tied of [true, false]) {
      const c = tinyConfig({ tied, numLayers: 2 });
      const host = initParams(c, new Rng(8));
      const norm = `sequential.${c.numLayers + 3}.norm`; // the final LayerNorm, by its official name
      host.get(`${norm}.weight`)!.fill(1.5);
      host.get(`${norm}.bias`)!.forEach((_, i, d) => (d[i] = 0.3 * (i + 1)));
      const params = new Map([...host].map(([n, d]) => [n, be.upload(d, [d.length])]));
      const grads = new Map([...host].map(([n, d]) => [n, be.zeros([d.length])]));
      const opt = new AdamW(be, paramSpecs(c).map((s) => ({ ...s, shape: [s.shape.reduce((a, b) => a * b, 1)] })));
      opt.update(params, grads, 0.05);
      expect(params.size).toBe(1 + 2 * 5 * c.numLayers + 2 + (tied ? 0 : 1)); // embedding, K and V of 5 layers per block, norm, head
      for (const [name, before] of host) {
        const after = await be.read(params.get(name)!);
        const factor = name === `${norm}.weight` || name === `${norm}.bias` ? 1 : 1 - 0.05 * 0.1;
        expect(Array.from(after), name).toEqual(Array.from(before, (x) => Math.fround(x * factor)));
      }
    }
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
