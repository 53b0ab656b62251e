// Backend.memory on the CPU reference (the WebGPU backend runs the same check in
// test/webgpu.test.ts): what the count includes, and that a fused op's saved state counts.

import { describe, it } from 'vitest';
import { createCpuBackend } from '../backends/cpu.ts';
import { expectMemoryCounts } from './helpers/memory.ts';

describe('cpu Backend.memory', () => {
  it('counts uploads, outputs and a fused Pattention saved state; views are free; dispose subtracts', () => {
    expectMemoryCounts(createCpuBackend());
  });
});
