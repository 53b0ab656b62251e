// Every kernel of the GPU.js backend, in every GPU.js mode, against the CPU reference backend
// on seeded random inputs with odd sizes (n = 37, hidden = 48), at the shared gpu_f32
// tolerances; plus the backend's own behaviour: views, disposal, ordering, in-place AdamW.
// Omits: golden fixtures, models and training (test/parity/* runs those on gpujs too).
// An unavailable mode is skipped with its reason, or fails when TOKENFORMER_REQUIRE names it.

import { describe, expect, test } from 'vitest';
import { createCpuBackend } from '../backends/cpu.ts';
import { GPUJS_MODES } from '../backends/index.ts';
import type { AdamWParams, Backend, Handle, NormActParams, Variant } from '../src/backend.ts';
import { UserError } from '../src/errors.ts';
import { Rng } from '../src/rng.ts';
import { tryLoad, type Loaded } from './helpers/backends.ts';
import { checkGrads, checkValues } from './helpers/compare.ts';
import { loadManifest } from './helpers/golden.ts';
import { pattention } from '../src/compose.ts';

type B = Backend<Handle>;
type Outs = Record<string, Handle>;
const tol = loadManifest().tolerances.gpu_f32;
const cpu = createCpuBackend() as unknown as B;

/** Host inputs of a case: f32 data, or i32 ids (int: true). */
interface Input { data: Float32Array | Int32Array; shape: number[] }
interface Case {
  name: string;
  inputs: Record<string, Input>;
  /** Runs the kernels under test; outputs named grad* are compared as gradients. */
  run(be: B, x: Record<string, Handle>): Outs;
}

const rng = new Rng(20241105);
function randn(shape: number[], std = 1): Input {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  rng.fillNormal(data, std);
  return { data, shape };
}
function ints(shape: number[], hi: number): Input {
  const data = Int32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.int(hi));
  return { data, shape };
}

function matmulCases(): Case[] {
  const out: Case[] = [];
  for (const [tA, tB] of [[false, false], [false, true], [true, false], [true, true]] as const) {
    out.push({
      name: `matmul ${tA ? 'T' : 'N'}${tB ? 'T' : 'N'} 13x48x37`,
      inputs: { a: randn(tA ? [48, 13] : [13, 48]), b: randn(tB ? [37, 48] : [48, 37]) },
      run: (be, x) => ({ c: be.ops.matmul(x.a, x.b, tA, tB) }),
    });
  }
  out.push({
    name: 'matmul batched, shared B [2,5,48]·[48,37]',
    inputs: { a: randn([2, 5, 48]), b: randn([48, 37]) },
    run: (be, x) => ({ c: be.ops.matmul(x.a, x.b, false, false) }),
  });
  out.push({
    name: 'matmul batched B, transB [2,3,9,7]·[2,3,9,7]ᵀ',
    inputs: { a: randn([2, 3, 9, 7]), b: randn([2, 3, 9, 7]) },
    run: (be, x) => ({ c: be.ops.matmul(x.a, x.b, false, true) }),
  });
  out.push({
    name: 'matmul batched B, transA [2,3,9,7]ᵀ·[2,3,9,5]',
    inputs: { a: randn([2, 3, 9, 7]), b: randn([2, 3, 9, 5]) },
    run: (be, x) => ({ c: be.ops.matmul(x.a, x.b, true, false) }),
  });
  return out;
}

function normActCases(): Case[] {
  const out: Case[] = [];
  for (const variant of ['l2_norm_gelu', 'gelu_l2_norm', 'softmax'] as Variant[]) {
    for (const normN of [37, 29]) {
      const s = randn([13, 37], 2);
      s.data.fill(0, 5 * 37, 6 * 37); // one all-zero row: a = 0, dS = 0 (spec/ops/norm_act.md)
      const p: NormActParams = { variant, normN };
      out.push({
        name: `normAct ${variant} n=37 normN=${normN}`,
        inputs: { s, dA: randn([13, 37]) },
        run: (be, x) => ({ a: be.ops.normAct(x.s, p), gradS: be.ops.normActBackward(x.s, x.dA, p) }),
      });
    }
  }
  return out;
}

