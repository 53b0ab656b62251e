// The shared parity suite (suite.ts) on the gpujs-webgpu backend.
import { loadBackend } from '../../backends/index.ts';
import { tryLoad } from '../helpers/backends.ts';
import { defineParitySuite } from './suite.ts';

defineParitySuite(await tryLoad('gpujs-webgpu'), { cpuReference: () => loadBackend('cpu') });
