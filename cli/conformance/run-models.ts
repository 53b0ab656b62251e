// Runs the model cases of a conformance suite on a backend: a model case (the traced forward,
// logits, loss, every gradient), a train case (AdamW steps with clipping) and a grow case
// (zero-init growth from the base weights and the given new value rows, then the grown model).
// Tensor names and layouts: spec/conformance.md. Used by the exporter on the CPU reference and by
// `conformance run` on any backend.
// Omits: random-init growth (not function-preserving, so nothing to check but the draw) and
// gradient accumulation.

import type { Backend, Handle } from '../../src/backend.ts';
import type { ModelConfig } from '../../src/config.ts';
import { UserError } from '../../src/errors.ts';
import { quote } from '../../src/fsguard.ts';
import { TokenFormer } from '../../src/model.ts';
import { paramSpecs } from '../../src/params.ts';
import { AdamW } from '../../src/train/optimizer.ts';
import { caseConfig, type CaseJson } from './format.ts';
import { needInput, type HostMap, type Outputs } from './run-ops.ts';

type B = Backend<Handle>;

/** The parameters of config `c` from host tensors under their official names. */
function paramsOf(c: ModelConfig, inputs: HostMap, caseName: string, prefix = ''): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const s of paramSpecs(c)) {
    const t = needInput(inputs, prefix + s.name, caseName);
    if (!(t.data instanceof Float32Array)) throw new UserError(`case ${quote(caseName)}: ${quote(s.name)} must be F32`);
    out.set(s.name, t.data);
  }
  return out;
}

function idsOf(be: B, inputs: HostMap, name: string, caseName: string): Handle {
  const t = needInput(inputs, name, caseName);
  if (!(t.data instanceof Int32Array) || t.shape.length !== 2) {
    throw new UserError(`case ${quote(caseName)}: ${quote(name)} must be I32 [B, T]`);
  }
  return be.uploadInt(t.data, t.shape);
}

/** Forward with every intermediate (reshaped to [B, T, C] or [B, T, V]), loss and gradients. */
async function traced(be: B, c: ModelConfig, weights: Map<string, Float32Array>, inputs: HostMap, caseName: string, out: Outputs): Promise<void> {
  const model = TokenFormer.fromHost(be, c, weights);
  const ids = idsOf(be, inputs, 'input_ids', caseName);
  const targets = idsOf(be, inputs, 'targets', caseName);
  const [Bn, T] = ids.shape;
  const kept: [string, Handle][] = [];
  const fwd = model.forward(ids, targets, { trace: (name, t) => kept.push([name, be.reshape(t, t.shape)]) });
  for (const [name, h] of kept) {
    const last = name === 'logits' ? c.vocabSize : c.hiddenSize;
    out.set(name, { shape: [Bn, T, last], data: await be.read(h) });
    be.dispose(h);
  }
  out.set('loss', { shape: [], data: await be.read(fwd.loss!) });
  const grads = model.backward(fwd);
  for (const [name, g] of backwardOrder(c, grads)) {
    out.set(`grad.${name}`, { shape: [...g.shape], data: await be.read(g) });
    be.dispose(g);
  }
  for (const t of [fwd.logits, fwd.loss!, ids, targets]) be.dispose(t);
  model.dispose();
}

/** Gradients in the reverse of the parameter order, about the order a backward pass reaches them:
 *  head and final norm, then blocks L−1 … 0 (mlp, proj, value, key, query), the embedding last. */
export function backwardOrder<V>(c: ModelConfig, grads: Map<string, V>): [string, V][] {
  const names = paramSpecs(c).map((s) => s.name);
  const emb = names[0];
  const rest = names.slice(1).reverse(); // final_linear?, norm.bias, norm.weight, then blocks from the last
  const order = [...rest, emb];
  return order.map((n) => {
    const g = grads.get(n);
    if (g === undefined) throw new Error(`internal: no gradient for ${n}`);
    return [n, g];
  });
}

async function runModel(be: B, cj: CaseJson, inputs: HostMap): Promise<Outputs> {
  const c = caseConfig(cj);
  const out: Outputs = new Map();
  await traced(be, c, paramsOf(c, inputs, cj.name), inputs, cj.name, out);
  return out;
}

