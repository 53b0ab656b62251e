// GPU.js kernels for the token embedding (gather, and its scatter-add backward) and the mean
// cross-entropy with its backward.
// Omits: device-side id validation: ids and targets are i32 tensors whose host copy the
// backend keeps from `uploadInt`, so the CPU reference's own range check (checkIds) throws
// on the host before any launch, with its message. Sizes come checked from the op table.
//
// Dimension legend: N = positions (B·T), V = vocab, C = channels.
// The scatter-add dTable[v] = Σ_{i: ids[i] = v} dOut[i] is written gather-style (GPU.js has
// no atomics): the host sorts positions by id once per ids tensor (a CSR plan: `order`
// [N], `start` [V], `count` [V]), and each (v, c) thread sums its own positions, in
// position order, like the reference.

import type { CrossEntropySizes, EmbeddingSizes } from '../../../src/backend.ts';
import { checkIds } from '../../../src/ops/embedding.ts';
import { hostIds, type GHandle, type Runtime } from '../runtime.ts';
import { blocks, divmod, inv, kernelSource, sum } from './snippets.ts';
import { upload } from './linalg.ts';

const GATHER = kernelSource(['ids', 'table'], `const x = this.thread.x;
  ${divmod('i', 'c', 'x', 'C')}
  return table[ids[i] * this.constants.C + c];`);

export function embedding(rt: Runtime, z: EmbeddingSizes, ids: GHandle, table: GHandle): GHandle {
  const { rows, V, C } = z;
  checkIds(hostIds(ids), V);
  if (rows === 0 || C === 0) return rt.make(z.out);
  return rt.launch(`embed:${rows}:${V}:${C}`, GATHER, z.out, inv({ C }, 'C'), [ids, table]);
}

/** The CSR plan of ids over vocab V, uploaded once and kept with the ids tensor. */
function scatterPlan(rt: Runtime, ids: GHandle, V: number): { plan: GHandle[]; maxCount: number } {
  const slot = ids.store.data;
  const idd = hostIds(ids);
  const count = new Float32Array(V), start = new Float32Array(V);
  for (const id of idd) count[id]++;
  let maxCount = 0;
  for (let v = 1; v < V; v++) start[v] = start[v - 1] + count[v - 1];
  for (let v = 0; v < V; v++) maxCount = Math.max(maxCount, count[v]);
  const key = `csr:${V}`;
  slot.aux ??= new Map();
  let plan = slot.aux.get(key);
  if (!plan) {
    const fill = Float32Array.from(start), order = new Float32Array(idd.length);
    idd.forEach((id, i) => { order[fill[id]++] = i; });
    plan = [upload(rt, order, [idd.length]), upload(rt, start, [V]), upload(rt, count, [V])];
    slot.aux.set(key, plan);
  }
  return { plan, maxCount };
}

const SCATTER = kernelSource(['dOut', 'order', 'start', 'count'], `const x = this.thread.x;
  ${divmod('v', 'c', 'x', 'C')}
  const s = start[v];
  const n = count[v];
  let acc = 0.0;
  for (let k = 0; k < this.constants.maxCount; k++) {
    if (k >= n) { break; }
    acc += dOut[order[s + k] * this.constants.C + c];
  }
  return acc;`);

export function embeddingBackward(rt: Runtime, z: EmbeddingSizes, ids: GHandle, dOut: GHandle): GHandle {
  const { rows, V: vocab, C } = z;
  checkIds(hostIds(ids), vocab);
  if (rows === 0 || C === 0) return upload(rt, new Float32Array(vocab * C), z.out);
  const { plan, maxCount } = scatterPlan(rt, ids, vocab);
  // The loop bound is a constant of the kernel: round it up so batches share kernels.
  const bound = 2 ** Math.ceil(Math.log2(Math.max(1, maxCount)));
  const k = inv({ C, maxCount: bound }, 'C');
  return rt.launch(`scatter:${rows}:${vocab}:${C}:${bound}`, SCATTER, z.out, k, [dOut, ...plan]);
}

/** Per row: lse = m + log Σ e^{l − m}, m the row max. */
const LSE = kernelSource(['logits'], `const o = this.thread.x * this.constants.V;
  let m = logits[o];
  for (let v = 1; v < this.constants.V; v++) { m = Math.max(m, logits[o + v]); }
  ${sum('z', 'v', 'V', 'Math.exp(logits[o + v] - m)')}
  return m + Math.log(z);`);

/** loss = (1/N) Σ_i (lse_i − logit_i,y_i), one thread. */
const LOSS = kernelSource(['logits', 'lse', 'targets'], `${sum('acc', 'i', 'N', 'lse[i] - logits[i * this.constants.V + targets[i]]')}
  return acc / this.constants.N;`);

export function crossEntropy(rt: Runtime, z: CrossEntropySizes, logits: GHandle, targets: GHandle) {
  const { N, V } = z;
  checkIds(hostIds(targets), V, 'target');
  const k = blocks({ N, V }, 'N', 'V');
  const lse = rt.launch(`ceLse:${N}:${V}`, LSE, [N], k, [logits]);
  const loss = rt.launch(`ceLoss:${N}:${V}`, LOSS, [], k, [logits, lse, targets]);
  return { loss, lse };
}

const CE_GRAD = kernelSource(['logits', 'lse', 'targets', 'scale'], `const x = this.thread.x;
  ${divmod('i', 'v', 'x', 'V')}
  let g = Math.exp(logits[x] - lse[i]);
  if (v === targets[i]) { g = g - 1.0; }
  return scale * g;`);

export function crossEntropyBackward(
  rt: Runtime, z: CrossEntropySizes, logits: GHandle, lse: GHandle, targets: GHandle, dLoss: number,
): GHandle {
  const { N, V } = z;
  checkIds(hostIds(targets), V, 'target');
  if (logits.size === 0) return rt.make(logits.shape);
  return rt.launch(`ceGrad:${N}:${V}`, CE_GRAD, logits.shape, inv({ V }, 'V'), [logits, lse, targets, dLoss / N]);
}
