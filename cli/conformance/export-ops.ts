// The op cases of the default conformance suite: every kernel of the backend contract (and GELU),
// forward and backward, at odd sizes, with seeded float32 inputs and cotangents. Shapes and scales
// follow golden/gen_ops.py, whose cases a float32 rerun was checked to pass; the draws are ours.
// Omits: computing the expected values (export.ts runs the CPU reference on these inputs).

import type { Variant } from '../../src/backend.ts';
import { VARIANTS } from '../../src/backend.ts';
import { Rng } from '../../src/rng.ts';
import type { Role, ToleranceOverrides } from './format.ts';
import type { HostTensor } from './run-ops.ts';

export interface OpCaseSpec {
  name: string;
  op: string;
  attrs: Record<string, number | boolean | string>;
  description: string;
  /** Inputs and cotangents, in argument order. */
  inputs: (rng: Rng) => [name: string, role: Role, t: HostTensor][];
  /** Per-case tolerance overrides (spec/conformance.md, "Per-case overrides"). */
  tolerances?: ToleranceOverrides;
}

/** n·softmax Pattention outputs reach 50–70 (n ≈ 40 times unit values): bf16's ~1% of that scale
 *  exceeds an atol meant for O(1) tensors. */
const LARGE_OUTPUT_BF16: ToleranceOverrides = { bf16: { values: { atol: 0.5, rtol: 0.1 } } };

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** float32 N(shift, scale²) samples, drawn in index order. */
export function randn(rng: Rng, shape: readonly number[], scale = 1, shift = 0): HostTensor {
  const data = new Float32Array(size(shape));
  for (let i = 0; i < data.length; i++) data[i] = scale * rng.normal() + shift;
  return { shape, data };
}

export function uniform(rng: Rng, shape: readonly number[], lo: number, hi: number): HostTensor {
  const data = new Float32Array(size(shape));
  for (let i = 0; i < data.length; i++) data[i] = lo + (hi - lo) * rng.uniform();
  return { shape, data };
}

export function randint(rng: Rng, hi: number, shape: readonly number[]): HostTensor {
  const data = new Int32Array(size(shape));
  for (let i = 0; i < data.length; i++) data[i] = rng.int(hi);
  return { shape, data };
}

type In = [string, Role, HostTensor];
const input = (name: string, t: HostTensor): In => [name, 'input', t];
const cot = (name: string, t: HostTensor): In => [name, 'cotangent', t];

function matmulShape(a: number[], b: number[], tA: boolean, tB: boolean): number[] {
  const M = tA ? a[a.length - 1] : a[a.length - 2];
  const N = tB ? b[b.length - 2] : b[b.length - 1];
  return [...a.slice(0, -2), M, N];
}

function matmul(name: string, a: number[], b: number[], transA: boolean, transB: boolean): OpCaseSpec {
  return {
    name, op: 'matmul', attrs: { transA, transB },
    description: `C = op(A)·op(B), A ${JSON.stringify(a)}, B ${JSON.stringify(b)}${transA ? ', A transposed' : ''}${transB ? ', B transposed' : ''}`,
    inputs: (g) => [input('a', randn(g, a)), input('b', randn(g, b)), cot('d_c', randn(g, matmulShape(a, b, transA, transB)))],
  };
}

function unary(name: string, op: string, attrs: OpCaseSpec['attrs'], x: string, dy: string, draw: (g: Rng) => HostTensor, description: string): OpCaseSpec {
  return {
    name, op, attrs, description,
    inputs: (g) => {
      const t = draw(g);
      return [input(x, t), cot(dy, randn(g, t.shape))];
    },
  };
}

function normAct(name: string, variant: Variant, shape: number[], normN: number, scale: number): OpCaseSpec {
  return unary(name, 'norm_act', { variant, normN }, 's', 'd_a', (g) => randn(g, shape, scale),
    `Θ = ${variant} row-wise over ${shape[1]} scores, normN ${normN}${normN !== shape[1] ? ' (≠ n: a grown layer)' : ''}`);
}

function pattn(name: string, variant: Variant, N: number, din: number, n: number, dout: number, normN: number, kscale = 0.3): OpCaseSpec {
  return {
    name, op: 'pattention', attrs: { variant, normN }, ...(variant === 'softmax' ? { tolerances: LARGE_OUTPUT_BF16 } : {}),
    description: `Pattention ${variant}: x [${N}, ${din}], ${n} key/value tokens, d_out ${dout}, normN ${normN}`,
    inputs: (g) => [
      input('x', randn(g, [N, din])), input('k', randn(g, [n, din], kscale)), input('v', randn(g, [n, dout])),
      cot('d_out', randn(g, [N, dout])),
    ],
  };
}

