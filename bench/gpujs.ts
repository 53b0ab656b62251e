// GPU.js in each available mode: matmul GFLOP/s and Pattention forward+backward time, with
// the CPU reference on the same shapes for the ratio; plus `precisionGpujs`, the measured
// error of each mode against the CPU reference (the figures in spec/backends/gpujs.md).
// Omits: the whole-model throughput (bench/model.ts runs that on every backend).
// Run alone: `node --import tsx bench/gpujs.ts [--precision]` (headlessgl under xvfb-run -a).

import { pathToFileURL } from 'node:url';
import { GPUJS_MODES } from '../backends/index.ts';
import type { Backend, Handle, NormActParams, Variant } from '../src/backend.ts';
import { pattention } from '../src/compose.ts';
import { TokenFormer } from '../src/model.ts';
import { initParams } from '../src/params.ts';
import { Rng } from '../src/rng.ts';
import { tryLoad } from '../test/helpers/backends.ts';
import { loadManifest } from '../test/helpers/golden.ts';
import { BENCH_BATCH, BENCH_CONFIG, BENCH_SEQ, timeIt } from './model.ts';
import type { BenchRow } from './types.ts';

type B = Backend<Handle>;
/** matmul M = K = N (env GPUJS_BENCH_MM overrides, e.g. on a real GPU). */
const MM = Number(process.env.GPUJS_BENCH_MM ?? 256);
/** Pattention shape of the bench config's FFN layer: N = B·T tokens, n = ffn slots. */
const PA = { N: BENCH_BATCH * BENCH_SEQ, dIn: BENCH_CONFIG.hiddenSize, n: BENCH_CONFIG.ffnSlots, dOut: BENCH_CONFIG.hiddenSize };
const PA_PARAMS: NormActParams = { variant: 'l2_norm_gelu', normN: PA.n };

function randn(rng: Rng, n: number, std = 1): Float32Array {
  const a = new Float32Array(n);
  rng.fillNormal(a, std);
  return a;
}

/** matmul GFLOP/s and Pattention fwd+bwd ms on one backend (readback of the result included). */
async function benchOne(be: B, reps: number): Promise<BenchRow[]> {
  const rng = new Rng(7);
  const a = be.upload(randn(rng, MM * MM), [MM, MM]), b = be.upload(randn(rng, MM * MM), [MM, MM]);
  const mm = await timeIt(async () => {
    const c = be.ops.matmul(a, b, false, false);
    await be.read(c);
    be.dispose(c);
  }, reps);
  const x = be.upload(randn(rng, PA.N * PA.dIn), [PA.N, PA.dIn]);
  const k = be.upload(randn(rng, PA.n * PA.dIn, 0.1), [PA.n, PA.dIn]);
  const v = be.upload(randn(rng, PA.n * PA.dOut, 0.1), [PA.n, PA.dOut]);
  const d = be.upload(randn(rng, PA.N * PA.dOut), [PA.N, PA.dOut]);
  const pa = await timeIt(async () => {
    const f = pattention(be, x, k, v, PA_PARAMS);
    const g = f.saved.backward(d);
    await be.read(g.dK);
    for (const t of [f.out, g.dX, g.dK, g.dV]) be.dispose(t);
  }, reps);
  for (const t of [a, b, x, k, v, d]) be.dispose(t);
  const paFlops = 3 * (2 * PA.N * PA.dIn * PA.n + 2 * PA.N * PA.n * PA.dOut); // fwd + 2× for bwd
  const paName = `pattention fwd+bwd N${PA.N} d${PA.dIn} n${PA.n}`;
  return [
    { name: `matmul ${MM}³`, backend: be.name, value: (2 * MM ** 3) / mm / 1e9, unit: 'GFLOP/s' },
    { name: paName, backend: be.name, value: pa * 1e3, unit: 'ms' },
    { name: paName, backend: be.name, value: paFlops / pa / 1e9, unit: 'GFLOP/s' },
  ];
}

/** Each GPU.js mode that loads here, and the CPU reference, on the same shapes. */
export async function benchGpujs(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const name of ['cpu', ...GPUJS_MODES.map((m) => `gpujs-${m}`)]) {
    const l = await tryLoad(name);
    if (!l.backend) continue; // tryLoad printed why
    rows.push(...(await benchOne(l.backend, name === 'gpujs-cpu' || name === 'cpu' ? 1 : 3)));
    await l.backend.destroy();
  }
  return rows;
}

const TOL = loadManifest().tolerances.gpu_f32;

/**
 * Worst errors of got vs ref: absolute, relative to max|ref|, and the share of the gpu_f32
 * tolerance used (max over elements of |x − ref| / bound; ≤ 1 passes): the values bound
 * atol + rtol·|ref|, or for gradients rel·|ref| + maxRel·max|ref|.
 */
