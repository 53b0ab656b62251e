// The same kernel bench in TensorFlow.js (tfjs-core + tfjs-backend-webgpu 4.22) driving the
// same Dawn adapter: matmul GFLOP/s and Pattention forward + backward GFLOP/s, the backward
// from tf.grads (valueAndGrads: one taped forward plus its backward). This is what a JS user would otherwise pick. Run alone: `npx tsx bench/tfjs.ts`.
// Omits: the whole model in tfjs (a kernel-level comparison; bench/model.ts has the model).
// NOTE: tfjs-backend-webgpu registers itself at import time only if `navigator.gpu` exists,
// so Dawn's GPU object is installed as globalThis.navigator.gpu (plus the GPU* globals)
// before the import. tfjs has no exact GELU op: it is built from tf.erf, as PyTorch defines it.

import { BackendUnavailable } from '../backends/index.ts';
import { MATMUL_SHAPES, PATT, bestTime, benchData, label, matmulFlops, pattentionFlops } from './kernels.ts';
import type { BenchRow } from './types.ts';

type Tf = typeof import('@tensorflow/tfjs-core');
type Tensor = import('@tensorflow/tfjs-core').Tensor;

/**
 * tfjs-core's node bundle carries no gradients; `@tensorflow/tfjs` would register them from
 * tfjs-core's ESM build (dist/register_all_gradients.js), whose relative imports have no
 * extensions. This resolve hook adds them (for that directory only), so tf.grads uses
 * tfjs's own gradient definitions, unmodified. Engine and registries are process-global in
 * tfjs, so the ESM copy registers into the same registry the bundle reads.
 */
const RESOLVE_HOOK = `
export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context);
  } catch (e) {
    const inCore = context.parentURL && context.parentURL.includes('/@tensorflow/tfjs-core/dist/');
    if (!inCore || !specifier.startsWith('.')) throw e;
    try { return await next(specifier + '.js', context); } catch { return next(specifier + '/index.js', context); }
  }
}`;

async function registerGradients(): Promise<void> {
  const { register } = await import('node:module');
  register(`data:text/javascript,${encodeURIComponent(RESOLVE_HOOK)}`);
  await import('@tensorflow/tfjs-core/dist/register_all_gradients.js' as string);
}

export async function loadTfWebGPU(): Promise<Tf> {
  const { getGPU } = await import('../backends/webgpu/open.ts');
  const gpu = await getGPU(); // also installs GPUBufferUsage & co. as globals
  const nav = (globalThis as { navigator?: { gpu?: unknown } }).navigator;
  if (nav) {
    if (!nav.gpu) Object.defineProperty(nav, 'gpu', { value: gpu, configurable: true });
  } else {
    Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  }
  const tf = await import('@tensorflow/tfjs-core');
  await import('@tensorflow/tfjs-backend-webgpu');
  await registerGradients();
  if (!(await tf.setBackend('webgpu'))) throw new BackendUnavailable('tfjs-backend-webgpu failed to initialize');
  await tf.ready();
  return tf;
}

/** gelu(x) = x·Φ(x) = 0.5·x·(1 + erf(x/√2)). */
export function gelu(tf: Tf, x: Tensor): Tensor {
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
}

/** Pattention l2_norm_gelu: gelu(S/‖S‖·√n)·V with S = X·Kᵀ. */
function pattention(tf: Tf, x: Tensor, k: Tensor, v: Tensor): Tensor {
  const s = tf.matMul(x, k, false, true);
  const norm = tf.sqrt(tf.sum(tf.square(s), -1, true));
  return tf.matMul(gelu(tf, tf.mul(tf.div(s, norm), Math.sqrt(k.shape[0]))), v);
}

export async function benchTfjs(): Promise<BenchRow[]> {
  const tf = await loadTfWebGPU();
  const name = 'tfjs-webgpu';
  const rows: BenchRow[] = [];
  for (const shape of MATMUL_SHAPES) {
    const [M, K, N] = shape;
    const a = tf.tensor2d(benchData(M * K, 1), [M, K]), b = tf.tensor2d(benchData(K * N, 2), [K, N]);
    const t = await bestTime(async () => {
      const c = tf.matMul(a, b);
      await c.data();
      c.dispose();
    });
    tf.dispose([a, b]);
    rows.push({ name: label.matmul(shape), backend: name, value: matmulFlops(shape) / t / 1e9, unit: 'GFLOP/s' });
  }
  const { N, dIn, n, dOut } = PATT;
  const x = tf.tensor2d(benchData(N * dIn, 3), [N, dIn]);
  const k = tf.tensor2d(benchData(n * dIn, 4), [n, dIn]);
  const v = tf.tensor2d(benchData(n * dOut, 5), [n, dOut]);
  const dy = tf.tensor2d(benchData(N * dOut, 6), [N, dOut]);
  // One taped forward and its backward, as a training step runs them (tf.grads, with the
  // forward's value kept: valueAndGrads).
  const fwdBwd = tf.valueAndGrads((xx: Tensor, kk: Tensor, vv: Tensor) => pattention(tf, xx, kk, vv));
  const t = await bestTime(async () => {
    const { value, grads } = fwdBwd([x, k, v], dy);
    await Promise.all([value, ...grads].map((h) => h.data()));
    tf.dispose([value, ...grads]);
  });
  tf.dispose([x, k, v, dy]);
  rows.push({ name: label.pattention(), backend: name, value: pattentionFlops() / t / 1e9, unit: 'GFLOP/s' });
  tf.engine().reset();
  return rows;
}

if (process.argv[1]?.endsWith('bench/tfjs.ts')) {
  for (const r of await benchTfjs()) console.log(`${r.name.padEnd(44)} ${r.backend.padEnd(26)} ${r.value.toFixed(2)} ${r.unit}`);
}
