// The kernel suite (test/kernels/suite.ts) on the WebGPU backend in both kernel styles: every
// case against the CPU reference at the gpu_f32 tolerances (odd sizes, tile edges, the vec4
// and subgroup variants), and the shared contract. Plus what only WebGPU has: the adapter,
// the buffer pool and its memory count. Skips with a printed reason when no adapter exists, unless
// TOKENFORMER_REQUIRE names webgpu: then the unavailability is a failure.
// Omits: tensors over the binding limit (webgpu-split.test.ts), golden fixtures (test/parity).

import { describe, expect, it } from 'vitest';
import { required } from './helpers/backends.ts';
import { expectMemoryCounts } from './helpers/memory.ts';
import { defineKernelSuite } from './kernels/suite.ts';
import { STYLES, loadWebGPU, useStyle } from './kernels/webgpu-load.ts';

const { gpu, reason } = await loadWebGPU();

describe('webgpu availability', () => {
  // Runs everywhere (a skip here would be the one skipped test of a CI run): it fails only
  // when TOKENFORMER_REQUIRE names webgpu and no adapter could be opened.
  it('is available, or not required (TOKENFORMER_REQUIRE)', () => {
    if (required('webgpu')) expect(gpu, `webgpu is required but unavailable: ${reason}`).not.toBeNull();
    else if (!gpu) console.warn(`[note] webgpu unavailable and not required: ${reason}`);
  });
});

// Both kernel styles run on any adapter: 'gpu' (tiled matmul with the Θ prologue, a
// workgroup per row) and 'cpu' (rowcast matmul, Θ materialized, an invocation per row).
const label = `webgpu (%s style)${gpu ? '' : ` (skipped: ${reason})`}`;
describe.skipIf(!gpu).each(STYLES)(label, (style) => {
  useStyle(gpu, style);

  it('reports its adapter', () => {
    console.log(`webgpu adapter: ${gpu!.adapter}`);
    expect(gpu!.name).toBe('webgpu');
  });

  describe('kernels vs the CPU reference, and the contract', () => {
    defineKernelSuite('webgpu', gpu);
  });

  it('pools buffers: a disposed tensor is reused, reshape keeps storage alive', async () => {
    const be = gpu!;
    const a = be.upload(new Float32Array(4096).fill(1), [64, 64]);
    const r = be.reshape(a, [4096]);
    be.dispose(a);
    expect(await be.read(r)).toHaveLength(4096);
    const buf = r.store.data;
    be.dispose(r);
    const z = be.zeros([4096]);
    expect(z.store.data).toBe(buf);
    expect((await be.read(z)).every((v) => v === 0)).toBe(true);
  });

  it('counts live tensor bytes (Backend.memory), the fused Pattention saved state included', () => {
    expectMemoryCounts(gpu!);
  });
});