function pattentionCases(): Case[] {
  return (['l2_norm_gelu', 'gelu_l2_norm', 'softmax'] as Variant[]).map((variant) => ({
    name: `fused pattention ${variant} x[2,7,48] k[37,48] v[37,40]`,
    inputs: { x: randn([2, 7, 48]), k: randn([37, 48], 0.3), v: randn([37, 40]), d: randn([2, 7, 40]) },
    run: (be, x) => {
      const p = { variant, normN: 37 };
      const f = pattention(be, x.x, x.k, x.v, p); // GPU.js's fused pair
      const g = f.saved.backward(x.d);
      return { out: f.out, gradX: g.dX, gradK: g.dK, gradV: g.dV };
    },
  }));
}

function layerNormCases(): Case[] {
  const run = (affine: boolean, bias: boolean) => (be: B, x: Record<string, Handle>): Outs => {
    const w = affine ? x.w : null;
    const f = be.ops.layerNorm(x.x, w, bias ? x.b : null, 1e-5);
    const g = be.ops.layerNormBackward(x.dY, x.x, f.mean, f.rstd, w);
    const o: Outs = { y: f.y, mean: f.mean, rstd: f.rstd, gradX: g.dX };
    if (g.dW) o.gradW = g.dW;
    if (g.dB) o.gradB = g.dB;
    return o;
  };
  const inputs = () => ({ x: randn([13, 48], 3), w: randn([48]), b: randn([48]), dY: randn([13, 48]) });
  return [
    { name: 'layerNorm affine [13,48]', inputs: inputs(), run: run(true, true) },
    { name: 'layerNorm LN₀ [13,48]', inputs: inputs(), run: run(false, false) },
    { name: 'layerNorm bias only [13,48]', inputs: inputs(), run: run(false, true) },
  ];
}

function attentionPartCases(): Case[] {
  const rot = (rotaryDim: number): Case => ({
    name: `rotary rd=${rotaryDim} [2,11,3,16] (and inverse)`,
    inputs: { x: randn([2, 11, 3, 16]) },
    run: (be, x) => ({
      y: be.ops.rotary(x.x, { rotaryDim, base: 10000 }, false),
      yInv: be.ops.rotary(x.x, { rotaryDim, base: 10000 }, true),
    }),
  });
  return [
    rot(4), rot(16), rot(0),
    {
      name: 'permute0213 [2,5,3,7]',
      inputs: { x: randn([2, 5, 3, 7]) },
      run: (be, x) => ({ y: be.ops.permute0213(x.x) }),
    },
    {
      name: 'causalSoftmax [2,3,9,9] and backward',
      inputs: { s: randn([2, 3, 9, 9], 3), dP: randn([2, 3, 9, 9]) },
      run: (be, x) => {
        const p = be.ops.causalSoftmax(x.s, 0.3);
        return { p, gradS: be.ops.causalSoftmaxBackward(p, x.dP, 0.3) };
      },
    },
    {
      name: 'add [7,48]',
      inputs: { a: randn([7, 48]), b: randn([7, 48]) },
      run: (be, x) => ({ y: be.ops.add(x.a, x.b) }),
    },
  ];
}

function lossCases(): Case[] {
  return [
    {
      name: 'embedding [3,7] ids over [37,48] and backward',
      inputs: { ids: ints([3, 7], 9), table: randn([37, 48]), d: randn([3, 7, 48]) },
      run: (be, x) => ({ out: be.ops.embedding(x.ids, x.table), gradTable: be.ops.embeddingBackward(x.ids, x.d, 37) }),
    },
    {
      name: 'crossEntropy [13,37] and backward',
      inputs: { logits: randn([13, 37], 3), t: ints([13], 37) },
      run: (be, x) => {
        const f = be.ops.crossEntropy(x.logits, x.t);
        return { loss: f.loss, lse: f.lse, gradLogits: be.ops.crossEntropyBackward(x.logits, f.lse, x.t, 0.7) };
      },
    },
    {
      name: 'sumSquares of [300,700], [48], [] (three tree levels)',
      inputs: { a: randn([300, 700]), b: randn([48]), c: randn([]) },
      run: (be, x) => ({ s: be.ops.sumSquares([x.a, x.b, x.c]) }),
    },
  ];
}

