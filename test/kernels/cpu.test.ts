// The kernel suite (suite.ts) on the cpu backend: a second CPU backend against the reference
// instance at the 'reference' tolerances, which proves every case runs and is deterministic,
// and the contract's messages against their patterns. In the quick project.
import { describe } from 'vitest';
import { tryLoad } from '../helpers/backends.ts';
import { defineKernelSuite } from './suite.ts';

const { name, backend, reason } = await tryLoad('cpu');
describe.skipIf(!backend)(`kernels on ${name}${backend ? '' : ` (skipped: ${reason})`}`, () => {
  defineKernelSuite(name, backend);
});
