// GPU.js kernels for the dense linear algebra: batched matmul, add, the head permutation,
// the sum of squares, plus the upload and zero kernels that put host data on the device.
// Omits: tiling (GPU.js has no workgroup shared memory), so matmul is one dot per thread.
//
// Every kernel writes one flat output element per thread (this.thread.x) and reads its
// inputs by flat index; shapes arrive as kernel constants, so each shape compiles once.
// NOTE: sums accumulate in float32 in the kernel's loop order (the CPU reference uses
// float64); measured errors are in spec/backends/gpujs.md.

import { numel } from '../../../src/backend.ts';
import { check } from '../../../src/errors.ts';
import type { GHandle, Runtime } from '../runtime.ts';
import { expectRank, f32, matmulShape, sameShape } from '../shapes.ts';
import { blocks, divmod, inv, kernelSource, sum } from './snippets.ts';

const COPY = kernelSource(['a'], 'return a[this.thread.x];');
const FILL = kernelSource(['c'], 'return c;');

/** A device tensor holding the host data (uploaded once, then resident). */
export function upload(rt: Runtime, data: Float32Array, shape: readonly number[]): GHandle {
  const size = numel(shape);
  check(data.length === size, `tensor data has ${data.length} elements, shape [${shape}] needs ${size}`);
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

/** C [..., M, N] = op(A)·op(B); strides turn the transposes into index arithmetic. */
export function matmul(rt: Runtime, a: GHandle, b: GHandle, transA: boolean, transB: boolean): GHandle {
  const { lead, M, K, N, bBatched } = matmulShape(a, b, transA, transB);
  const c = blocks(inv({
    MN: M * N, N, K,
    aB: M * K, aI: transA ? 1 : K, aK: transA ? M : 1, // A stored (M,K) or (K,M)
    bB: bBatched ? K * N : 0, bJ: transB ? K : 1, bK: transB ? 1 : N, // B stored (K,N) or (N,K)
  }, 'MN', 'N'), 'K');
  const key = `matmul:${a.shape}:${b.shape}:${transA}:${transB}`;
  if (K === 0) return fill(rt, [...lead, M, N], 0);
  return rt.launch(key, MATMUL, [...lead, M, N], c, [a, b]);
}

const ADD = kernelSource(['a', 'b'], 'return a[this.thread.x] + b[this.thread.x];');

export function add(rt: Runtime, a: GHandle, b: GHandle): GHandle {
  f32(a, 'add a');
  f32(b, 'add b');
  check(sameShape(a.shape, b.shape), `add: shapes differ: [${a.shape}] vs [${b.shape}]`);
  return rt.launch(`add:${a.size}`, ADD, a.shape, {}, [a, b]);
}

const PERMUTE = kernelSource(['x'], `${divmod('r1', 'd', 'this.thread.x', 'D')}
  ${divmod('r2', 'b', 'r1', 'B')}
  ${divmod('a', 'c', 'r2', 'C')}
  return x[((a * this.constants.B + b) * this.constants.C + c) * this.constants.D + d];`);

/** out [a, c, b, d] = x [a, b, c, d]; each out element gathers its source. */
export function permute0213(rt: Runtime, x: GHandle): GHandle {
  expectRank(f32(x, 'permute0213 x'), 4, 'permute0213 x');
  const [A, B, C, D] = x.shape;
  // out (A, C, B, D): the flat out index splits into (a, c, b, d), innermost first.
  const k = inv({ D, B, C }, 'D', 'B', 'C');
  return rt.launch(`permute:${x.shape}`, PERMUTE, [A, C, B, D], k, [x]);
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
  ts.forEach((t, i) => f32(t, `sumSquares [${i}]`));
  const parts = ts.filter((t) => t.size > 0).map((t) => sumSquaresOne(rt, t));
  if (parts.length === 0) return fill(rt, [], 0);
  let total = parts[0];
  for (const p of parts.slice(1)) {
    const next = add(rt, total, p);
    rt.free(total.store.data);
    rt.free(p.store.data);
    total = next;
  }
  return total;
}
