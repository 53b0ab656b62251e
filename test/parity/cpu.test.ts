// The shared parity suite (suite.ts) on the cpu backend.
import { tryLoad } from '../helpers/backends.ts';
import { defineParitySuite } from './suite.ts';

defineParitySuite(await tryLoad('cpu'));