function adamwCases(): Case[] {
  const base: AdamWParams = {
    lr: 3e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step: 1, maxGradNorm: 1, gradScale: 0.5,
  };
  const two = (clip: boolean) => (be: B, x: Record<string, Handle>): Outs => {
    for (const step of [1, 2]) {
      const gns = clip ? be.ops.sumSquares([x.g]) : null;
      be.ops.adamw(x.p, x.g, x.m, x.v, { ...base, step, maxGradNorm: clip ? 1 : 0 }, gns);
      if (gns) be.dispose(gns);
    }
    return { param: x.p, m: x.m, v: x.v };
  };
  const square = (t: Input): Input => ({ data: Float32Array.from(t.data, (e) => e * e * 0.01), shape: t.shape });
  const inputs = () => ({ p: randn([37, 48]), g: randn([37, 48]), m: randn([37, 48], 0.1), v: square(randn([37, 48])) });
  return [
    { name: 'adamw two steps, clipping active', inputs: inputs(), run: two(true) },
    { name: 'adamw two steps, no clipping', inputs: inputs(), run: two(false) },
  ];
}

const CASES: Case[] = [
  ...matmulCases(), ...normActCases(), ...pattentionCases(), ...layerNormCases(),
  ...attentionPartCases(), ...lossCases(), ...adamwCases(),
];

function uploadAll(be: B, inputs: Record<string, Input>): Record<string, Handle> {
  const out: Record<string, Handle> = {};
  for (const [k, t] of Object.entries(inputs)) {
    out[k] = t.data instanceof Int32Array ? be.uploadInt(t.data, t.shape) : be.upload(Float32Array.from(t.data), t.shape);
  }
  return out;
}

async function compare(be: B, c: Case): Promise<string[]> {
  const want = c.run(cpu, uploadAll(cpu, c.inputs));
  const got = c.run(be, uploadAll(be, c.inputs));
  const errors: string[] = [];
  for (const [name, ref] of Object.entries(want)) {
    expect(got[name].shape).toEqual(ref.shape);
    const [g, w] = [await be.read(got[name]), await cpu.read(ref)];
    const e = name.startsWith('grad') ? checkGrads(name, g, w, tol.grads) : checkValues(name, g, w, tol.values);
    if (e) errors.push(e);
  }
  return errors;
}

function behaviour(be: B): void {
  test('reshape views share storage; storage lives until its last handle is disposed', async () => {
    const t = be.upload(Float32Array.of(1, 2, 3, 4, 5, 6), [2, 3]);
    const v = be.reshape(t, [3, 2]);
    be.dispose(t);
    const y = be.ops.add(v, v);
    expect(Array.from(await be.read(y))).toEqual([2, 4, 6, 8, 10, 12]);
    be.dispose(v);
    expect(() => be.ops.add(v, v)).toThrow(UserError);
  });
  test('a tensor disposed right after use still feeds the kernels launched before', async () => {
    const x = be.upload(Float32Array.of(1, -2, 3), [3]);
    const y = be.ops.add(x, x);
    be.dispose(x);
    const z = be.ops.add(y, y);
    be.dispose(y);
    expect(Array.from(await be.read(z))).toEqual([4, -8, 12]);
  });
  test('zeros, uploadInt read back as f32, bad ids throw UserError', async () => {
    expect(Array.from(await be.read(be.zeros([2, 2])))).toEqual([0, 0, 0, 0]);
    const ids = be.uploadInt(Int32Array.of(3, 0, 7), [3]);
    expect(Array.from(await be.read(ids))).toEqual([3, 0, 7]);
    expect(() => be.ops.embedding(ids, be.zeros([5, 4]))).toThrow(UserError);
    expect(() => be.ops.matmul(be.zeros([2, 3]), be.zeros([4, 5]), false, false)).toThrow(UserError);
  });
}

async function load(mode: string): Promise<Loaded & { error?: unknown }> {
  const name = `gpujs-${mode}`;
  try {
    return await tryLoad(name);
  } catch (e) {
    return { name, backend: null, reason: 'required', error: e };
  }
}

for (const mode of GPUJS_MODES) {
  const loaded = await load(mode);
  if (loaded.error) {
    test(`${loaded.name} is required but unavailable`, () => {
      throw loaded.error;
    });
    continue;
  }
  describe.skipIf(!loaded.backend)(`${loaded.name}${loaded.backend ? '' : ` (skipped: ${loaded.reason})`}`, () => {
    const be = loaded.backend!;
    test.each(CASES.map((c) => [c.name, c] as const))('%s', async (_n, c) => {
      expect(await compare(be, c)).toEqual([]);
    });
    behaviour(be);
    test('destroy', async () => {
      await be.destroy();
    });
  });
}
