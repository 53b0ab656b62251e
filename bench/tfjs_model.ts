// The whole bench model (bench/model.ts BENCH_CONFIG) in TensorFlow.js on the same Dawn adapter:
// forward tokens/s, and a training step (forward + tf.variableGrads, tfjs's own autodiff,
// + global-norm clipping + AdamW written in tf ops), from the weights of our initParams, so
// both sides run the identical model on identical tokens. Run alone: `npx tsx bench/tfjs_model.ts`.
// Omits: our zero-norm-row convention of Θ (a zero score row gives NaN here, as in PyTorch;
// random weights never produce one), dropout, checkpoints, and any tfjs-side tuning: tfjs runs
// with its defaults, as a JS user would get it.
// NOTE: the causal mask is an additive −1e9 (exp underflows to exactly 0 in float32, as the
// masked entries of our causal softmax); rotary angles are computed in float64 on the host.

import type { Variant } from '../src/backend.ts';
import type { ModelConfig } from '../src/config.ts';
import { headDim, rotaryDim } from '../src/config.ts';
import { EMBEDDING, blockPattentions, finalLinearName, finalNormPrefix, initParams, normSlotsOf, paramSpecs } from '../src/params.ts';
import { Rng } from '../src/rng.ts';
import { forwardFlopsPerToken, trainFlopsPerToken } from '../src/train/flops.ts';
import { OFFICIAL_ADAMW, type AdamWHyper } from '../src/train/optimizer.ts';
import { BENCH_BATCH, BENCH_CONFIG, BENCH_SEQ, timeIt } from './model.ts';
import { gelu, loadTfWebGPU } from './tfjs.ts';
import type { BenchRow } from './types.ts';

type Tf = typeof import('@tensorflow/tfjs-core');
type Tensor = import('@tensorflow/tfjs-core').Tensor;
type Scalar = import('@tensorflow/tfjs-core').Scalar;
type Variable = import('@tensorflow/tfjs-core').Variable;

/** Per-sequence-length constants, kept across tidy scopes. */
interface Tables {
  cos: Tensor; // (1, T, 1, rotaryDim/2)
  sin: Tensor;
  mask: Tensor; // (T, T): 0 on and below the diagonal, −1e9 above
}

const MASKED = -1e9;

/** ‖x‖₂ over the last dim, kept as a trailing 1. */
function rowNorm(tf: Tf, x: Tensor): Tensor {
  return tf.sqrt(tf.sum(tf.square(x), -1, true));
}

/** Θ of spec/ops/norm_act.md, row-wise over the last dim. */
export function theta(tf: Tf, s: Tensor, variant: Variant, normN: number): Tensor {
  const root = Math.sqrt(normN);
  if (variant === 'l2_norm_gelu') return gelu(tf, tf.mul(s, tf.div(root, rowNorm(tf, s))));
  if (variant === 'gelu_l2_norm') {
    const g = gelu(tf, s);
    return tf.mul(g, tf.div(root, rowNorm(tf, g)));
  }
  return tf.mul(tf.softmax(s), normN);
}

/** Pattention: Θ(X·Kᵀ)·V (no 1/√d scale). */
function pattention(tf: Tf, x: Tensor, k: Tensor, v: Tensor, variant: Variant, normN: number): Tensor {
  return tf.matMul(theta(tf, tf.matMul(x, k, false, true), variant, normN), v);
}

/** Non-parametric LayerNorm over the last dim (biased variance). */
function layerNorm0(tf: Tf, x: Tensor, eps: number): Tensor {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)));
}