async function runTrain(be: B, cj: CaseJson, inputs: HostMap): Promise<Outputs> {
  const c = caseConfig(cj);
  const o = cj.optimizer;
  if (!o || o.name !== 'adamw' || !Array.isArray(o.lrs)) throw new UserError(`case ${quote(cj.name)}: optimizer must be adamw with lrs`);
  if (o.clipEps !== 1e-6) throw new UserError(`case ${quote(cj.name)}: this adapter clips with eps 1e-6, the case says ${o.clipEps}`);
  const model = TokenFormer.fromHost(be, c, paramsOf(c, inputs, cj.name));
  const noDecay = new Set(o.noDecay);
  const opt = new AdamW(be, paramSpecs(c).map((s) => ({ name: s.name, shape: s.shape, noDecay: noDecay.has(s.name) })),
    { beta1: o.beta1, beta2: o.beta2, eps: o.eps, weightDecay: o.weightDecay, maxGradNorm: o.maxGradNorm });
  const ids = idsOf(be, inputs, 'input_ids', cj.name);
  const targets = idsOf(be, inputs, 'targets', cj.name);
  const out: Outputs = new Map();
  for (let step = 1; step <= o.lrs.length; step++) {
    const fwd = model.forward(ids, targets);
    const grads = model.backward(fwd);
    out.set(`step${step}.loss`, { shape: [], data: await be.read(fwd.loss!) });
    const normSq = opt.update(model.params, grads, o.lrs[step - 1]);
    const nsq = await be.read(normSq);
    out.set(`step${step}.grad_norm`, { shape: [], data: Float32Array.of(Math.sqrt(nsq[0])) });
    for (const t of [fwd.logits, fwd.loss!, normSq, ...grads.values()]) be.dispose(t);
    for (const s of paramSpecs(c)) {
      out.set(`step${step}.param.${s.name}`, { shape: [...s.shape], data: await be.read(model.params.get(s.name)!) });
    }
  }
  for (const t of [ids, targets]) be.dispose(t);
  opt.dispose();
  model.dispose();
  return out;
}

/** Zero-init growth on the host: each grown layer's keys get (to − from) zero rows, its values the given rows. */
export function growWeights(cj: CaseJson, base: Map<string, Float32Array>, inputs: HostMap): Map<string, Float32Array> {
  const g = cj.growth;
  if (!g || g.init !== 'zero' || !Array.isArray(g.layers)) throw new UserError(`case ${quote(cj.name)}: growth must be { init: "zero", layers }`);
  const out = new Map(base);
  for (const l of g.layers) {
    const key = base.get(`${l.prefix}.key_param_tokens`);
    const value = base.get(`${l.prefix}.value_param_tokens`);
    const rows = needInput(inputs, `new_values.${l.prefix}`, cj.name);
    if (!key || !value || !(rows.data instanceof Float32Array) || l.from <= 0 || l.to < l.from) {
      throw new UserError(`case ${quote(cj.name)}: cannot grow ${quote(l.prefix)} from ${l.from} to ${l.to}`);
    }
    const dIn = key.length / l.from;
    const dOut = value.length / l.from;
    if (rows.data.length !== (l.to - l.from) * dOut) throw new UserError(`case ${quote(cj.name)}: new_values.${l.prefix} has the wrong size`);
    const k2 = new Float32Array(l.to * dIn); // new rows stay 0
    k2.set(key);
    const v2 = new Float32Array(l.to * dOut);
    v2.set(value);
    v2.set(rows.data, l.from * dOut);
    out.set(`${l.prefix}.key_param_tokens`, k2);
    out.set(`${l.prefix}.value_param_tokens`, v2);
  }
  return out;
}

async function runGrow(be: B, cj: CaseJson, inputs: HostMap): Promise<Outputs> {
  const base = caseConfig(cj, 'baseConfig');
  const c = caseConfig(cj);
  const grown = growWeights(cj, paramsOf(base, inputs, cj.name), inputs);
  const out: Outputs = new Map();
  for (const s of paramSpecs(c)) {
    const w = grown.get(s.name);
    if (!w || w.length !== s.shape.reduce((a, b) => a * b, 1)) throw new UserError(`case ${quote(cj.name)}: growth does not give ${quote(s.name)} its config shape`);
    out.set(`grown.${s.name}`, { shape: [...s.shape], data: w });
  }
  await traced(be, c, grown, inputs, cj.name, out);
  return out;
}

export const MODEL_RUNNERS: Record<'model' | 'train' | 'grow', (be: B, c: CaseJson, inputs: HostMap) => Promise<Outputs>> = {
  model: runModel,
  train: runTrain,
  grow: runGrow,
};
