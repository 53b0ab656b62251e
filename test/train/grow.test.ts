// Growth properties on the CPU reference (fast-check over small configs, weights, inputs and
// growth amounts): zero init keeps logits, loss and old gradients, new keys get gradients,
// two growth steps = one, also for single layers (tokenformer_layer_slots), whose config
// round-trips through YAML and trains on from the same loss; random init moves the outputs;
// softmax refuses zero init; `tokenformer grow --layer` end to end.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fc, test } from '@fast-check/vitest';
import { createCpuBackend } from '../../backends/cpu.ts';
import type { ModelConfig } from '../../src/config.ts';
import { configToYaml, parseConfig, readConfigFile, validateConfig } from '../../src/config-parse.ts';
import { growLayers, growModel, type GrowTargets } from '../../src/grow.ts';
import { readSafetensors, writeSafetensorsAtomic } from '../../src/safetensors.ts';
import { sampleBatch } from '../../src/train/data.ts';
import { Trainer } from '../../src/train/trainer.ts';
import { tinyArgs, tinyCorpus } from './helpers.ts';
import { TokenFormer } from '../../src/model.ts';
import { initParams, paramSpecs, pattentionLayers } from '../../src/params.ts';
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

function tinyConfigT(): ModelConfig {
  return {
    numLayers: 1, hiddenSize: 16, numHeads: 2, qkvSlots: 8, projSlots: 8, ffnSlots: 16, maxPositions: 64, rotaryPct: 0.5,
    rotaryBase: 10000, variant: 'l2_norm_gelu', tied: true, eps: 1e-5, vocabSize: 256, normSlots: {},
  };
}

/** Zero growth of r.c into g: logits, loss and old gradients kept; new keys get gradients; pins = old counts. */
async function expectPreserved(
  r: { c: ModelConfig; B: number; T: number }, before: Run, g: { config: ModelConfig; weights: Map<string, Float32Array> },
  x: Int32Array, y: Int32Array,
): Promise<void> {
  const after = await run(g.config, g.weights, x, y, r.B, r.T);
  expectClose(before.logits, after.logits, 'logits');
  expect(Math.abs(after.loss - before.loss)).toBeLessThanOrEqual(1e-6 * Math.abs(before.loss));
  for (const [name, gOld] of before.grads) expectClose(gOld, after.grads.get(name)!, `grad ${name}`);
  let grown = 0;
  for (const l of pattentionLayers(g.config)) {
    const nOld = pattentionLayers(r.c).find((o) => o.prefix === l.prefix)!.n;
    if (l.n === nOld) continue;
    grown++;
    // Whenever the layer's output gets any gradient (seen through its old values' gradient
    // Aᵀ·dOut), the new keys get one: dS_new = Θ′(0)·dOut·V_newᵀ·(√n/‖S‖) ≠ 0.
    const dVOld = after.grads.get(`${l.prefix}.value_param_tokens`)!.subarray(0, nOld * l.dOut);
    const dK = after.grads.get(`${l.prefix}.key_param_tokens`)!.subarray(nOld * l.dIn);
    if (dVOld.some((v) => v !== 0)) expect(dK.some((v) => v !== 0), `new keys of ${l.prefix} have a gradient`).toBe(true);
    expect(g.config.normSlots[l.prefix]).toBe(nOld);
  }
  expect(grown).toBeGreaterThan(0);
}

