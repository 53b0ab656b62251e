// The backend-neutral kernel cases: every op of the contract forward and backward, Pattention
// and attention both through the backend's fused pair and composed from the primitives, on
// seeded inputs with odd sizes (n = 37, hidden = 48, T = 9/11), tile edges (past 64, K = 1,
// K = 0) and the shapes that pick the WebGPU variants (N % 4 = 0: vec4; N and K % 4 = 0:
// subgroups). suite.ts runs them on every backend against the CPU reference.
// Omits: tensors over a binding limit (test/webgpu-split.test.ts) and bad input (contract.ts).
//
// Shapes: N = rows, n = parameter tokens, d_in / d_out, [B, T, H, D], V = vocab, C = channels.

import type { AdamWParams, Backend, Handle, NormActParams, Shape, Variant } from '../../src/backend.ts';
import { VARIANTS } from '../../src/backend.ts';
import { attention, pattention } from '../../src/compose.ts';
import { composedOnly, kernelCase, type Gen, type HostTensor, type KernelCase, type Outputs } from './kernel-case.ts';

type MM = [name: string, a: Shape, b: Shape, transA: boolean, transB: boolean];

const MATMULS: MM[] = [
  ...([[false, false], [false, true], [true, false], [true, true]] as const).map(([tA, tB]): MM =>
    [`${tA ? 'T' : 'N'}${tB ? 'T' : 'N'} 13x48x37`, tA ? [48, 13] : [13, 48], tB ? [37, 48] : [48, 37], tA, tB]),
  ['batched, shared B', [2, 5, 48], [48, 37], false, false],
  ['batched B, NT', [2, 3, 9, 7], [2, 3, 9, 7], false, true],
  ['batched B, TN', [2, 3, 9, 7], [2, 3, 9, 5], true, false],
  ['odd NN', [37, 48], [48, 29], false, false],
  ['odd NT', [37, 48], [29, 48], false, true],
  ['odd TN', [48, 37], [48, 29], true, false],
  ['odd TT', [48, 37], [29, 48], true, true],
  ['past the tile', [130, 70], [70, 200], false, false],
  ['K = 1, M = 1', [1, 1], [1, 67], false, false],
  ['K = 0 (zeros)', [3, 0], [0, 5], false, false],
  ['batched A, shared B', [2, 3, 37, 48], [48, 29], false, false],
  ['batched A and B, NT', [2, 3, 65, 16], [2, 3, 65, 16], false, true],
  ['batched TN', [5, 33, 9], [5, 33, 70], true, false],
  // N % 4 = 0: WebGPU's vec4 kernels (a transposed B is transposed first in the cpu style)
  ['NT, N % 4 = 0', [37, 48], [64, 48], false, true],
  ['batched A and B, NT, N % 4 = 0', [2, 3, 20, 16], [2, 3, 36, 16], false, true],
  ['batched A, shared B, NT, N % 4 = 0', [2, 19, 16], [12, 16], false, true],
  ['TN, N % 4 = 0', [48, 37], [48, 32], true, false],
  ['batched A, shared B, N % 4 = 0', [3, 17, 24], [24, 44], false, false],
  ['TT, N % 4 = 0', [48, 37], [32, 48], true, true],
  // N and K % 4 = 0: WebGPU's subgroup kernel in the cpu style (8-wide subgroups), edges in M, N
  ['NN, N and K % 4 = 0, wide', [21, 32], [32, 200], false, false],
  ['NT, N and K % 4 = 0, M = 5', [5, 8], [12, 8], false, true],
  ['batched TN, N and K % 4 = 0', [3, 44, 19], [3, 44, 36], true, false],
  ['K % 4 ≠ 0, N % 4 = 0', [9, 7], [7, 12], false, false],
];

function matmulCases(): KernelCase[] {
  return MATMULS.map(([name, as, bs, tA, tB]) => kernelCase(`matmul ${name}: [${as}]·[${bs}]`,
    (g) => ({ a: g.randn(as), b: g.randn(bs) }),
    (be, x) => ({ values: { c: be.ops.matmul(x.a, x.b, tA, tB) } })));
}

