// The contract's matmul and where each product runs: the tiled kernel (matmul_tiled.ts, the
// only one with the Θ prologue) in the 'gpu' style; on CPU adapters the subgroup kernel
// (matmul_subgroup.ts) with 8-wide subgroups, else the rowcast kernels (matmul_rowcast.ts);
// the split path (matmul_split.ts) when an operand is over the binding limit.
// The sizes come checked from the op table (src/op-specs.ts); nothing here validates shapes.
// Omits: autotuning (the kernel follows from the adapter style and the shape alone).

import type { MatmulDims, MatmulSizes } from '../../../src/backend.ts';
import { check } from '../../../src/errors.ts';
import type { GHandle } from '../buffers.ts';
import type { KernelDef } from '../device.ts';
import { kernelDef, type Env } from './common.ts';
import { TRANSPOSE_WGSL, rowcast4WGSL, rowcastGrid, rowcastLanes, rowcastWGSL } from './matmul_rowcast.ts';
import { matmulSplit } from './matmul_split.ts';
import { dense, sgApplies, sgGrid, sgParams, sgShape, subgroupWGSL, type SgShape, type Strided } from './matmul_subgroup.ts';
import { TILE, matmulWGSL, type AXform } from './matmul_tiled.ts';

function getDef(transA: boolean, transB: boolean, xf: AXform): KernelDef {
  return kernelDef(`matmul_${transA ? 'T' : 'N'}${transB ? 'T' : 'N'}_${xf}`, 'uuuuuuuu', () => matmulWGSL(transA, transB, xf));
}

function getRowcast(transA: boolean, transB: boolean, lanes: number, vec: boolean): KernelDef {
  const key = `matmul_rowcast${vec ? '4' : ''}_${transA ? 'T' : 'N'}${transB ? 'T' : 'N'}_${lanes}`;
  return kernelDef(key, 'uuuuuuuu', () => (vec ? rowcast4WGSL(transA, lanes) : rowcastWGSL(transA, transB, lanes)));
}
const TRANSPOSE = kernelDef('transpose', 'uuuu', () => TRANSPOSE_WGSL);

function getSubgroup(transA: boolean, transB: boolean, s: SgShape): KernelDef {
  const key = `matmul_sg_${transA ? 'T' : 'N'}${transB ? 'T' : 'N'}_${s.RS}x${s.G}x${s.lanes}`;
  return kernelDef(key, 'u'.repeat(16), () => subgroupWGSL(transA, transB, s));
}

/** Operand layouts of a subgroup product; dense by default (matmul_subgroup.ts Strided). */
export interface SgLayout {
  zh: number;
  a: Strided;
  b: Strided;
  c: Strided;
}

/** CPU style with 8-wide subgroups, N and K multiples of 4 (matmul_subgroup.ts). */
export function subgroupInto(env: Env, c: GHandle, a: GHandle, b: GHandle, d: MatmulDims, lay?: SgLayout): void {
  const { ctx, mem } = env;
  const s = sgShape(d);
  const [gx, gy] = sgGrid(d, s);
  const k = getSubgroup(d.transA, d.transB, s);
  const binds = [mem.bind(a), mem.bind(b), mem.bind(c)];
  const l = lay ?? {
    zh: 1,
    a: d.transA ? dense(d.K, d.M) : dense(d.M, d.K),
    b: d.transB ? dense(d.N, d.K, !d.bBatched) : dense(d.K, d.N, !d.bBatched),
    c: dense(d.M, d.N),
  };
  for (let z0 = 0; z0 < d.batch; z0 += ctx.maxGroups) {
    ctx.run(k, binds, sgParams(d, z0, l.zh, l.a, l.b, l.c), [gx, gy, Math.min(ctx.maxGroups, d.batch - z0)]);
  }
}

