// The TensorFlow.js bench model (bench/tfjs_model.ts) is the same model as ours: logits, loss
// and every tfjs gradient (tf.variableGrads) against the CPU reference backend; clipped training
// steps and the AdamW update against src/train/optimizer.ts; and the bench config's loss. Skips with a printed
// reason when tfjs-backend-webgpu cannot start on Dawn, unless TOKENFORMER_REQUIRE names webgpu.
// Omits: timing (benchmarks report, tests assert).

import { describe, expect, it } from 'vitest';
import { createCpuBackend } from '../backends/cpu.ts';
import { BENCH_BATCH, BENCH_CONFIG, BENCH_SEQ } from '../bench/model.ts';
import { TfAdamW, TfTokenFormer } from '../bench/tfjs_model.ts';
import type { ModelConfig } from '../src/config.ts';
import { TokenFormer } from '../src/model.ts';
import { initParams, paramSpecs } from '../src/params.ts';
import { Rng } from '../src/rng.ts';
import { AdamW, OFFICIAL_ADAMW, type AdamWHyper } from '../src/train/optimizer.ts';
import { isUnavailable, reasonOf, required } from './helpers/backends.ts';
import { checkGrads, checkValues } from './helpers/compare.ts';
import { tinyConfig } from './helpers/tiny.ts';

type Tf = typeof import('@tensorflow/tfjs-core');

const VALUES = { rtol: 1e-3, atol: 1e-4 }; // gpu_f32 (spec/model.md)
const GRADS = { rel: 1e-2, maxRel: 1e-4 };

async function load(): Promise<{ tf: Tf | null; reason: string }> {
  try {
    const { loadTfWebGPU } = await import('../bench/tfjs.ts');
    return { tf: await loadTfWebGPU(), reason: '' };
  } catch (e) {
    const msg = reasonOf(e);
    if (!isUnavailable(e)) throw e;
    console.warn(`[skip] tfjs model tests: ${msg}`);
    return { tf: null, reason: msg };
  }
}

const { tf, reason } = await load();

describe('tfjs-webgpu availability', () => {
  it.runIf(required('webgpu'))('is available (TOKENFORMER_REQUIRE=webgpu)', () => {
    expect(tf, `tfjs on webgpu is required but unavailable: ${reason}`).not.toBeNull();
  });
});

interface Case {
  config: ModelConfig;
  host: Map<string, Float32Array>;
  ids: Int32Array;
  targets: Int32Array;
  B: number;
  T: number;
}

function makeCase(config: ModelConfig, B: number, T: number, seed: number): Case {
  const rng = new Rng(seed);
  const host = initParams(config, rng);
  const draw = () => Int32Array.from({ length: B * T }, () => rng.int(config.vocabSize));
  return { config, host, ids: draw(), targets: draw(), B, T };
}

/** Logits, loss and every gradient of our model on the CPU reference backend. */
async function cpuReference(k: Case) {
  const cpu = createCpuBackend();
  const model = TokenFormer.fromHost(cpu, k.config, k.host);
  const ids = cpu.uploadInt(k.ids, [k.B, k.T]);
  const tgt = cpu.uploadInt(k.targets, [k.B, k.T]);
  const f = model.forward(ids, tgt);
  const logits = await cpu.read(f.logits);
  const loss = (await cpu.read(f.loss!))[0];
  const grads = new Map<string, Float32Array>();
  for (const [name, g] of model.backward(f)) grads.set(name, await cpu.read(g));
  return { logits, loss, grads };
}

/** The same from the tfjs model; checks that nothing is left allocated. */
async function tfjsRun(tf: Tf, k: Case) {
  const before = tf.memory().numTensors;
  const model = new TfTokenFormer(tf, k.config, k.host);
  const ids = tf.tensor1d(k.ids, 'int32');
  const tgt = tf.tensor1d(k.targets, 'int32');
  const lt = tf.tidy(() => model.logits(ids, k.B, k.T));
  const logits = (await lt.data()) as Float32Array;
  const r = model.lossAndGrads(ids, tgt, k.B, k.T);
  const loss = (await r.loss.data())[0];
  const grads = new Map<string, Float32Array>();
  for (const [name, g] of r.grads) grads.set(name, (await g.data()) as Float32Array);
  tf.dispose([lt, ids, tgt, r.loss, ...r.grads.values()]);
  model.dispose();
  return { logits, loss, grads, leaked: tf.memory().numTensors - before };
}

type Run = Awaited<ReturnType<typeof cpuReference>>;

/** Every mismatch between a tfjs run and the reference (empty when they agree, no leaks). */
function compare(got: Run & { leaked: number }, ref: Run): string[] {
  const errors: (string | null)[] = [
    checkValues('logits', got.logits, ref.logits, VALUES),
    checkValues('loss', [got.loss], [ref.loss], VALUES),
    got.leaked === 0 ? null : `${got.leaked} tfjs tensors leaked`,
  ];
  for (const [name, g] of ref.grads) {
    const mine = got.grads.get(name);
    errors.push(mine ? checkGrads(`grad ${name}`, mine, g, GRADS) : `no tfjs gradient for ${name}`);
  }
  if (got.grads.size !== ref.grads.size) errors.push(`${got.grads.size} tfjs gradients, ${ref.grads.size} ours`);
  return errors.filter((e): e is string => e !== null);
}