function addCases(): KernelCase[] {
  return [[7, 48], [5, 999], [9, 1000]].map((shape) => kernelCase(`add [${shape}]`,
    (g) => ({ a: g.randn(shape), b: g.randn(shape) }),
    (be, x) => ({ values: { y: be.ops.add(x.a, x.b) } })));
}

/** s with row `row` all zero: Θ gives 0 there and dS = 0 (spec/ops/norm_act.md). */
function zeroRow(s: HostTensor, row: number): HostTensor {
  const n = s.shape[s.shape.length - 1];
  s.data.fill(0, row * n, (row + 1) * n);
  return s;
}

function normActCases(): KernelCase[] {
  const out: KernelCase[] = [];
  // [rows, n], normN, the zero row: normN = n and a grown normN (n < normN and n > normN)
  const shapes: [Shape, number, number][] = [[[13, 37], 37, 5], [[13, 37], 29, 5], [[13, 37], 40, 0], [[4, 300], 303, 0]];
  for (const variant of VARIANTS) {
    for (const [shape, normN, row] of shapes) {
      const p: NormActParams = { variant, normN };
      out.push(kernelCase(`normAct ${variant} [${shape}] normN ${normN}, forward and backward`,
        (g) => ({ s: zeroRow(g.randn(shape, 2), row), dA: g.randn(shape) }),
        (be, x) => ({ values: { a: be.ops.normAct(x.s, p) }, grads: { dS: be.ops.normActBackward(x.s, x.dA, p) } })));
    }
  }
  return out;
}

function layerNormCases(): KernelCase[] {
  // [rows, C], the form (weight, bias), the shift of x
  const forms: [Shape, boolean, boolean, number][] = [
    [[13, 48], true, true, 0], [[13, 48], false, false, 0], [[13, 48], false, true, 0],
    ...[[7, 48], [3, 300], [5, 37], [70, 44]].flatMap((s): [Shape, boolean, boolean, number][] =>
      [[s, false, false, 1.5], [s, true, true, 1.5]]),
  ];
  return forms.map(([shape, weight, bias, shift]) => {
    const form = weight ? 'affine' : bias ? 'bias only' : 'LN₀';
    const C = shape[shape.length - 1];
    return kernelCase(`layerNorm ${form} [${shape}]${shift ? ' (mean 1.5)' : ''}, forward and backward`,
      (g) => ({ x: g.map(g.randn(shape, 3), (v) => v + shift), w: g.randn([C]), b: g.randn([C]), dY: g.randn(shape) }),
      (be, x) => {
        const w = weight ? x.w : null;
        const f = be.ops.layerNorm(x.x, w, bias ? x.b : null, 1e-5);
        const d = be.ops.layerNormBackward(x.dY, x.x, f.mean, f.rstd, w);
        const grads = { dX: d.dX, ...(d.dW ? { dW: d.dW } : {}), ...(d.dB ? { dB: d.dB } : {}) };
        return { values: { y: f.y, mean: f.mean, rstd: f.rstd }, grads };
      });
  });
}

function rotaryCases(): KernelCase[] {
  const forms: [Shape, number, number][] = [
    [[2, 11, 3, 16], 4, 0], [[2, 11, 3, 16], 16, 0], [[2, 11, 3, 16], 0, 0],
    [[2, 9, 3, 12], 0, 0], [[2, 9, 3, 12], 4, 0], [[2, 9, 3, 12], 12, 0], [[2, 9, 3, 12], 6, 5],
  ];
  return forms.map(([shape, rotaryDim, offset]) => {
    const p = { rotaryDim, base: 10000, offset };
    return kernelCase(`rotary rotaryDim ${rotaryDim} [${shape}]${offset ? ` at offset ${offset}` : ''}, and inverse`,
      (g) => ({ x: g.randn(shape) }),
      (be, x) => ({ values: { y: be.ops.rotary(x.x, p, false), yInverse: be.ops.rotary(x.x, p, true) } }));
  });
}

