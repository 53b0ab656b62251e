// Runs one golden op fixture through a backend's kernels: forward outputs and the input
// gradients for the fixture's upstream gradient. Names follow golden/FORMAT.md. The table is
// mapped over FixtureOp (test/helpers/golden.ts), so a fixture op without a runner does not
// compile; an op with no kernel of its own says so and checks the CPU reference function.

import type { Backend, Handle, NormActParams, Variant } from '../../src/backend.ts';
import { attention, pattention } from '../../src/compose.ts';
import { geluBackward, geluForward } from '../../src/ops/gelu.ts';
import type { SafeTensors } from '../../src/safetensors.ts';
import { need, type FixtureOp } from '../helpers/golden.ts';

type B = Backend<Handle>;
type Attrs = Record<string, number | boolean | string>;
export type Result = Record<string, Handle>;

/** An op the backends run: its outputs and gradients as handles of `be`. */
export type BackendRunner = (be: B, fx: SafeTensors, a: Attrs) => Result | Promise<Result>;
/** An op with no kernel in the contract: the suite checks `reference` (host arrays, the CPU
 *  reference's own function) on the cpu backend and skips the others, printing `noKernel`. */
export interface NoKernel {
  noKernel: string;
  reference(fx: SafeTensors, a: Attrs): Record<string, Float32Array>;
}

function up(be: B, fx: SafeTensors, name: string): Handle {
  const t = need(fx, name);
  return t.data instanceof Int32Array ? be.uploadInt(t.data, t.shape) : be.upload(t.data, t.shape);
}

function normParams(a: Attrs): NormActParams {
  return { variant: a.variant as Variant, normN: a.normN as number };
}

/** C = op(A)·op(B); grads by the two products of spec/ops/matmul.md. */
function matmul(be: B, fx: SafeTensors, a: Attrs): Result {
  const tA = Boolean(a.transA);
  const tB = Boolean(a.transB);
  const A = up(be, fx, 'a');
  const Bm = up(be, fx, 'b');
  const dC = up(be, fx, 'd_c');
  const c = be.ops.matmul(A, Bm, tA, tB);
  const gradA = tA ? be.ops.matmul(Bm, dC, tB, true) : be.ops.matmul(dC, Bm, false, !tB);
  let gradB: Handle;
  if (Bm.shape.length === 2 && A.shape.length > 2) {
    // B is shared by every batch: flatten the batch into rows (only valid without transA)
    const rows = A.size / A.shape[A.shape.length - 1];
    const A2 = be.reshape(A, [rows, A.shape[A.shape.length - 1]]);
    const dC2 = be.reshape(dC, [rows, dC.shape[dC.shape.length - 1]]);
    gradB = tB ? be.ops.matmul(dC2, A2, true, false) : be.ops.matmul(A2, dC2, true, false);
  } else {
    gradB = tB ? be.ops.matmul(dC, A, true, tA) : be.ops.matmul(A, dC, !tA, false);
  }
  return { c, grad_a: gradA, grad_b: gradB };
}

function normAct(be: B, fx: SafeTensors, a: Attrs): Result {
  const s = up(be, fx, 's');
  const p = normParams(a);
  return { a: be.ops.normAct(s, p), grad_s: be.ops.normActBackward(s, up(be, fx, 'd_a'), p) };
}

function pattn(be: B, fx: SafeTensors, a: Attrs): Result {
  const [x, k, v] = ['x', 'k', 'v'].map((n) => up(be, fx, n));
  const p = normParams(a);
  const f = pattention(be, x, k, v, p);
  const g = f.saved.backward(up(be, fx, 'd_out'));
  return { out: f.out, grad_x: g.dX, grad_k: g.dK, grad_v: g.dV };
}

