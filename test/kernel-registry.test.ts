// The WebGPU backend's one registry of kernel definitions (backends/webgpu/kernels/common.ts
// kernelDef): a key names one kernel, so reusing it with other params or other WGSL throws.
// Pure host code: needs no adapter, so it runs in the quick project.

import { describe, expect, it } from 'vitest';
import { kernelDef } from '../backends/webgpu/kernels/common.ts';

const wgsl = (n: number) => `@compute @workgroup_size(${n}) fn main() {}`;

describe('kernelDef', () => {
  it('returns the registered definition for a repeated key, building its WGSL once', () => {
    let builds = 0;
    const make = () => {
      builds++;
      return wgsl(64);
    };
    const a = kernelDef('test_registry_same', 'uu', make);
    const b = kernelDef('test_registry_same', 'uu', make);
    expect(b).toBe(a);
    expect(a.wgsl).toBe(wgsl(64));
    expect(builds).toBeLessThanOrEqual(2); // built once, and at most once more to compare on first reuse
  });

  it('refuses a key reused with different params', () => {
    kernelDef('test_registry_params', 'uu', () => wgsl(64));
    expect(() => kernelDef('test_registry_params', 'uuu', () => wgsl(64))).toThrow(/test_registry_params.*params 'uuu'/);
  });

  it('refuses a key reused by a generator whose WGSL differs', () => {
    kernelDef('test_registry_wgsl', 'u', () => wgsl(64));
    expect(() => kernelDef('test_registry_wgsl', 'u', () => wgsl(128))).toThrow(/test_registry_wgsl/);
  });

  it('allows the same WGSL registered from two places', () => {
    const first = kernelDef('test_registry_twice', 'u', () => wgsl(32));
    const again = kernelDef('test_registry_twice', 'u', () => `@compute @workgroup_size(${32}) fn main() {}`);
    expect(again).toBe(first);
  });
});
