// Runs one op case of a conformance suite on a backend's kernels: the forward outputs and, given
// the case's cotangents d_<out>, the gradients grad_<in> (tensor names: spec/conformance.md,
// "Op cases"). Used by the exporter on the CPU reference and by `conformance run` on any backend.
// Omits: gelu (no kernel in the backend contract: GELU exists only inside Θ) and matmul with a
// transposed batched A against a shared 2-D B (no kernel sums a gradient over the batch then).

import type { AdamWParams, Backend, Handle, NormActParams, Variant } from '../../src/backend.ts';
import { attention, pattention } from '../../src/compose.ts';
import { UserError } from '../../src/errors.ts';
import { quote } from '../../src/fsguard.ts';
import type { CaseJson } from './format.ts';

export interface HostTensor {
  shape: readonly number[];
  data: Float32Array | Int32Array;
}
export type HostMap = ReadonlyMap<string, HostTensor>;
export type Outputs = Map<string, { shape: number[]; data: Float32Array }>;

type B = Backend<Handle>;
type Attrs = Record<string, number | boolean | string>;
type Result = Record<string, Handle>;

/** Thrown for a case this adapter cannot run; `conformance run` records it as unsupported. */
export class Unsupported extends Error {
  override name = 'Unsupported';
}

export function needInput(inputs: HostMap, name: string, caseName: string): HostTensor {
  const t = inputs.get(name);
  if (!t) throw new UserError(`case ${quote(caseName)}: inputs.safetensors lacks ${quote(name)}`);
  return t;
}

function num(a: Attrs, k: string, caseName: string): number {
  const v = a[k];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new UserError(`case ${quote(caseName)}: attrs.${k} must be a number`);
  return v;
}

interface Ctx {
  be: B;
  c: CaseJson;
  inputs: HostMap;
  a: Attrs;
  /** Every handle made on the way (inputs, scratch); disposed after the results are read. */
  made: Handle[];
}

function up(x: Ctx, name: string): Handle {
  const t = needInput(x.inputs, name, x.c.name);
  return keep(x, t.data instanceof Int32Array ? x.be.uploadInt(t.data, t.shape) : x.be.upload(t.data, t.shape));
}

function keep(x: Ctx, h: Handle): Handle {
  x.made.push(h);
  return h;
}

function normParams(x: Ctx): NormActParams {
  return { variant: x.a.variant as Variant, normN: num(x.a, 'normN', x.c.name) };
}

/** C = op(A)·op(B); dA and dB by the products of spec/ops/matmul.md. */
function matmul(x: Ctx): Result {
  const { be } = x;
  const tA = x.a.transA === true;
  const tB = x.a.transB === true;
  const A = up(x, 'a');
  const Bm = up(x, 'b');
  const dC = up(x, 'd_c');
  const c = be.ops.matmul(A, Bm, tA, tB);
  const shared = Bm.shape.length === 2 && A.shape.length > 2;
  if (shared && tA) throw new Unsupported('matmul: transA with a shared 2-D B has no batch-summing kernel');
  const gradA = tA ? be.ops.matmul(Bm, dC, tB, true) : be.ops.matmul(dC, Bm, false, !tB);
  let gradB: Handle;
  if (shared) {
    // B is shared by every batch: flatten the batch into rows
    const K = A.shape[A.shape.length - 1];
    const N = dC.shape[dC.shape.length - 1];
    const A2 = keep(x, be.reshape(A, [A.size / K, K]));
    const dC2 = keep(x, be.reshape(dC, [dC.size / N, N]));
    gradB = tB ? be.ops.matmul(dC2, A2, true, false) : be.ops.matmul(A2, dC2, true, false);
  } else {
    gradB = tB ? be.ops.matmul(dC, A, true, tA) : be.ops.matmul(A, dC, !tA, false);
  }
  return { c, grad_a: gradA, grad_b: gradB };
}

function layernorm(x: Ctx, affine: boolean): Result {
  const { be } = x;
  const X = up(x, 'x');
  const w = affine ? up(x, 'weight') : null;
  const b = affine ? up(x, 'bias') : null;
  const f = be.ops.layerNorm(X, w, b, num(x.a, 'eps', x.c.name));
  const g = be.ops.layerNormBackward(up(x, 'd_y'), X, keep(x, f.mean), keep(x, f.rstd), w);
  const r: Result = { y: f.y, grad_x: g.dX };
  if (affine) Object.assign(r, { grad_weight: g.dW!, grad_bias: g.dB! });
  return r;
}

function rotary(x: Ctx): Result {
  const p = { rotaryDim: num(x.a, 'rotaryDim', x.c.name), base: num(x.a, 'base', x.c.name) };
  return { y: x.be.ops.rotary(up(x, 'x'), p, false), grad_x: x.be.ops.rotary(up(x, 'd_y'), p, true) };
}

