// The WebGPU backend next to the CPU reference, for kernel tests: one adapter per test file,
// the same seeded data uploaded to both, closeness at the gpu_f32 tolerances, and the kernel
// style switch. `gpu` is null (with `reason`) where no adapter exists.

import { afterAll, beforeAll, expect } from 'vitest';
import { createCpuBackend, type CpuHandle } from '../../backends/cpu.ts';
import { BackendUnavailable } from '../../backends/index.ts';
import type { Backend, Handle, Shape } from '../../src/backend.ts';
import { attention } from '../../src/compose.ts';
import { Rng } from '../../src/rng.ts';
import { checkGrads, checkValues } from './compare.ts';

const VALUES = { rtol: 1e-3, atol: 1e-4 };
const GRADS = { rel: 1e-2, maxRel: 1e-4 };

export type WG = Awaited<ReturnType<typeof import('../../backends/webgpu/index.ts')['createWebGPUBackend']>>;

async function load(): Promise<{ gpu: WG | null; reason: string }> {
  try {
    const { createWebGPUBackend } = await import('../../backends/webgpu/index.ts');
    return { gpu: await createWebGPUBackend(), reason: '' };
  } catch (e) {
    if (!(e instanceof BackendUnavailable)) throw e;
    console.warn(`[skip] webgpu kernel tests: ${e.message}`);
    return { gpu: null, reason: e.message };
  }
}

export const { gpu, reason } = await load();
export const cpu = createCpuBackend();
export const rng = new Rng(20240611);

export function randn(n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * scale;
  return a;
}
export function size(shape: Shape): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** The same data on both backends. */
export function both(data: Float32Array, shape: Shape): [Handle, CpuHandle] {
  return [gpu!.upload(data, shape), cpu.upload(data, shape)];
}
export function bothInt(data: Int32Array, shape: Shape): [Handle, CpuHandle] {
  return [gpu!.uploadInt(data, shape), cpu.uploadInt(data, shape)];
}
export function rand(shape: Shape, scale = 1): [Handle, CpuHandle] {
  return both(randn(size(shape), scale), shape);
}

export async function expectClose(name: string, g: Handle, c: CpuHandle, grads = false): Promise<void> {
  expect(g.shape).toEqual(c.shape);
  const got = await gpu!.read(g as never), want = await cpu.read(c);
  const err = grads ? checkGrads(name, got, want, GRADS) : checkValues(name, got, want, VALUES);
  expect(err).toBeNull();
}

export const G = () => gpu as unknown as Backend<Handle>;
export const C = () => cpu as unknown as Backend<Handle>;


/** Runs the enclosing describe's tests with the given kernel style, restoring the default. */
export function useStyle(style: 'gpu' | 'cpu'): void {
  let prev: 'gpu' | 'cpu' = style;
  beforeAll(() => {
    prev = gpu!.style;
    gpu!.style = style;
  });
  afterAll(() => {
    gpu!.style = prev;
  });
}

/** Fused (or composed) causal attention on q, k, v of this shape, forward and backward. */
export async function attentionCase(shape: Shape): Promise<void> {
  const [qg, qc] = rand(shape), [kg, kc] = rand(shape), [vg, vc] = rand(shape);
  const fg = attention(G(), qg, kg, vg), fc = attention(C(), qc, kc, vc);
  await expectClose('out', fg.out, fc.out as CpuHandle);
  const [dg, dc] = rand(shape);
  const bg = fg.saved.backward(dg), bc = fc.saved.backward(dc);
  await expectClose('dQ', bg.dQ, bc.dQ as CpuHandle, true);
  await expectClose('dK', bg.dK, bc.dK as CpuHandle, true);
  await expectClose('dV', bg.dV, bc.dV as CpuHandle, true);
}