function layernorm(name: string, shape: number[], eps: number, affine: boolean, scale = 2, shift = 0.5): OpCaseSpec {
  const C = shape[shape.length - 1];
  return {
    name, op: affine ? 'layernorm' : 'layernorm_nonparam', attrs: { eps },
    description: `${affine ? 'LayerNorm (weight, bias)' : 'LN₀ (no weight or bias)'} over ${C} channels, eps ${eps}, biased variance`,
    inputs: (g) => {
      const ins: In[] = [input('x', randn(g, shape, scale, shift))];
      if (affine) ins.push(input('weight', randn(g, [C], 0.2, 1)), input('bias', randn(g, [C], 0.2)));
      ins.push(cot('d_y', randn(g, shape)));
      return ins;
    },
  };
}

function rotary(name: string, shape: number[], rotaryDim: number, base: number): OpCaseSpec {
  return unary(name, 'rotary', { rotaryDim, base }, 'x', 'd_y', (g) => randn(g, shape),
    `rotary (rotate_half) on the first ${rotaryDim} of ${shape[3]} dims of x [B, T, H, D] = ${JSON.stringify(shape)}, base ${base}`);
}

function attention(name: string, shape: number[], qscale: number): OpCaseSpec {
  return {
    name, op: 'attention', attrs: {},
    description: `causal attention, scale 1/√D, q, k, v [B, T, H, D] = ${JSON.stringify(shape)}`,
    inputs: (g) => [input('q', randn(g, shape, qscale)), input('k', randn(g, shape)), input('v', randn(g, shape)), cot('d_out', randn(g, shape))],
  };
}

function adamw(name: string, shape: number[], step: number, lr: number, wd: number, maxGradNorm: number, clip: 'active' | 'inactive' | 'disabled', prior: boolean, gradScale = 1): OpCaseSpec {
  return {
    name, op: 'adamw', attrs: { lr, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: wd, step, maxGradNorm, gradScale },
    description: `one AdamW update, step ${step}, clipping ${clip}${gradScale !== 1 ? `, gradScale ${gradScale}` : ''}`,
    inputs: (g) => {
      const grad = randn(g, shape, 0.05);
      let own = 0;
      for (const x of grad.data) own += (gradScale * x) ** 2;
      const gns = { active: own * 4 + 9, inactive: 0.25, disabled: 100 }[clip];
      return [
        input('param', randn(g, shape, 0.5)), input('grad', grad),
        input('m', prior ? randn(g, shape, 0.02) : { shape, data: new Float32Array(size(shape)) }),
        input('v', prior ? uniform(g, shape, 1e-5, 4e-3) : { shape, data: new Float32Array(size(shape)) }),
        input('grad_norm_sq', { shape: [], data: Float32Array.of(gns) }),
      ];
    },
  };
}

function simple(name: string, op: string, description: string, inputs: OpCaseSpec['inputs'], attrs: OpCaseSpec['attrs'] = {}): OpCaseSpec {
  return { name, op, attrs, description, inputs };
}

function gelu(name: string, kind: 'randn' | 'sweep'): OpCaseSpec {
  return unary(name, 'gelu', {}, 'x', 'd_y', (g) => {
    if (kind === 'randn') return randn(g, [13, 37], 3);
    const sweep = Array.from({ length: 401 }, (_, i) => -10 + i * 0.05);
    return { shape: [410], data: Float32Array.from([...sweep, 0, 1e-7, -1e-7, 1e-30, -1e-30, 5.5, -5.5, 30, -30]) };
  }, kind === 'randn' ? 'exact (erf) GELU of N(0, 9) samples' : 'exact (erf) GELU on a sweep of [-10, 10] plus 0, tiny and large magnitudes');
}

/** matmul, add, GELU, Θ and Pattention. */
function linearCases(): OpCaseSpec[] {
  const cases: OpCaseSpec[] = [
    matmul('matmul_nn_odd', [13, 48], [48, 20], false, false),
    matmul('matmul_tn_odd', [48, 13], [48, 20], true, false),
    matmul('matmul_nt_odd', [13, 48], [20, 48], false, true),
    matmul('matmul_tt_odd', [48, 13], [20, 48], true, true),
    matmul('matmul_batched_shared_b', [2, 3, 13, 37], [37, 20], false, false),
    matmul('matmul_batched_shared_b_nt', [2, 9, 48], [37, 48], false, true),
    matmul('matmul_batched_nt', [2, 3, 9, 12], [2, 3, 9, 12], false, true),
    matmul('matmul_batched_tn', [6, 13, 7], [6, 13, 5], true, false),
    matmul('matmul_batched_tt', [2, 5, 4], [2, 3, 5], true, true),
    simple('add_odd', 'add', 'elementwise a + b, [7, 13]',
      (g) => [input('a', randn(g, [7, 13])), input('b', randn(g, [7, 13])), cot('d_c', randn(g, [7, 13]))]),
    gelu('gelu_randn', 'randn'),
    gelu('gelu_sweep', 'sweep'),
  ];
  for (const v of VARIANTS) {
    cases.push(normAct(`norm_act_${v}_odd`, v, [13, 37], 37, 2));
    cases.push(normAct(`norm_act_${v}_grown`, v, [9, 45], 37, 2));
    cases.push(pattn(`pattention_${v}_odd`, v, 13, 48, 37, 20, 37));
    cases.push(pattn(`pattention_${v}_grown`, v, 9, 32, 45, 24, 37));
  }
  cases.push(
    normAct('norm_act_softmax_large', 'softmax', [5, 37], 37, 30),
    normAct('norm_act_l2_norm_gelu_wide', 'l2_norm_gelu', [3, 200], 200, 0.05),
    normAct('norm_act_gelu_l2_norm_small', 'gelu_l2_norm', [4, 64], 64, 0.1),
    pattn('pattention_l2_norm_gelu_tiny', 'l2_norm_gelu', 4, 8, 5, 3, 5, 1),
  );
  return cases;
}

