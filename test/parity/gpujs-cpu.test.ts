// The shared parity suite (suite.ts) on the gpujs-cpu backend.
import { loadBackend } from '../../backends/index.ts';
import { tryLoad } from '../helpers/backends.ts';
import { defineParitySuite } from './suite.ts';

defineParitySuite(await tryLoad('gpujs-cpu'), { cpuReference: () => loadBackend('cpu') });