function attentionPartCases(): KernelCase[] {
  return [
    kernelCase('permute0213 [2,5,3,7]', (g) => ({ x: g.randn([2, 5, 3, 7]) }),
      (be, x) => ({ values: { y: be.ops.permute0213(x.x) } })),
    ...[9, 7, 130].map((T) => kernelCase(`causalSoftmax [2,3,${T},${T}], forward and backward`,
      (g) => ({ s: g.randn([2, 3, T, T], 3), dP: g.randn([2, 3, T, T]) }),
      (be, x) => {
        const p = be.ops.causalSoftmax(x.s, 0.3);
        return { values: { p }, grads: { dS: be.ops.causalSoftmaxBackward(p, x.dP, 0.3) } };
      })),
  ];
}

function tokenCases(): KernelCase[] {
  /** [rows] ids < V, with positions 3, 4, 10 all id 5 (a repeated id accumulates). */
  const repeated = (g: Gen, shape: Shape, V: number): HostTensor => {
    const ids = g.ints(shape, V);
    ids.data[3] = ids.data[4] = ids.data[10] = 5;
    return ids;
  };
  const embedding = (name: string, ids: (g: Gen) => HostTensor, V: number, C: number): KernelCase =>
    kernelCase(`embedding ${name} over [${V},${C}], and the scatter-add backward`,
      (g) => {
        const i = ids(g);
        return { ids: i, table: g.randn([V, C]), d: g.randn([...i.shape, C]) };
      },
      (be, x) => ({ values: { out: be.ops.embedding(x.ids, x.table) }, grads: { dTable: be.ops.embeddingBackward(x.ids, x.d, V) } }));
  const crossEntropy = (N: number, V: number): KernelCase => kernelCase(`crossEntropy [${N},${V}], forward and backward`,
    (g) => ({ logits: g.randn([N, V], 3), t: g.ints([N], V) }),
    (be, x) => {
      const f = be.ops.crossEntropy(x.logits, x.t);
      return { values: { loss: f.loss, lse: f.lse }, grads: { dLogits: be.ops.crossEntropyBackward(x.logits, f.lse, x.t, 0.7) } };
    });
  return [
    embedding('[3,7] ids < 9', (g) => g.ints([3, 7], 9), 37, 48),
    embedding('[2,9] repeated ids', (g) => repeated(g, [2, 9], 11), 11, 48),
    embedding('[2,9] repeated ids', (g) => repeated(g, [2, 9], 11), 11, 37),
    crossEntropy(13, 37), crossEntropy(13, 300),
  ];
}

function sumSquaresCases(): KernelCase[] {
  const lists: [string, Shape[]][] = [
    ['three tree levels', [[300, 700], [48], []]],
    ['odd and large sizes', [[37, 48], [1], [5000], [3, 700]]],
    ['more tensors than one multi-tensor dispatch binds',
      [[4], [12, 4], [3], [2048], [4100], [8, 8], [7], [16], [64, 33], [20], [24], [28], [9000], [5, 4], [1]]],
  ];
  return lists.map(([name, shapes]) => kernelCase(`sumSquares of ${shapes.length} tensors (${name})`,
    (g) => Object.fromEntries(shapes.map((s, i) => [`t${i}`, g.randn(s)])),
    (be, x) => ({ values: { s: be.ops.sumSquares(Object.values(x)) } })));
}

/** AdamW over `grads.length` steps, in place: param, m and v are the outputs. */
function adamwSteps<T extends Handle>(be: Backend<T>, x: Record<string, T>, base: AdamWParams, grads: string[]): Outputs<T> {
  grads.forEach((gName, i) => {
    const gns = base.maxGradNorm > 0 ? be.ops.sumSquares([x[gName]]) : null;
    be.ops.adamw(x.p, x[gName], x.m, x.v, { ...base, step: i + 1 }, gns);
    if (gns) be.dispose(gns);
  });
  return { values: { param: x.p, m: x.m, v: x.v } };
}