describe('growth with zero init', () => {
  test.prop([arbCase], { numRuns: 25 })('keeps logits, loss and old gradients; new keys get gradients', async (r) => {
    const { w, x, y } = setup(r);
    const before = await run(r.c, w, x, y, r.B, r.T);
    const g = growModel(r.c, w, targets(r.c, r.add), 'zero', new Rng(r.seed + 1));
    expect(g.config.layerSlots).toBeUndefined();
    await expectPreserved(r, before, g, x, y);
  });

  test.prop([arbCase, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 6 })), { minLength: 1, maxLength: 4 })], { numRuns: 25 })(
    'single layers: keeps outputs and old gradients, new keys learn, config round-trips and trains', async (r, picks) => {
      const { w, x, y } = setup(r);
      const before = await run(r.c, w, x, y, r.B, r.T);
      const layers = pattentionLayers(r.c);
      const counts: Record<string, number> = {};
      for (const [i, add] of picks) counts[layers[i % layers.length].prefix] = layers[i % layers.length].n + add;
      const g = growLayers(r.c, w, counts, 'zero', new Rng(r.seed + 1));
      expect(g.config.layerSlots).toEqual(counts);
      validateConfig(g.config, 'grown');
      expect(parseConfig(configToYaml(g.config), 'rt')).toEqual(g.config);
      for (const s of paramSpecs(g.config)) expect(g.weights.get(s.name)!.length).toBe(s.shape.reduce((a, b) => a * b, 1));
      await expectPreserved(r, before, g, x, y);
      // Growing a second time, by kind, covers the single layers (each kind count ≥ theirs).
      const kinds = targets(r.c, [6, 6, 9]);
      const twice = growModel(g.config, g.weights, kinds, 'zero', new Rng(3));
      expect(twice.config.layerSlots).toBeUndefined();
      expectClose(before.logits, (await run(twice.config, twice.weights, x, y, r.B, r.T)).logits, 'single then kinds');
    });

  it('a model grown in single layers trains (Trainer.grow, then steps): same next loss, then learns', async () => {
    const corpus = tinyCorpus();
    const args = tinyArgs({ steps: 3, evalEvery: 0 });
    const t = Trainer.fresh(be, tinyConfigT(), null, args, corpus);
    await t.run();
    const before = await t.evaluate();
    // The pre-growth model's loss on the batch of the next update (the data cursor is the rng state).
    const next = sampleBatch(corpus.train, args.batch, args.seq, Rng.fromState(t.state.dataRng));
    const oldLoss = (await run(t.config, await t.model.toHost(), next.ids, next.targets, next.batch, next.seq)).loss;
    const g = growLayers(t.config, await t.model.toHost(), { 'sequential.2.mlp': 24, 'sequential.2.attention.key': 11 }, 'zero', new Rng(1));
    await t.grow(g.config, g.weights);
    expect(await t.evaluate()).toBe(before);
    const p = await t.trainStep();
    expect(Math.abs(p.loss! - oldLoss)).toBeLessThanOrEqual(1e-6 * oldLoss);
    const host = await t.model.toHost();
    expect(host.get('sequential.2.mlp.key_param_tokens')!.subarray(16 * 16).some((v) => v !== 0)).toBe(true);
    expect(host.get('sequential.2.attention.key.value_param_tokens')!.length).toBe(11 * 16);
    // A new 20-update stage on the tiny repetitive corpus lowers the validation loss clearly.
    const grown = await t.evaluate();
    const stage = t.continueWith(tinyArgs({ steps: 20, lr: 1e-2, minLr: 1e-3, evalEvery: 0, saveEvery: 0 }));
    await stage.run();
    expect(await stage.evaluate()).toBeLessThan(grown - 0.5);
    stage.dispose();
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

  it('grows a single layer into a config that describes it', () => {
    const g = growLayers(c, w, { 'sequential.3.attention.proj': 9 }, 'zero', new Rng(1));
    expect(g.config.layerSlots).toEqual({ 'sequential.3.attention.proj': 9 });
    expect(g.config.normSlots).toEqual({ 'sequential.3.attention.proj': 6 });
    expect(g.config.projSlots).toBe(6);
    const r = growLayers(g.config, g.weights, { 'sequential.3.attention.proj': 12 }, 'random', new Rng(1));
    expect(r.config.layerSlots).toEqual({ 'sequential.3.attention.proj': 12 });
    expect(r.config.normSlots).toEqual({});
    // Growing the kind to the layer's count folds the entry back into proj_slot_num.
    const k = growModel(g.config, g.weights, { proj: 9 }, 'zero', new Rng(1));
    expect(k.config.layerSlots).toBeUndefined();
    expect(k.config.projSlots).toBe(9);
    expect(k.config.normSlots).toEqual({ 'sequential.2.attention.proj': 6, 'sequential.3.attention.proj': 6 });
    expect(() => growModel(g.config, g.weights, { proj: 8 }, 'zero', new Rng(1))).toThrow(/--proj-slots 8 must be an integer ≥ the current 9/);
    expect(() => growLayers(g.config, g.weights, { 'sequential.3.attention.proj': 8 }, 'zero', new Rng(1))).toThrow(/≥ the current 9/);
  });

  it('refuses shrinking, unknown layers and zero init for softmax', () => {
    expect(() => growModel(c, w, { qkv: 5 }, 'zero', new Rng(1))).toThrow(/≥ the current 6/);
    expect(() => growLayers(c, w, { 'sequential.9.mlp': 20 }, 'zero', new Rng(1))).toThrow(/no Pattention layer/);
    expect(() => growModel({ ...c, variant: 'softmax' }, w, { qkv: 12 }, 'zero', new Rng(1))).toThrow(/exp\(0\) = 1/);
  });
});

describe('tokenformer grow --layer', () => {
  const CLI = join(import.meta.dirname, 'fixtures', 'cli.ts');
  const cli = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], { encoding: 'utf8' });

  it('grows single layers end to end: outputs unchanged, config and weights agree', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tf-grow-layer-'));
    const c = tinyConfigT();
    writeFileSync(join(dir, 'c.yml'), configToYaml(c));
    const w = initParams(c, new Rng(4));
    writeSafetensorsAtomic(join(dir, 'w.safetensors'), new Map(paramSpecs(c).map((s) => [s.name, { shape: s.shape, data: w.get(s.name)! }])), { format: 'pt' });
    const files = ['--config', join(dir, 'c.yml'), '--weights', join(dir, 'w.safetensors'),
      '--out-config', join(dir, 'g.yml'), '--out-weights', join(dir, 'g.safetensors')];
    const r = cli('grow', ...files, '--ffn-slots', '20', '--layer', 'sequential.2.mlp=32', '--layer', 'sequential.2.attention.value=12');
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/sequential\.2\.mlp →32/);
    expect(r.stdout).toMatch(/max \|Δlogit\| = 0\.000e\+0 \(bit-identical\)/);
    const g = readConfigFile(join(dir, 'g.yml'));
    expect(g.layerSlots).toEqual({ 'sequential.2.mlp': 32, 'sequential.2.attention.value': 12 });
    expect(g.ffnSlots).toBe(20);
    expect(g.normSlots).toEqual({ 'sequential.2.mlp': 16, 'sequential.2.attention.value': 8 });
    expect(readFileSync(join(dir, 'g.yml'), 'utf8')).toMatch(/tokenformer_layer_slots:\n {2}sequential\.2\.attention\.value: 12\n {2}sequential\.2\.mlp: 32\n/);
    expect(readSafetensors(join(dir, 'g.safetensors')).get('sequential.2.mlp.key_param_tokens')!.shape).toEqual([32, 16]);
    for (const [bad, re] of [['sequential.2.mlp', /--layer expects PREFIX=N/], ['sequential.7.mlp=40', /no Pattention layer named/],
      ['sequential.2.mlp=8', /≥ the current 16/]] as const) {
      const e = cli('grow', ...files, '--layer', bad);
      expect(e.status).not.toBe(0);
      expect(e.stderr).toMatch(re);
    }
  });
});