function layernorm(be: B, fx: SafeTensors, a: Attrs, affine: boolean): Result {
  const x = up(be, fx, 'x');
  const w = affine ? up(be, fx, 'weight') : null;
  const b = affine ? up(be, fx, 'bias') : null;
  const f = be.ops.layerNorm(x, w, b, a.eps as number);
  const g = be.ops.layerNormBackward(up(be, fx, 'd_y'), x, f.mean, f.rstd, w);
  const r: Result = { y: f.y, grad_x: g.dX };
  if (affine) {
    r.grad_weight = g.dW!;
    r.grad_bias = g.dB!;
  }
  return r;
}

function rotary(be: B, fx: SafeTensors, a: Attrs): Result {
  const p = { rotaryDim: a.rotaryDim as number, base: a.base as number };
  const y = be.ops.rotary(up(be, fx, 'x'), p, false);
  return { y, grad_x: be.ops.rotary(up(be, fx, 'd_y'), p, true) };
}

function attn(be: B, fx: SafeTensors): Result {
  const [q, k, v] = ['q', 'k', 'v'].map((n) => up(be, fx, n));
  const f = attention(be, q, k, v);
  const g = f.saved.backward(up(be, fx, 'd_out'));
  return { out: f.out, grad_q: g.dQ, grad_k: g.dK, grad_v: g.dV };
}

function embedding(be: B, fx: SafeTensors): Result {
  const ids = up(be, fx, 'ids');
  const table = up(be, fx, 'table');
  return {
    out: be.ops.embedding(ids, table),
    grad_table: be.ops.embeddingBackward(ids, up(be, fx, 'd_out'), table.shape[0]),
  };
}

async function crossEntropy(be: B, fx: SafeTensors): Promise<Result> {
  const logits = up(be, fx, 'logits');
  const targets = up(be, fx, 'targets');
  const f = be.ops.crossEntropy(logits, targets);
  const dLoss = need(fx, 'd_loss').data[0];
  return { loss: f.loss, grad_logits: be.ops.crossEntropyBackward(logits, f.lse, targets, dLoss) };
}

function adamw(be: B, fx: SafeTensors, a: Attrs): Result {
  const [param, grad, m, v, nsq] = ['param', 'grad', 'm', 'v', 'grad_norm_sq'].map((n) => up(be, fx, n));
  const p = {
    lr: a.lr as number, beta1: a.beta1 as number, beta2: a.beta2 as number, eps: a.eps as number,
    weightDecay: a.weightDecay as number, step: a.step as number, maxGradNorm: a.maxGradNorm as number, gradScale: 1,
  };
  be.ops.adamw(param, grad, m, v, p, p.maxGradNorm > 0 ? nsq : null);
  return { param_out: param, m_out: m, v_out: v };
}

/** y = gelu(x) and dX = d_y · gelu'(x) by src/ops/gelu.ts, the functions Θ uses. */
function geluReference(fx: SafeTensors): Record<string, Float32Array> {
  const x = Float32Array.from(need(fx, 'x').data);
  const y = new Float32Array(x.length), gradX = new Float32Array(x.length);
  geluForward(y, x);
  geluBackward(gradX, Float32Array.from(need(fx, 'd_y').data), x);
  return { y, grad_x: gradX };
}

/** The runner of each fixture op, keyed by every FixtureOp. */
export const OP_RUNNERS: { [K in FixtureOp]: BackendRunner | NoKernel } = {
  matmul,
  gelu: {
    noKernel: 'no gelu kernel in the backend contract: GELU runs inside Θ (the norm_act and pattention fixtures cover it)',
    reference: geluReference,
  },
  norm_act: normAct,
  pattention: pattn,
  layernorm_nonparam: (be, fx, a) => layernorm(be, fx, a, false),
  layernorm: (be, fx, a) => layernorm(be, fx, a, true),
  rotary,
  attention: (be, fx) => attn(be, fx),
  embedding: (be, fx) => embedding(be, fx),
  cross_entropy: (be, fx) => crossEntropy(be, fx),
  adamw,
};