/** GPT-NeoX partial rotary on (B, T, H, D): pairs (j, j + r/2) for j < r/2; dims ≥ r pass. */
function rotary(tf: Tf, x: Tensor, t: Tables, r: number): Tensor {
  if (r === 0) return x;
  const D = x.shape[3]!;
  const half = r / 2;
  const x1 = tf.slice(x, [0, 0, 0, 0], [-1, -1, -1, half]);
  const x2 = tf.slice(x, [0, 0, 0, half], [-1, -1, -1, half]);
  const parts = [
    tf.sub(tf.mul(x1, t.cos), tf.mul(x2, t.sin)),
    tf.add(tf.mul(x2, t.cos), tf.mul(x1, t.sin)),
  ];
  if (r < D) parts.push(tf.slice(x, [0, 0, 0, r], [-1, -1, -1, D - r]));
  return tf.concat(parts, 3);
}

/** softmax(q·kᵀ/√D + causal mask)·v on (B, T, H, D), heads batched. */
function causalAttention(tf: Tf, q: Tensor, k: Tensor, v: Tensor, mask: Tensor): Tensor {
  const [qh, kh, vh] = [q, k, v].map((h) => tf.transpose(h, [0, 2, 1, 3])); // (B, H, T, D)
  const s = tf.add(tf.mul(tf.matMul(qh, kh, false, true), 1 / Math.sqrt(q.shape[3]!)), mask);
  return tf.transpose(tf.matMul(tf.softmax(s), vh), [0, 2, 1, 3]);
}

/** Mean cross-entropy of logits (N, V) against int32 targets (N). */
export function crossEntropy(tf: Tf, logits: Tensor, targets: Tensor): Scalar {
  const onehot = tf.cast(tf.oneHot(targets, logits.shape[1]!), 'float32');
  return tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(logits), onehot), -1))) as Scalar;
}

let modelCount = 0;

/** The TokenFormer of src/model.ts as tf.Variables named by official state-dict name. */
export class TfTokenFormer {
  /** Parameters by official name (the tfjs variable names carry a per-model prefix). */
  readonly vars = new Map<string, Variable>();
  private readonly tables = new Map<number, Tables>();

  constructor(readonly tf: Tf, readonly config: ModelConfig, host: Map<string, Float32Array>) {
    const id = modelCount++;
    for (const s of paramSpecs(config)) {
      const data = host.get(s.name);
      if (!data) throw new Error(`internal: no host weights for '${s.name}'`);
      const init = tf.tensor(data, s.shape, 'float32');
      this.vars.set(s.name, tf.variable(init, true, `tfjs_model${id}/${s.name}`));
      init.dispose();
    }
  }

  private p(name: string): Tensor {
    const v = this.vars.get(name);
    if (!v) throw new Error(`internal: parameter ${name} missing`);
    return v;
  }