function causalSoftmax(x: Ctx): Result {
  const scale = num(x.a, 'scale', x.c.name);
  const p = x.be.ops.causalSoftmax(up(x, 's'), scale);
  return { p, grad_s: x.be.ops.causalSoftmaxBackward(p, up(x, 'd_p'), scale) };
}

function crossEntropy(x: Ctx): Result {
  const logits = up(x, 'logits');
  const targets = up(x, 'targets');
  const f = x.be.ops.crossEntropy(logits, targets);
  const dLoss = needInput(x.inputs, 'd_loss', x.c.name).data[0];
  return { loss: f.loss, grad_logits: x.be.ops.crossEntropyBackward(logits, keep(x, f.lse), targets, dLoss) };
}

function adamw(x: Ctx): Result {
  const [param, grad, m, v, nsq] = ['param', 'grad', 'm', 'v', 'grad_norm_sq'].map((n) => up(x, n));
  const k = (n: string) => num(x.a, n, x.c.name);
  const p: AdamWParams = {
    lr: k('lr'), beta1: k('beta1'), beta2: k('beta2'), eps: k('eps'), weightDecay: k('weightDecay'),
    step: k('step'), maxGradNorm: k('maxGradNorm'), gradScale: k('gradScale'),
  };
  x.be.ops.adamw(param, grad, m, v, p, p.maxGradNorm > 0 ? nsq : null);
  return { param_out: param, m_out: m, v_out: v };
}

const RUNNERS: Record<string, (x: Ctx) => Result> = {
  matmul,
  add: (x) => ({ c: x.be.ops.add(up(x, 'a'), up(x, 'b')), grad_a: up(x, 'd_c'), grad_b: up(x, 'd_c') }),
  norm_act: (x) => {
    const s = up(x, 's');
    const p = normParams(x);
    return { a: x.be.ops.normAct(s, p), grad_s: x.be.ops.normActBackward(s, up(x, 'd_a'), p) };
  },
  pattention: (x) => {
    const [X, k, v] = ['x', 'k', 'v'].map((n) => up(x, n));
    const f = pattention(x.be, X, k, v, normParams(x));
    const g = f.saved.backward(up(x, 'd_out'));
    return { out: f.out, grad_x: g.dX, grad_k: g.dK, grad_v: g.dV };
  },
  layernorm_nonparam: (x) => layernorm(x, false),
  layernorm: (x) => layernorm(x, true),
  rotary,
  permute0213: (x) => ({ y: x.be.ops.permute0213(up(x, 'x')), grad_x: x.be.ops.permute0213(up(x, 'd_y')) }),
  causal_softmax: causalSoftmax,
  attention: (x) => {
    const [q, k, v] = ['q', 'k', 'v'].map((n) => up(x, n));
    const f = attention(x.be, q, k, v);
    const g = f.saved.backward(up(x, 'd_out'));
    return { out: f.out, grad_q: g.dQ, grad_k: g.dK, grad_v: g.dV };
  },
  embedding: (x) => {
    const ids = up(x, 'ids');
    const table = up(x, 'table');
    return { out: x.be.ops.embedding(ids, table), grad_table: x.be.ops.embeddingBackward(ids, up(x, 'd_out'), table.shape[0]) };
  },
  cross_entropy: crossEntropy,
  sum_squares: (x) => {
    const count = num(x.a, 'count', x.c.name);
    return { out: x.be.ops.sumSquares(Array.from({ length: count }, (_, i) => up(x, `x${i}`))) };
  },
  adamw,
};

/** The ops `runOpCase` knows (gelu is refused as Unsupported: it has no backend kernel). */
export const BACKEND_OPS = Object.keys(RUNNERS);

/** Runs an op case; returns every output and gradient the case expects, as host float32. */
export async function runOpCase(be: B, c: CaseJson, inputs: HostMap): Promise<Outputs> {
  const run = c.op !== undefined ? RUNNERS[c.op] : undefined;
  if (c.op === 'gelu') throw new Unsupported('gelu has no kernel in the backend contract (GELU lives inside Θ, normAct)');
  if (!run) throw new UserError(`case ${quote(c.name)}: unknown op ${quote(c.op)}`);
  const x: Ctx = { be, c, inputs, a: c.attrs ?? {}, made: [] };
  try {
    const r = run(x);
    x.made.push(...Object.values(r));
    const out: Outputs = new Map();
    for (const [name, h] of Object.entries(r)) out.set(name, { shape: [...h.shape], data: await be.read(h) });
    return out;
  } finally {
    for (const h of new Set(x.made)) be.dispose(h);
  }
}
