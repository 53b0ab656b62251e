// Growth properties on the CPU reference (fast-check over small configs, weights, inputs and
// growth amounts): zero init keeps logits, loss and old gradients, new keys get gradients,
// two growth steps = one; random init moves the outputs; softmax refuses zero init.
import { describe, expect, it } from 'vitest';
import { fc, test } from '@fast-check/vitest';
import { createCpuBackend } from '../../backends/cpu.ts';
import type { ModelConfig } from '../../src/config.ts';
import { growLayers, growModel, type GrowTargets } from '../../src/grow.ts';
import { TokenFormer } from '../../src/model.ts';
import { initParams, pattentionLayers } from '../../src/params.ts';
import { Rng } from '../../src/rng.ts';
import { arbConfigWith } from '../helpers/tiny.ts';

const be = createCpuBackend();

interface Run {
  logits: Float32Array;
  loss: number;
  grads: Map<string, Float32Array>;
}

async function run(c: ModelConfig, w: Map<string, Float32Array>, x: Int32Array, y: Int32Array, B: number, T: number): Promise<Run> {
  const m = TokenFormer.fromHost(be, c, w);
  const f = m.forward(be.uploadInt(x, [B, T]), be.uploadInt(y, [B, T]));
  const logits = await be.read(f.logits);
  const loss = (await be.read(f.loss!))[0];
  const g = m.backward(f);
  const grads = new Map<string, Float32Array>();
  for (const [k, t] of g) grads.set(k, await be.read(t));
  return { logits, loss, grads };
}

/** |a − b| ≤ 1e-6·max|a| elementwise over the first a.length entries of b. */
function expectClose(a: Float32Array, b: Float32Array, what: string): void {
  let scale = 0;
  for (const v of a) scale = Math.max(scale, Math.abs(v));
  for (let i = 0; i < a.length; i++) {
    if (Math.abs(a[i] - b[i]) > 1e-6 * scale + 1e-30) throw new Error(`${what}[${i}]: ${a[i]} vs ${b[i]} (scale ${scale})`);
  }
}

const arbCase = fc.record({
  c: arbConfigWith(1).map((c) => (c.variant === 'softmax' ? { ...c, variant: 'l2_norm_gelu' as const } : c)),
  seed: fc.integer({ min: 0, max: 1e6 }),
  B: fc.integer({ min: 1, max: 2 }),
  T: fc.integer({ min: 1, max: 5 }),
  add: fc.tuple(fc.integer({ min: 0, max: 6 }), fc.integer({ min: 0, max: 6 }), fc.integer({ min: 1, max: 9 })),
  add2: fc.tuple(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 4 })),
});

function setup(r: { c: ModelConfig; seed: number; B: number; T: number }) {
  const rng = new Rng(r.seed);
  const w = initParams(r.c, rng);
  // Larger keys than the 0.02 init so Θ is far from linear and the test has teeth.
  for (const [name, d] of w) if (name.endsWith('key_param_tokens')) d.forEach((v, i) => (d[i] = v * 25));
  const x = Int32Array.from({ length: r.B * r.T }, () => rng.int(r.c.vocabSize));
  const y = Int32Array.from({ length: r.B * r.T }, () => rng.int(r.c.vocabSize));
  return { w, x, y };
}

function targets(c: ModelConfig, add: [number, number, number]): GrowTargets {
  return { qkv: c.qkvSlots + add[0], proj: c.projSlots + add[1], ffn: c.ffnSlots + add[2] };
}