function adamwCases(): KernelCase[] {
  const base: AdamWParams = {
    lr: 3e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step: 1, maxGradNorm: 1, gradScale: 0.5,
  };
  const twoSteps = (maxGradNorm: number): KernelCase => kernelCase(`adamw two steps, the same grad, maxGradNorm ${maxGradNorm}`,
    (g) => ({ p: g.randn([37, 48]), g: g.randn([37, 48]), m: g.randn([37, 48], 0.1), v: g.map(g.randn([37, 48]), (e) => e * e * 0.01) }),
    (be, x) => adamwSteps(be, x, { ...base, maxGradNorm }, ['g', 'g']));
  const threeSteps = (maxGradNorm: number, shape: Shape): KernelCase =>
    kernelCase(`adamw three steps from zero moments, maxGradNorm ${maxGradNorm}, [${shape}]`,
      (g) => ({ p: g.randn(shape), m: g.zeros(shape), v: g.zeros(shape), g1: g.randn(shape, 0.1), g2: g.randn(shape, 0.1), g3: g.randn(shape, 0.1) }),
      (be, x) => adamwSteps(be, x, { ...base, lr: 1e-2, maxGradNorm }, ['g1', 'g2', 'g3']));
  return [twoSteps(1), twoSteps(0), threeSteps(0, [37, 48]), threeSteps(0.5, [37, 48]), threeSteps(0.5, [5, 999]), threeSteps(0, [9, 1000])];
}

type Path = 'fused' | 'composed';
const PATHS: Path[] = ['fused', 'composed'];
/** 'fused' runs the backend's fused pair (composed where it has none); 'composed' never does. */
const via = <T extends Handle>(be: Backend<T>, path: Path): Backend<T> => (path === 'fused' ? be : composedOnly(be));

function pattentionCases(): KernelCase[] {
  const shapes: [Shape, number, number][] = [[[2, 7, 48], 37, 40], [[13, 48], 37, 29]]; // x, n, d_out
  return PATHS.flatMap((path) => shapes.flatMap(([xs, n, dOut]) => VARIANTS.map((variant: Variant) => {
    const out = [...xs.slice(0, -1), dOut];
    return kernelCase(`pattention (${path}) ${variant} x [${xs}] k [${n},${xs[xs.length - 1]}] v [${n},${dOut}], forward and backward`,
      (g) => ({ x: g.randn(xs), k: g.randn([n, xs[xs.length - 1]], 0.3), v: g.randn([n, dOut]), d: g.randn(out) }),
      (be, x) => {
        const f = pattention(via(be, path), x.x, x.k, x.v, { variant, normN: n });
        const d = f.saved.backward(x.d);
        return { values: { out: f.out }, grads: { dX: d.dX, dK: d.dK, dV: d.dV } };
      });
  })));
}

function attentionCases(): KernelCase[] {
  // [B, T, H, D]: T and D % 4 = 0 take WebGPU's strided path in the cpu style; the others, and
  // the gpu style, the permute composition inside the fused kernel.
  const shapes: Shape[] = [[2, 8, 3, 4], [1, 12, 2, 8], [2, 5, 3, 6]];
  return PATHS.flatMap((path) => shapes.map((shape) => kernelCase(`attention (${path}) [${shape}], forward and backward`,
    (g) => ({ q: g.randn(shape), k: g.randn(shape), v: g.randn(shape), d: g.randn(shape) }),
    (be, x) => {
      const f = attention(via(be, path), x.q, x.k, x.v);
      const d = f.saved.backward(x.d);
      return { values: { out: f.out }, grads: { dQ: d.dQ, dK: d.dK, dV: d.dV } };
    })));
}

export const CASES: readonly KernelCase[] = [
  ...matmulCases(), ...addCases(), ...normActCases(), ...layerNormCases(), ...rotaryCases(),
  ...attentionPartCases(), ...tokenCases(), ...sumSquaresCases(), ...adamwCases(),
  ...pattentionCases(), ...attentionCases(),
];
