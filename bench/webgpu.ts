// Kernel bench of the WebGPU backend: matmul GFLOP/s on a few shapes and fused Pattention
// forward + backward GFLOP/s, next to the CPU reference on the same shapes in the same run
// (and the other kernel style, 'gpu' or 'cpu', for the record). Run alone: `npx tsx bench/webgpu.ts`.
// Omits: the whole model (bench/model.ts) and TensorFlow.js (bench/tfjs.ts).

import { createCpuBackend } from '../backends/cpu.ts';
import type { Backend, Handle, NormActParams } from '../src/backend.ts';
import { MATMUL_SHAPES, PATT, bestTime, benchData, label, matmulFlops, pattentionFlops } from './kernels.ts';
import type { BenchRow } from './types.ts';
import { pattention } from '../src/compose.ts';

type Sync = () => Promise<void>;

async function matmulRow<T extends Handle>(be: Backend<T>, sync: Sync, name: string, shape: readonly [number, number, number]): Promise<BenchRow> {
  const [M, K, N] = shape;
  const a = be.upload(benchData(M * K, 1), [M, K]), b = be.upload(benchData(K * N, 2), [K, N]);
  const t = await bestTime(async () => {
    be.dispose(be.ops.matmul(a, b, false, false));
    await sync();
  });
  be.dispose(a);
  be.dispose(b);
  return { name: label.matmul(shape), backend: name, value: matmulFlops(shape) / t / 1e9, unit: 'GFLOP/s' };
}

async function pattentionRow<T extends Handle>(be: Backend<T>, sync: Sync, name: string): Promise<BenchRow> {
  const { N, dIn, n, dOut } = PATT;
  const p: NormActParams = { variant: 'l2_norm_gelu', normN: n };
  const x = be.upload(benchData(N * dIn, 3), [N, dIn]);
  const k = be.upload(benchData(n * dIn, 4), [n, dIn]);
  const v = be.upload(benchData(n * dOut, 5), [n, dOut]);
  const dO = be.upload(benchData(N * dOut, 6), [N, dOut]);
  const t = await bestTime(async () => {
    const f = pattention(be, x, k, v, p); // the backend's fused pair when it has one
    const g = f.saved.backward(dO);
    for (const h of [f.out, g.dX, g.dK, g.dV]) be.dispose(h);
    await sync();
  });
  for (const h of [x, k, v, dO]) be.dispose(h);
  return { name: label.pattention(), backend: name, value: pattentionFlops() / t / 1e9, unit: 'GFLOP/s' };
}

async function rowsFor<T extends Handle>(be: Backend<T>, sync: Sync, name: string): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const s of MATMUL_SHAPES) rows.push(await matmulRow(be, sync, name, s));
  rows.push(await pattentionRow(be, sync, name));
  return rows;
}

/** WebGPU (both kernel styles) and the CPU reference; throws BackendUnavailable without Dawn. */
export async function benchWebGPU(): Promise<BenchRow[]> {
  const { createWebGPUBackend } = await import('../backends/webgpu/index.ts');
  const gpu = await createWebGPUBackend();
  const rows: BenchRow[] = [];
  try {
    const sync = () => gpu.sync();
    const style = gpu.style;
    rows.push(...(await rowsFor(gpu, sync, 'webgpu')));
    gpu.style = style === 'gpu' ? 'cpu' : 'gpu';
    rows.push(...(await rowsFor(gpu, sync, `webgpu (${gpu.style}-style kernels)`)));
    gpu.style = style;
  } finally {
    await gpu.destroy();
  }
  const cpu = createCpuBackend();
  rows.push(...(await rowsFor(cpu, async () => {}, 'cpu')));
  return rows;
}

if (process.argv[1]?.endsWith('bench/webgpu.ts')) {
  for (const r of await benchWebGPU()) console.log(`${r.name.padEnd(44)} ${r.backend.padEnd(26)} ${r.value.toFixed(2)} ${r.unit}`);
}
