// The WebGPU backend for its test files, typed (its kernel `style` and `maxBinding` are
// settable): one adapter per file, or null with the reason where Dawn or an adapter is missing.
// test/webgpu.test.ts fails when TOKENFORMER_REQUIRE names webgpu and it is null.

import { afterAll, beforeAll } from 'vitest';
import { isUnavailable, reasonOf } from '../helpers/backends.ts';
import type { WebGPUBackend } from '../../backends/webgpu/index.ts';

export type KernelStyle = WebGPUBackend['style'];
export const STYLES: readonly KernelStyle[] = ['gpu', 'cpu'];

export async function loadWebGPU(): Promise<{ gpu: WebGPUBackend | null; reason: string }> {
  try {
    const { createWebGPUBackend } = await import('../../backends/webgpu/index.ts');
    return { gpu: await createWebGPUBackend(), reason: '' };
  } catch (e) {
    const reason = reasonOf(e);
    if (!isUnavailable(e)) throw e;
    console.warn(`[skip] webgpu: ${reason}`);
    return { gpu: null, reason };
  }
}

/** Runs the enclosing describe's tests in the given kernel style, restoring the previous one. */
export function useStyle(gpu: WebGPUBackend | null, style: KernelStyle): void {
  let prev = style;
  beforeAll(() => {
    prev = gpu!.style;
    gpu!.style = style;
  });
  afterAll(() => {
    gpu!.style = prev;
  });
}