function errors(got: Float32Array, ref: Float32Array, grad: boolean) {
  let maxRef = 0;
  for (let i = 0; i < ref.length; i++) maxRef = Math.max(maxRef, Math.abs(ref[i]));
  let maxAbs = 0, tolUse = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(got[i] - ref[i]);
    const bound = grad ? TOL.grads.rel * Math.abs(ref[i]) + TOL.grads.maxRel * maxRef : TOL.values.atol + TOL.values.rtol * Math.abs(ref[i]);
    maxAbs = Math.max(maxAbs, Number.isNaN(d) ? Infinity : d);
    tolUse = Math.max(tolUse, Number.isNaN(d) ? Infinity : d / bound);
  }
  return { maxAbs, rel: maxAbs / maxRef, tolUse };
}

type Named = Record<string, Handle>;

type Err = ReturnType<typeof errors>;

function worstOf(es: Err[]): Err {
  return es.reduce((w, e) => ({
    maxAbs: Math.max(w.maxAbs, e.maxAbs), rel: Math.max(w.rel, e.rel), tolUse: Math.max(w.tolUse, e.tolUse),
  }), { maxAbs: 0, rel: 0, tolUse: 0 });
}

/** The same computation on be and the CPU reference; the error of each output (grads: d*, sequential.*). */
async function measureEach(be: B, cpu: B, run: (b: B) => Named): Promise<Record<string, Err>> {
  const [g, r] = [run(be), run(cpu)];
  const out: Record<string, Err> = {};
  for (const k of Object.keys(r)) out[k] = errors(await be.read(g[k]), await cpu.read(r[k]), /^(d[A-Z]|sequential)/.test(k));
  return out;
}

async function measure(be: B, cpu: B, run: (b: B) => Named): Promise<Err> {
  return worstOf(Object.values(await measureEach(be, cpu, run)));
}

/** Measured error of each GPU.js mode vs the CPU reference: matmul, Pattention, whole model. */
export async function precisionGpujs(): Promise<Record<string, Record<string, Err>>> {
  const cpu = (await tryLoad('cpu')).backend!;
  const out: Record<string, Record<string, Err>> = {};
  for (const mode of GPUJS_MODES) {
    const be = (await tryLoad(`gpujs-${mode}`)).backend;
    if (!be) continue;
    const rng = new Rng(11);
    const res: Record<string, Err> = {};
    const A = randn(rng, MM * MM), Bm = randn(rng, MM * MM);
    res[`matmul ${MM}³`] = await measure(be, cpu, (b) => ({ c: b.ops.matmul(b.upload(A, [MM, MM]), b.upload(Bm, [MM, MM]), false, false) }));
    const X = randn(rng, PA.N * PA.dIn), K = randn(rng, PA.n * PA.dIn, 0.1), V = randn(rng, PA.n * PA.dOut, 0.1), D = randn(rng, PA.N * PA.dOut);
    for (const variant of ['l2_norm_gelu', 'gelu_l2_norm', 'softmax'] as Variant[]) {
      const p = { variant, normN: PA.n };
      res[`pattention ${variant}`] = await measure(be, cpu, (b) => {
        const [x, k, v] = [b.upload(X, [PA.N, PA.dIn]), b.upload(K, [PA.n, PA.dIn]), b.upload(V, [PA.n, PA.dOut])];
        const f = pattention(b, x, k, v, p);
        const g = f.saved.backward(b.upload(D, [PA.N, PA.dOut]));
        return { out: f.out, dX: g.dX, dK: g.dK, dV: g.dV };
      });
    }
    const weights = initParams(BENCH_CONFIG, new Rng(3));
    const ids = Int32Array.from({ length: BENCH_BATCH * BENCH_SEQ }, () => rng.int(BENCH_CONFIG.vocabSize));
    const tg = Int32Array.from({ length: BENCH_BATCH * BENCH_SEQ }, () => rng.int(BENCH_CONFIG.vocabSize));
    const shape = [BENCH_BATCH, BENCH_SEQ];
    const model = (b: B) => {
      const m = TokenFormer.fromHost(b, BENCH_CONFIG, weights);
      const f = m.forward(b.uploadInt(ids, shape), b.uploadInt(tg, shape));
      return { logits: f.logits, loss: f.loss!, ...Object.fromEntries(m.backward(f)) };
    };
    const { logits, loss, ...grads } = await measureEach(be, cpu, model);
    res['model logits'] = logits;
    res['model loss'] = loss;
    res['model every gradient'] = worstOf(Object.values(grads));
    out[mode] = res;
    await be.destroy();
  }
  return out;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const t0 = performance.now();
  for (const r of await benchGpujs()) console.log(`${r.name.padEnd(40)} ${r.backend.padEnd(18)} ${r.value.toPrecision(4).padStart(10)} ${r.unit}`);
  console.log(`bench ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  if (process.argv.includes('--precision')) {
    for (const [mode, res] of Object.entries(await precisionGpujs())) {
      for (const [k, e] of Object.entries(res)) {
        console.log(`${mode.padEnd(11)} ${k.padEnd(30)} maxAbs ${e.maxAbs.toExponential(2)}  maxAbs/max|ref| ${e.rel.toExponential(2)}  gpu_f32 tolerance used ${(100 * e.tolUse).toFixed(1)}%`);
      }
    }
  }
}