  /** Rotary tables and causal mask for length T, built once (float64 angles on the host). */
  private tablesFor(T: number): Tables {
    const have = this.tables.get(T);
    if (have) return have;
    const tf = this.tf;
    const r = rotaryDim(this.config);
    const half = r / 2;
    const cos = new Float32Array(T * half), sin = new Float32Array(T * half);
    for (let t = 0; t < T; t++) {
      for (let i = 0; i < half; i++) {
        const th = t / this.config.rotaryBase ** ((2 * i) / r);
        cos[t * half + i] = Math.cos(th);
        sin[t * half + i] = Math.sin(th);
      }
    }
    const mask = new Float32Array(T * T);
    for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) mask[i * T + j] = MASKED;
    const made: Tables = {
      cos: tf.keep(tf.tensor(cos, [1, T, 1, half])),
      sin: tf.keep(tf.tensor(sin, [1, T, 1, half])),
      mask: tf.keep(tf.tensor(mask, [T, T])),
    };
    this.tables.set(T, made);
    return made;
  }

  /** One pre-norm block on x (N, C). */
  private block(x: Tensor, i: number, B: number, T: number): Tensor {
    const tf = this.tf;
    const c = this.config;
    const [lq, lk, lv, lp, lf] = blockPattentions(c, i);
    const patt = (h: Tensor, prefix: string) => pattention(
      tf, h, this.p(`${prefix}.key_param_tokens`), this.p(`${prefix}.value_param_tokens`), c.variant, normSlotsOf(c, prefix),
    );
    const heads4 = [B, T, c.numHeads, headDim(c)];
    const tab = this.tablesFor(T);
    const h = layerNorm0(tf, x, c.eps);
    const q = rotary(tf, tf.reshape(patt(h, lq.prefix), heads4), tab, rotaryDim(c));
    const k = rotary(tf, tf.reshape(patt(h, lk.prefix), heads4), tab, rotaryDim(c));
    const v = tf.reshape(patt(h, lv.prefix), heads4);
    const a = tf.reshape(causalAttention(tf, q, k, v, tab.mask), [B * T, c.hiddenSize]);
    const x1 = tf.add(x, patt(a, lp.prefix));
    return tf.add(x1, patt(layerNorm0(tf, x1, c.eps), lf.prefix));
  }

  /** ids: int32 (B·T) → logits (B·T, V). Call inside tf.tidy. */
  logits(ids: Tensor, B: number, T: number): Tensor {
    const tf = this.tf;
    const c = this.config;
    if (T > c.maxPositions) throw new Error(`sequence length ${T} exceeds max_position_embeddings ${c.maxPositions}`);
    let x = tf.gather(this.p(EMBEDDING), ids); // (N, C)
    for (let i = 0; i < c.numLayers; i++) x = this.block(x, i, B, T);
    const norm = finalNormPrefix(c);
    const y = tf.add(tf.mul(layerNorm0(tf, x, c.eps), this.p(`${norm}.weight`)), this.p(`${norm}.bias`));
    return tf.matMul(y, this.p(c.tied ? EMBEDDING : finalLinearName(c)), false, true);
  }

  /** Mean cross-entropy against int32 targets (B·T). Call inside tf.tidy. */
  loss(ids: Tensor, targets: Tensor, B: number, T: number): Scalar {
    return crossEntropy(this.tf, this.logits(ids, B, T), targets);
  }

  /** Loss and every parameter's gradient (tf.variableGrads), by official name. The caller
   *  owns the returned tensors. */
  lossAndGrads(ids: Tensor, targets: Tensor, B: number, T: number): { loss: Scalar; grads: Map<string, Tensor> } {
    const names = [...this.vars.keys()];
    const list = names.map((n) => this.vars.get(n)!);
    const { value, grads } = this.tf.variableGrads(() => this.loss(ids, targets, B, T), list);
    return { loss: value, grads: new Map(names.map((n, i) => [n, grads[list[i].name]])) };
  }

  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
    for (const t of this.tables.values()) this.tf.dispose([t.cos, t.sin, t.mask]);
    this.tables.clear();
  }
}

/** AdamW of spec/ops/adamw.md (src/train/optimizer.ts's recipe) in tf ops, moments as
 *  non-trainable tf.Variables; tf.train.adam has no decoupled weight decay. */
export class TfAdamW {
  step = 0;
  private readonly m = new Map<string, Variable>();
  private readonly v = new Map<string, Variable>();
  private readonly decay = new Map<string, number>();

  constructor(readonly model: TfTokenFormer, readonly hyper: AdamWHyper = OFFICIAL_ADAMW) {
    const tf = model.tf;
    for (const s of paramSpecs(model.config)) {
      for (const map of [this.m, this.v]) {
        const zeros = tf.zeros(s.shape);
        map.set(s.name, tf.variable(zeros, false));
        zeros.dispose();
      }
      this.decay.set(s.name, s.noDecay ? 0 : hyper.weightDecay);
    }
  }

