// GPU.js kernels for the dense linear algebra: batched matmul, add, the head permutation,
// the sum of squares, plus the upload and zero kernels that put host data on the device.
// Omits: tiling (GPU.js has no workgroup shared memory), so matmul is one dot per thread.
//
// Every kernel writes one flat output element per thread (this.thread.x) and reads its
// inputs by flat index; shapes arrive as kernel constants, so each shape compiles once.
// Sizes come checked from the op table (src/op-specs.ts); nothing here validates.
// NOTE: sums accumulate in float32 in the kernel's loop order (the CPU reference uses
// float64); measured errors are in spec/backends/gpujs.md.

import type { ElementwiseSizes, MatmulSizes, PermuteSizes } from '../../../src/backend.ts';
import type { GHandle, Runtime } from '../runtime.ts';
import { blocks, divmod, inv, kernelSource, sum } from './snippets.ts';

const COPY = kernelSource(['a'], 'return a[this.thread.x];');
const FILL = kernelSource(['c'], 'return c;');

/** A device tensor holding the host data (uploaded once, then resident); data.length = numel(shape). */
export function upload(rt: Runtime, data: Float32Array, shape: readonly number[]): GHandle {
  const size = data.length;
  const host = Float32Array.from(data);
  if (rt.mode === 'cpu' || rt.mode === 'webasm') {
    // These modes keep tensors as Float32Array already: no kernel needed.
    const out = rt.make(shape);
    if (size > 0) out.store.data.v = host;
    return out;
  }
  return rt.launch(`upload:${size}`, COPY, shape, {}, [host]);
}

/** A tensor of `shape` filled with c. */
export function fill(rt: Runtime, shape: readonly number[], c: number): GHandle {
  return rt.launch(`fill:${shape}`, FILL, shape, {}, [c]);
}

const MATMUL = kernelSource(['a', 'b'], `${divmod('bt', 'ij', 'this.thread.x', 'MN')}
  ${divmod('i', 'j', 'ij', 'N')}
  const ai = bt * this.constants.aB + i * this.constants.aI;
  const bi = bt * this.constants.bB + j * this.constants.bJ;
  ${sum('acc', 'k', 'K', 'a[ai + k * this.constants.aK] * b[bi + k * this.constants.bK]')}
  return acc;`);

/** C = op(A)·op(B), shape z.out; strides turn the transposes into index arithmetic. */
export function matmul(rt: Runtime, z: MatmulSizes, a: GHandle, b: GHandle): GHandle {
  const { batch, M, K, N, transA, transB, bBatched } = z;
  const c = blocks(inv({
    MN: M * N, N, K,
    aB: M * K, aI: transA ? 1 : K, aK: transA ? M : 1, // A stored (M,K) or (K,M)
    bB: bBatched ? K * N : 0, bJ: transB ? K : 1, bK: transB ? 1 : N, // B stored (K,N) or (N,K)
  }, 'MN', 'N'), 'K');
  // Every constant above follows from these, and the output size from batch·M·N.
  const key = `matmul:${batch}:${M}:${K}:${N}:${transA}:${transB}:${bBatched}`;
  if (K === 0) return fill(rt, z.out, 0);
  return rt.launch(key, MATMUL, z.out, c, [a, b]);
}

/** The sizes of a plain 2-D product (M, K)·(K, N), either operand stored transposed. */
export function matmul2d(M: number, K: number, N: number, transA: boolean, transB: boolean): MatmulSizes {
  return { batch: 1, M, K, N, transA, transB, bBatched: false, lead: [], out: [M, N] };
}

const ADD = kernelSource(['a', 'b'], 'return a[this.thread.x] + b[this.thread.x];');

export function add(rt: Runtime, z: ElementwiseSizes, a: GHandle, b: GHandle): GHandle {
  return rt.launch(`add:${z.size}`, ADD, z.out, {}, [a, b]);
}

const PERMUTE = kernelSource(['x'], `${divmod('r1', 'd', 'this.thread.x', 'D')}
  ${divmod('r2', 'b', 'r1', 'B')}
  ${divmod('a', 'c', 'r2', 'C')}
  return x[((a * this.constants.B + b) * this.constants.C + c) * this.constants.D + d];`);

/** out [a, c, b, d] = x [a, b, c, d]; each out element gathers its source. */
export function permute0213(rt: Runtime, z: PermuteSizes, x: GHandle): GHandle {
  const { b: B, c: C, d: D } = z;
  // out (A, C, B, D): the flat out index splits into (a, c, b, d), innermost first.
  const k = inv({ D, B, C }, 'D', 'B', 'C');
  return rt.launch(`permute:${x.shape}`, PERMUTE, z.out, k, [x]);
}

/** Elements summed per thread at each level of the sum-of-squares tree. */
const CHUNK = 256;

const PARTIAL = (square: boolean) => kernelSource(['x'], `const o = this.thread.x * ${CHUNK};
  let acc = 0.0;
  for (let k = 0; k < ${CHUNK}; k++) {
    if (o + k < this.constants.n) {
      const e = x[o + k];
      acc += ${square ? 'e * e' : 'e'};
    }
  }
  return acc;`);

/** Σ x² of one tensor → [], as a tree of float32 partial sums of CHUNK elements. */
function sumSquaresOne(rt: Runtime, x: GHandle): GHandle {
  let cur = x, square = true;
  do {
    const parts = Math.ceil(cur.size / CHUNK);
    const next = rt.launch(`partial:${square}:${cur.size}`, PARTIAL(square), parts === 1 ? [] : [parts],
      { n: cur.size }, [cur]);
    if (cur !== x) rt.free(cur.store.data);
    cur = next;
    square = false;
  } while (cur.size > 1);
  return cur;
}

/** Σ x² over every element of every tensor → []. */
export function sumSquares(rt: Runtime, ts: readonly GHandle[]): GHandle {
  const parts = ts.filter((t) => t.size > 0).map((t) => sumSquaresOne(rt, t));
  if (parts.length === 0) return fill(rt, [], 0);
  let total = parts[0];
  for (const p of parts.slice(1)) {
    const next = add(rt, { size: 1, out: [] }, total, p);
    rt.free(total.store.data);
    rt.free(p.store.data);
    total = next;
  }
  return total;
}