/** Every op case of the default suite: each kernel of the backend contract, and GELU. */
export function opCases(): OpCaseSpec[] {
  const cases = linearCases();
  cases.push(
    layernorm('layernorm_nonparam_odd', [13, 48], 1e-5, false, 2, 3),
    layernorm('layernorm_nonparam_small_var', [7, 37], 1e-5, false, 3e-3, 0),
    layernorm('layernorm_nonparam_eps1e-6', [9, 20], 1e-6, false, 1, 0),
    layernorm('layernorm_odd', [13, 48], 1e-5, true),
    layernorm('layernorm_eps1e-6', [9, 37], 1e-6, true),
    rotary('rotary_partial', [2, 9, 3, 16], 4, 10000),
    rotary('rotary_full', [2, 9, 3, 16], 16, 10000),
    rotary('rotary_odd_partial', [2, 7, 4, 12], 6, 10000),
    rotary('rotary_full_base500', [2, 9, 4, 12], 12, 500),
    rotary('rotary_long', [1, 37, 2, 8], 8, 10000),
    simple('permute0213_odd', 'permute0213', '[a, b, c, d] → [a, c, b, d], x [2, 5, 3, 7]',
      (g) => [input('x', randn(g, [2, 5, 3, 7])), cot('d_y', randn(g, [2, 3, 5, 7]))]),
    unary('causal_softmax_odd', 'causal_softmax', { scale: 0.25 }, 's', 'd_p', (g) => randn(g, [2, 3, 9, 9], 2),
      'causal softmax of 0.25·s over the last dim, s [2, 3, 9, 9]'),
    unary('causal_softmax_t1', 'causal_softmax', { scale: 1 / Math.sqrt(8) }, 's', 'd_p', (g) => randn(g, [3, 1, 1]),
      'causal softmax at T = 1 (P = 1, dS = 0)'),
    attention('attention_small', [2, 9, 3, 16], 1.5),
    attention('attention_odd', [2, 13, 4, 12], 1.5),
    attention('attention_t1', [1, 1, 2, 8], 1),
    attention('attention_peaked', [1, 11, 2, 8], 4),
    simple('embedding_odd', 'embedding', 'rows of table [67, 48] at ids [2, 7] (ids < 10: repeats)',
      (g) => [input('ids', randint(g, 10, [2, 7])), input('table', randn(g, [67, 48])), cot('d_out', randn(g, [2, 7, 48]))]),
    simple('embedding_small', 'embedding', 'rows of table [10, 5] at ids [3, 5]',
      (g) => [input('ids', randint(g, 10, [3, 5])), input('table', randn(g, [10, 5])), cot('d_out', randn(g, [3, 5, 5]))]),
  );
  for (const [name, N, V, scale, shift] of [['cross_entropy_v101', 13, 101, 3, 0], ['cross_entropy_large', 6, 101, 15, 60], ['cross_entropy_v67', 14, 67, 1, 0]] as const) {
    cases.push(simple(name, 'cross_entropy', `mean cross-entropy, logits [${N}, ${V}] ~ N(${shift}, ${scale}²)`, (g) => [
      input('logits', randn(g, [N, V], scale, shift)), input('targets', randint(g, V, [N])), cot('d_loss', randn(g, [])),
    ]));
  }
  cases.push(
    simple('sum_squares_three', 'sum_squares', 'Σ x² over three tensors [13, 37], [48], [5, 3, 7] (forward only)',
      (g) => [input('x0', randn(g, [13, 37])), input('x1', randn(g, [48], 0.1)), input('x2', randn(g, [5, 3, 7], 3))], { count: 3 }),
    adamw('adamw_step1_clip_active', [13, 37], 1, 1e-3, 0.1, 1, 'active', false),
    adamw('adamw_step5_clip_inactive', [13, 37], 5, 6e-4, 0.1, 1, 'inactive', true),
    adamw('adamw_step3_no_decay', [48], 3, 2e-3, 0, 1, 'active', true),
    adamw('adamw_step2_clip_disabled', [7, 20], 2, 1e-2, 0.1, 0, 'disabled', true),
    adamw('adamw_step4_grad_scale', [9, 11], 4, 1e-3, 0.1, 1, 'active', true, 0.5),
  );
  return cases;
}
