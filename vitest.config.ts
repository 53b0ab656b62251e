import { defineConfig } from 'vitest/config';

// Two projects, together every test file once: `quick` is the CPU reference's unit and property
// tests (the edit-test loop: `npm run test:quick`); `slow` is what needs an accelerator backend,
// PyTorch or a CLI child process per case, and the end-to-end experiment, kit and convert runs.
// `npm test` runs both.
const SLOW = [
  'test/webgpu*.test.ts',
  'test/gpujs*.test.ts',
  'test/parity/webgpu.test.ts',
  'test/parity/gpujs-*.test.ts',
  'test/tfjs_model.test.ts',
  'test/torch-*.test.ts',
  'test/golden-drift.test.ts',
  'test/cli*.test.ts',
  'test/train/cli*.test.ts',
  'test/train/demo.test.ts',
  'test/train/demo-safety.test.ts',
  'test/conformance*.test.ts',
  'test/convert*.test.ts',
  'test/scaling*.test.ts',
  'test/decode-backends.test.ts',
];

export default defineConfig({
  test: {
    setupFiles: ['test/setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Backends own native resources (Dawn, GL); forks isolate them from each other.
    pool: 'forks',
    projects: [
      { extends: true, test: { name: 'quick', include: ['test/**/*.test.ts'], exclude: SLOW } },
      { extends: true, test: { name: 'slow', include: SLOW } },
    ],
  },
});