  /** One update from the gradients (by official name), clipped to the global norm
   *  maxGradNorm. Call inside tf.tidy; returns Σ g² (a scalar in that scope). */
  update(grads: Map<string, Tensor>, lr: number): Tensor {
    const tf = this.model.tf;
    const { beta1, beta2, eps, maxGradNorm } = this.hyper;
    // NOTE: not tf.addN: its WebGPU kernel binds every input at once and fails validation
    // past the adapter's maxStorageBuffersPerShaderStage (8 on lavapipe).
    const normSq = [...grads.values()].map((g) => tf.sum(tf.square(g))).reduce((a, b) => tf.add(a, b));
    const coef = maxGradNorm > 0 ? tf.minimum(1, tf.div(maxGradNorm, tf.add(tf.sqrt(normSq), 1e-6))) : tf.scalar(1);
    this.step += 1;
    const bc1 = 1 - beta1 ** this.step;
    const bc2 = 1 - beta2 ** this.step;
    for (const [name, param] of this.model.vars) {
      const grad = grads.get(name);
      if (!grad) throw new Error(`internal: no gradient for '${name}'`);
      const g = tf.mul(grad, coef);
      const m = this.m.get(name)!, v = this.v.get(name)!;
      m.assign(tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1)));
      v.assign(tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2)));
      const decayed = tf.mul(param, 1 - lr * this.decay.get(name)!);
      const stepDir = tf.div(tf.div(m, bc1), tf.add(tf.sqrt(tf.div(v, bc2)), eps));
      param.assign(tf.sub(decayed, tf.mul(stepDir, lr)));
    }
    return normSq;
  }

  /** Forward, tfjs gradients, clip and update. Returns the loss before the update and Σ g²
   *  (both unread; the caller owns and disposes them). */
  trainStep(ids: Tensor, targets: Tensor, B: number, T: number, lr: number): { loss: Scalar; normSq: Tensor } {
    return this.model.tf.tidy(() => {
      const { loss, grads } = this.model.lossAndGrads(ids, targets, B, T);
      return { loss, normSq: this.update(grads, lr) };
    });
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
  }
}

/** benchModel's measurements (bench/model.ts) on the tfjs model: same config, weights, tokens. */
export async function benchTfjsModel(reps = 3): Promise<BenchRow[]> {
  const tf = await loadTfWebGPU();
  const c = BENCH_CONFIG;
  const B = BENCH_BATCH;
  const T = BENCH_SEQ;
  const rng = new Rng(1); // the same draws as benchModel: weights, then ids, then targets
  const model = new TfTokenFormer(tf, c, initParams(c, rng));
  const ids = tf.tensor1d(Int32Array.from({ length: B * T }, () => rng.int(c.vocabSize)), 'int32');
  const tgt = tf.tensor1d(Int32Array.from({ length: B * T }, () => rng.int(c.vocabSize)), 'int32');
  const opt = new TfAdamW(model);
  const fwdTime = await timeIt(async () => {
    const logits = tf.tidy(() => model.logits(ids, B, T));
    await logits.data(); // the readback is the sync point
    logits.dispose();
  }, reps);
  const stepTime = await timeIt(async () => {
    const { loss, normSq } = opt.trainStep(ids, tgt, B, T, 1e-4);
    await loss.data(); // the only readback of a training step
    tf.dispose([loss, normSq]);
  }, reps);
  opt.dispose();
  model.dispose();
  tf.dispose([ids, tgt]);
  const name = 'tfjs-webgpu';
  const tokens = B * T;
  return [
    { name: 'model forward', backend: name, value: tokens / fwdTime, unit: 'tokens/s' },
    { name: 'model forward', backend: name, value: (forwardFlopsPerToken(c, T) * tokens) / fwdTime / 1e9, unit: 'GFLOP/s' },
    { name: 'train step', backend: name, value: tokens / stepTime, unit: 'tokens/s' },
    { name: 'train step', backend: name, value: (trainFlopsPerToken(c, T) * tokens) / stepTime / 1e9, unit: 'GFLOP/s' },
  ];
}

if (process.argv[1]?.endsWith('bench/tfjs_model.ts')) {
  for (const r of await benchTfjsModel()) console.log(`${r.name.padEnd(16)} ${r.backend.padEnd(14)} ${r.value.toFixed(2)} ${r.unit}`);
}
