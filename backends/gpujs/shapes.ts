// Shape bookkeeping for the GPU.js kernels: the shared checks of src/shapes.ts, plus the
// host ids of an i32 tensor (GPU.js keeps a host copy of every id tensor).
// Omits: value checks (those happen on the device, or on host ids where they are known).

import { check } from '../../src/errors.ts';
import { ofType } from '../../src/shapes.ts';
import type { GHandle } from './runtime.ts';

export {
  causalDims, checkNormAct, checkRotary, expectRank, expectShape, f32, last, live, matmulShape,
  pattentionSizes, rowsOf, sameShape, type MatmulShape,
} from '../../src/shapes.ts';

/** The host ids of an i32 tensor. */
export function i32(t: GHandle, what: string): Int32Array {
  ofType(t, 'i32', what);
  check(t.store.data.ints !== undefined, `${what}: expected an i32 tensor with host ids`);
  return t.store.data.ints;
}
