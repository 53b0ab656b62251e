// The matmul when an operand is larger than one storage binding (maxStorageBufferBindingSize,
// e.g. a tied 50304 × 768 embedding, or logits of N × 50304): C is computed in blocks
// (M range × N range), each from a K range of A and B at a time, every operand bound as a
// window (mem.window: an aligned sub-range of its buffer) and indexed with its own element
// offset and row stride; K ranges after the first accumulate into C.
// Omits: the Θ prologue (Pattention's operands are far below the limit), the rowcast
// kernels (CPU adapters without 8-wide subgroups use the strided tiled kernel here).

import type { MatmulDims } from '../../../src/backend.ts';
import type { GHandle } from '../buffers.ts';
import { kernelDef, type Env } from './common.ts';
import { matmulWGSL } from './matmul_tiled.ts';
import { sgGrid, sgShape, subgroupWGSL } from './matmul_subgroup.ts';

const tn = (tA: boolean, tB: boolean) => `${tA ? 'T' : 'N'}${tB ? 'T' : 'N'}`;

/** Block sizes (rows of C, columns of C, K) whose operand windows each fit one binding. */
interface Block {
  mc: number;
  nc: number;
  kc: number;
}

/** Elements a window of each operand spans for block b (row-major, ld = stored row length). */
function spans(d: MatmulDims, M: number, b: Block): [number, number, number] {
  const { N, K, transA, transB } = d;
  const a = transA ? (b.kc - 1) * M + b.mc : (b.mc - 1) * K + b.kc;
  const bb = transB ? (b.nc - 1) * K + b.kc : (b.kc - 1) * N + b.nc;
  return [a, bb, (b.mc - 1) * N + b.nc];
}

/**
 * Halves the dimension that sets the size of the largest window over the limit (the stored
 * rows of that operand first, then its row length), until every window fits. N and K ranges
 * stay multiples of 4 when N and K are (the vec4 kernels); throws when nothing fits.
 */
function pickBlock(env: Env, d: MatmulDims, M: number): Block {
  const limit = env.ctx.maxBinding / 4 - env.ctx.bindAlign / 4; // slack: an aligned start
  const q4 = (n: number) => (n % 4 === 0 ? 4 : 1);
  const half = (x: number, q: number) => Math.max(q, Math.ceil(x / 2 / q) * q);
  const b: Block = { mc: M, nc: d.N, kc: d.K };
  const qn = q4(d.N), qk = q4(d.K);
  for (;;) {
    const s = spans(d, M, b);
    const worst = s.indexOf(Math.max(...s));
    if (s[worst] <= limit) return b;
    // [outer, inner] dims of the worst operand's stored layout
    const order: (keyof Block)[][] = [
      d.transA ? ['kc', 'mc'] : ['mc', 'kc'],
      d.transB ? ['nc', 'kc'] : ['kc', 'nc'],
      ['mc', 'nc'],
    ];
    const dim = order[worst].find((k) => b[k] > (k === 'mc' ? 1 : k === 'nc' ? qn : qk));
    if (!dim) {
      const bytes = (s[worst] + env.ctx.bindAlign / 4) * 4;
      env.ctx.checkBinding(bytes, `a ${['A', 'B', 'C'][worst]} block of the [${M}, ${d.K}] × [${d.K}, ${d.N}] matmul`);
      throw new Error('unreachable');
    }
    b[dim] = half(b[dim], dim === 'mc' ? 1 : dim === 'nc' ? qn : qk);
  }
}

/** Encodes c = op(a)·op(b) block by block (see the file comment); d.K > 0. */
export function matmulSplit(env: Env, c: GHandle, a: GHandle, b: GHandle, d: MatmulDims): void {
  const { ctx, mem } = env;
  // A shared B and a row-major A: the batch is just more rows of A and C.
  const flat = !d.bBatched && !d.transA;
  const batch = flat ? 1 : d.batch, M = flat ? d.batch * d.M : d.M;
  const { N, K, transA, transB } = d;
  const blk = pickBlock(env, d, M);
  const sA = M * K, sB = d.bBatched ? K * N : 0, sC = M * N;
  const [ldA, ldB] = [transA ? M : K, transB ? K : N];
  for (let z = 0; z < batch; z++) {
    for (let m0 = 0; m0 < M; m0 += blk.mc) {
      const m1 = Math.min(M, m0 + blk.mc);
      for (let n0 = 0; n0 < N; n0 += blk.nc) {
        const n1 = Math.min(N, n0 + blk.nc);
        for (let k0 = 0; k0 < K; k0 += blk.kc) {
          const k1 = Math.min(K, k0 + blk.kc);
          const at = (base: number, r0: number, c0: number, r1: number, c1: number, ld: number) =>
            [base + r0 * ld + c0, base + (r1 - 1) * ld + c1] as const;
          const wa = mem.window(a, ...(transA ? at(z * sA, k0, m0, k1, m1, M) : at(z * sA, m0, k0, m1, k1, K)));
          const wb = mem.window(b, ...(transB ? at(z * sB, n0, k0, n1, k1, K) : at(z * sB, k0, n0, k1, n1, N)));
          const wc = mem.window(c, ...at(z * sC, m0, n0, m1, n1, N));
          const dims = { mc: m1 - m0, nc: n1 - n0, kc: k1 - k0 };
          const binds = [wa.bind, wb.bind, wc.bind];
          const acc = k0 > 0;
          const sg = ctx.style === 'cpu' && ctx.subgroup8 && dims.nc % 4 === 0 && dims.kc % 4 === 0 &&
            [wa.shift, wb.shift, wc.shift, ldA, ldB, N].every((x) => x % 4 === 0);
          if (sg) {
            const bd: MatmulDims = { batch: 1, M: dims.mc, N: dims.nc, K: dims.kc, transA, transB, bBatched: false };
            const s = sgShape(bd);
            const key = `matmul_sg_${tn(transA, transB)}_${s.RS}x${s.G}x${s.lanes}${acc ? '_acc' : ''}`;
            const k = kernelDef(key, 'u'.repeat(16), () => subgroupWGSL(transA, transB, s, acc));
            // z0 = 1 with zh = 2³² − 1: every operand starts at its `inner` offset (its shift).
            const params = [dims.mc, dims.nc, dims.kc, 1, 0xffffffff, 0, wa.shift, ldA, 0, wb.shift, ldB, 0, wc.shift, N, 0, 0];
            ctx.run(k, binds, params, [...sgGrid(bd, s), 1]);
          } else {
            const key = `matmul_${tn(transA, transB)}_none_str${acc ? '_acc' : ''}`;
            const k = kernelDef(key, 'u'.repeat(12), () => matmulWGSL(transA, transB, 'none', true, acc));
            const params = [dims.mc, dims.nc, dims.kc, wa.shift, wb.shift, wc.shift, ldA, ldB, N, 0, 0, 0];
            ctx.run(k, binds, params, [Math.ceil(dims.nc / 64), Math.ceil(dims.mc / 64), 1]);
          }
        }
      }
    }
  }
}