describe('growth with zero init', () => {
  test.prop([arbCase], { numRuns: 25 })('keeps logits, loss and old gradients; new keys get gradients', async (r) => {
    const { w, x, y } = setup(r);
    const before = await run(r.c, w, x, y, r.B, r.T);
    const g = growModel(r.c, w, targets(r.c, r.add), 'zero', new Rng(r.seed + 1));
    const after = await run(g.config, g.weights, x, y, r.B, r.T);
    expectClose(before.logits, after.logits, 'logits');
    expect(Math.abs(after.loss - before.loss)).toBeLessThanOrEqual(1e-6 * Math.abs(before.loss));
    for (const [name, gOld] of before.grads) expectClose(gOld, after.grads.get(name)!, `grad ${name}`);
    for (const l of pattentionLayers(g.config)) {
      const nOld = pattentionLayers(r.c).find((o) => o.prefix === l.prefix)!.n;
      if (l.n === nOld) continue;
      // Whenever the layer's output gets any gradient (seen through its old values' gradient
      // Aᵀ·dOut), the new keys get one: dS_new = Θ′(0)·dOut·V_newᵀ·(√n/‖S‖) ≠ 0.
      const dVOld = after.grads.get(`${l.prefix}.value_param_tokens`)!.subarray(0, nOld * l.dOut);
      const dK = after.grads.get(`${l.prefix}.key_param_tokens`)!.subarray(nOld * l.dIn);
      if (dVOld.some((v) => v !== 0)) expect(dK.some((v) => v !== 0), `new keys of ${l.prefix} have a gradient`).toBe(true);
      expect(g.config.normSlots[l.prefix]).toBe(nOld);
    }
  });

  test.prop([arbCase], { numRuns: 15 })('growing in two steps preserves outputs as growing once does', async (r) => {
    const { w, x, y } = setup(r);
    const before = await run(r.c, w, x, y, r.B, r.T);
    const once = growModel(r.c, w, targets(r.c, r.add), 'zero', new Rng(1));
    const first = growModel(r.c, w, targets(r.c, r.add), 'zero', new Rng(2));
    const twice = growModel(first.config, first.weights, targets(first.config, r.add2), 'zero', new Rng(3));
    for (const l of pattentionLayers(r.c)) expect(twice.config.normSlots[l.prefix] ?? l.n).toBe(l.n);
    const a = await run(once.config, once.weights, x, y, r.B, r.T);
    const b = await run(twice.config, twice.weights, x, y, r.B, r.T);
    expectClose(before.logits, a.logits, 'once');
    expectClose(before.logits, b.logits, 'twice');
  });
});

describe('growth', () => {
  const c: ModelConfig = {
    numLayers: 2, hiddenSize: 16, numHeads: 2, qkvSlots: 6, projSlots: 6, ffnSlots: 12, maxPositions: 32,
    rotaryPct: 0.5, rotaryBase: 10000, variant: 'l2_norm_gelu', tied: true, eps: 1e-5, vocabSize: 30, normSlots: {},
  };
  const w = initParams(c, new Rng(5));

  it('keeps the old tokens as the prefix, in order, and is seeded', () => {
    const a = growModel(c, w, { ffn: 20 }, 'zero', new Rng(9));
    const b = growModel(c, w, { ffn: 20 }, 'zero', new Rng(9));
    const name = 'sequential.2.mlp.value_param_tokens';
    expect(Array.from(a.weights.get(name)!.subarray(0, 12 * 16))).toEqual(Array.from(w.get(name)!));
    expect(Array.from(a.weights.get(name)!)).toEqual(Array.from(b.weights.get(name)!));
    expect(a.weights.get('sequential.2.mlp.key_param_tokens')!.subarray(12 * 16).every((v) => v === 0)).toBe(true);
    expect(a.config.ffnSlots).toBe(20);
    expect(a.config.qkvSlots).toBe(6);
  });

  it('random init (the official recipe) recomputes √n and moves the outputs', async () => {
    const g = growModel(c, w, { qkv: 12, proj: 12, ffn: 24 }, 'random', new Rng(9));
    expect(g.config.normSlots).toEqual({});
    const rng = new Rng(1);
    const x = Int32Array.from({ length: 8 }, () => rng.int(30));
    const before = await run(c, w, x, x, 1, 8);
    const after = await run(g.config, g.weights, x, x, 1, 8);
    expect(Math.abs(after.loss - before.loss)).toBeGreaterThan(0);
    expect(after.logits.some((v, i) => v !== before.logits[i])).toBe(true);
  });

  it('grows a single layer', () => {
    const g = growLayers(c, w, { 'sequential.3.attention.proj': 9 }, 'zero', new Rng(1));
    expect(g.weights.get('sequential.3.attention.proj.key_param_tokens')!.length).toBe(9 * 16);
    expect(g.weights.get('sequential.2.attention.proj.key_param_tokens')!.length).toBe(6 * 16);
    expect(g.normSlots).toEqual({ 'sequential.3.attention.proj': 6 });
  });

  it('refuses shrinking, unknown layers and zero init for softmax', () => {
    expect(() => growModel(c, w, { qkv: 5 }, 'zero', new Rng(1))).toThrow(/≥ the current 6/);
    expect(() => growLayers(c, w, { 'sequential.9.mlp': 20 }, 'zero', new Rng(1))).toThrow(/no Pattention layer/);
    expect(() => growModel({ ...c, variant: 'softmax' }, w, { qkv: 12 }, 'zero', new Rng(1))).toThrow(/exp\(0\) = 1/);
  });
});