/** CPU style: the vec4 rowcast kernel when N % 4 = 0 (a transposed B is transposed first). */
function rowcastInto(env: Env, c: GHandle, a: GHandle, b: GHandle, d: MatmulDims): void {
  const { ctx, mem } = env;
  const lanes = rowcastLanes(d.N);
  const [gx, gy] = rowcastGrid(d, lanes);
  let bT: GHandle | null = null;
  const vec = d.N % 4 === 0 && (!d.transB || (d.M >= 16 && d.K <= ctx.maxGroups));
  if (vec && d.transB) {
    const nb = d.bBatched ? d.batch : 1;
    bT = mem.alloc([nb, d.K, d.N]); // (K, N) per batch
    for (let z0 = 0; z0 < nb; z0 += ctx.maxGroups) {
      ctx.run(TRANSPOSE, [mem.bind(b), mem.bind(bT)], [d.N, d.K, z0, 0], [Math.ceil(d.N / 64), d.K, Math.min(ctx.maxGroups, nb - z0)]);
    }
  }
  const k = getRowcast(d.transA, d.transB && !vec, lanes, vec);
  const binds = [mem.bind(a), mem.bind(bT ?? b), mem.bind(c)];
  const sA = d.M * d.K, sB = d.bBatched ? d.K * d.N : 0, sC = d.M * d.N;
  for (let z0 = 0; z0 < d.batch; z0 += ctx.maxGroups) {
    ctx.run(k, binds, [d.M, d.N, d.K, sA, sB, sC, z0, 0], [gx, gy, Math.min(ctx.maxGroups, d.batch - z0)]);
  }
  if (bT) mem.dispose(bT);
}

/** True when matmulInto can apply Θ while loading A (the tiled kernel); else materialize. */
export function hasPrologue(env: Env): boolean {
  return env.ctx.style === 'gpu';
}

/** Encodes c = op(xform(a))·op(b); c is (batch, M, N). stats required unless xf = 'none'. */
export function matmulInto(
  env: Env, c: GHandle, a: GHandle, b: GHandle, d: MatmulDims, xf: AXform = 'none', stats?: GHandle,
): void {
  const { ctx, mem } = env;
  // An operand over the binding limit: blocks of windows (matmul_split.ts).
  if (xf === 'none' && !(mem.fits(a) && mem.fits(b) && mem.fits(c))) return matmulSplit(env, c, a, b, d);
  if (ctx.style === 'cpu' && xf === 'none') {
    return ctx.subgroup8 && sgApplies(d) ? subgroupInto(env, c, a, b, d) : rowcastInto(env, c, a, b, d);
  }
  const k = getDef(d.transA, d.transB, xf);
  const [gx, gy] = [Math.ceil(d.N / TILE), Math.ceil(d.M / TILE)];
  // Kept: a device limit (maxComputeWorkgroupsPerDimension), not an op rule.
  check(gx <= ctx.maxGroups && gy <= ctx.maxGroups, () => `matmul: [${d.M}, ${d.N}] output needs a ${gx}×${gy} grid, over ${ctx.maxGroups}`);
  const binds = [mem.bind(a), mem.bind(b), mem.bind(c)];
  if (xf !== 'none') binds.push(mem.bind(stats!));
  const sA = d.M * d.K, sB = d.bBatched ? d.K * d.N : 0, sC = d.M * d.N;
  for (let z0 = 0; z0 < d.batch; z0 += ctx.maxGroups) {
    const gz = Math.min(ctx.maxGroups, d.batch - z0);
    ctx.run(k, binds, [d.M, d.N, d.K, sA, sB, sC, z0, 0], [gx, gy, gz]);
  }
}

/** The contract's matmul: a new tensor z.out = [...lead, M, N]. */
export function matmul(env: Env, z: MatmulSizes, a: GHandle, b: GHandle): GHandle {
  if (z.K === 0) return env.mem.zeros(z.out);
  const c = env.mem.alloc(z.out);
  matmulInto(env, c, a, b, z);
  return c;
}