const CASES: [string, ModelConfig][] = [
  ['tied, l2_norm_gelu, rotary ½', tinyConfig()],
  ['untied, gelu_l2_norm, rotary 1, 3 heads', tinyConfig({ tied: false, variant: 'gelu_l2_norm', rotaryPct: 1, hiddenSize: 24, numHeads: 3 })],
  ['tied, softmax, rotary ¼, 1 layer', tinyConfig({ variant: 'softmax', rotaryPct: 0.25, numLayers: 1 })],
];

describe.skipIf(!tf)('tfjs model vs the CPU reference', () => {
  it.each(CASES)('%s: logits, loss and every gradient', async (_name, config) => {
    const k = makeCase(config, 2, 6, 7);
    expect(compare(await tfjsRun(tf!, k), await cpuReference(k))).toEqual([]);
  });

  it('three clipped training steps: losses and Σg² match src/train/optimizer.ts', async () => {
    const k = makeCase(tinyConfig(), 2, 6, 11);
    const hyper: AdamWHyper = { ...OFFICIAL_ADAMW, maxGradNorm: 0.05 }; // clipping active every step
    const lrs = [1e-2, 1e-2, 1e-2];
    const ref = await cpuSteps(k, hyper, lrs);
    const got = await tfjsSteps(tf!, k, hyper, lrs);
    expect(Math.min(...ref.normSq)).toBeGreaterThan(hyper.maxGradNorm ** 2);
    expect(checkValues('losses', got.losses, ref.losses, VALUES)).toBeNull();
    expect(checkValues('Σg²', got.normSq, ref.normSq, VALUES)).toBeNull();
  });

  // NOTE: final weights are compared from identical gradients: after autodiff, a gradient
  // entry far below the f32 noise can flip sign between backends, and Adam's g/(|g|+eps)
  // turns that into a full ±lr move, so weights after real steps are not comparable.
  it('AdamW from identical gradients gives our weights (two steps, clipped, decayed)', async () => {
    const k = makeCase(tinyConfig(), 2, 6, 13);
    const hyper: AdamWHyper = { ...OFFICIAL_ADAMW, maxGradNorm: 0.05 };
    const ref = await cpuReference(k);
    const cpu = createCpuBackend();
    const cpuModel = TokenFormer.fromHost(cpu, k.config, k.host);
    const cpuOpt = new AdamW(cpu, paramSpecs(k.config), hyper);
    const model = new TfTokenFormer(tf!, k.config, k.host);
    const opt = new TfAdamW(model, hyper);
    const shapes = new Map(paramSpecs(k.config).map((s) => [s.name, s.shape]));
    const grads = new Map([...ref.grads].map(([n, g]) => [n, tf!.tensor(g, shapes.get(n))]));
    for (const lr of [1e-2, 3e-3]) {
      const g = new Map([...ref.grads].map(([n, d]) => [n, cpu.upload(d, shapes.get(n)!)]));
      cpu.dispose(cpuOpt.update(cpuModel.params, g, lr));
      tf!.tidy(() => { opt.update(grads, lr); });
    }
    const want = await cpuModel.toHost();
    const errors: (string | null)[] = [];
    for (const [name, v] of model.vars) errors.push(checkValues(`weights ${name}`, (await v.data()) as Float32Array, want.get(name)!, VALUES));
    tf!.dispose([...grads.values()]);
    opt.dispose();
    model.dispose();
    expect(errors.filter((e) => e !== null)).toEqual([]);
  });

  it('the bench config (what benchTfjsModel times): logits, loss and every gradient', async () => {
    const B = BENCH_BATCH;
    const T = BENCH_SEQ;
    const rng = new Rng(1); // benchModel's draws: weights, ids, targets
    const host = initParams(BENCH_CONFIG, rng);
    const draw = () => Int32Array.from({ length: B * T }, () => rng.int(BENCH_CONFIG.vocabSize));
    const k: Case = { config: BENCH_CONFIG, host, ids: draw(), targets: draw(), B, T };
    expect(compare(await tfjsRun(tf!, k), await cpuReference(k))).toEqual([]);
  });
});

async function cpuSteps(k: Case, hyper: AdamWHyper, lrs: number[]) {
  const be = createCpuBackend();
  const model = TokenFormer.fromHost(be, k.config, k.host);
  const opt = new AdamW(be, paramSpecs(k.config), hyper);
  const ids = be.uploadInt(k.ids, [k.B, k.T]);
  const tgt = be.uploadInt(k.targets, [k.B, k.T]);
  const losses: number[] = [];
  const normSq: number[] = [];
  for (const lr of lrs) {
    const f = model.forward(ids, tgt);
    const grads = model.backward(f);
    losses.push((await be.read(f.loss!))[0]);
    normSq.push((await be.read(opt.update(model.params, grads, lr)))[0]);
  }
  return { losses, normSq };
}

async function tfjsSteps(tf: Tf, k: Case, hyper: AdamWHyper, lrs: number[]) {
  const model = new TfTokenFormer(tf, k.config, k.host);
  const opt = new TfAdamW(model, hyper);
  const ids = tf.tensor1d(k.ids, 'int32');
  const tgt = tf.tensor1d(k.targets, 'int32');
  const losses: number[] = [];
  const normSq: number[] = [];
  for (const lr of lrs) {
    const r = opt.trainStep(ids, tgt, k.B, k.T, lr);
    losses.push((await r.loss.data())[0]);
    normSq.push((await r.normSq.data())[0]);
    tf.dispose([r.loss, r.normSq]);
  }
  tf.dispose([ids, tgt]);
  opt.dispose();
  model.dispose();
  return { losses, normSq };
}
