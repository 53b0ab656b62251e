// A few AdamW steps straight on the backend kernels (official recipe: β 0.9/0.95, eps 1e-8,
// weight decay 0.1 except norm parameters, global-norm clipping 1.0): the oracle for the
// golden training fixtures and for backend-vs-CPU step parity.

import type { Backend, Handle } from '../../src/backend.ts';
import type { ModelConfig } from '../../src/config.ts';
import { TokenFormer } from '../../src/model.ts';
import { paramSpecs } from '../../src/params.ts';
import type { SafeTensors } from '../../src/safetensors.ts';
import { need } from '../helpers/golden.ts';

export interface StepRecord {
  losses: Float32Array; // loss before each update
  params: Map<string, Float32Array>; // after the last update
}

export async function runSteps(
  be: Backend<Handle>, config: ModelConfig, weights: Map<string, Float32Array>, fx: SafeTensors, lrs: number[],
): Promise<StepRecord> {
  const model = TokenFormer.fromHost(be, config, weights);
  const specs = paramSpecs(config);
  const moments = new Map(specs.map((s) => [s.name, { m: be.zeros(s.shape), v: be.zeros(s.shape) }]));
  const ids = need(fx, 'input_ids');
  const tg = need(fx, 'targets');
  const idsT = be.uploadInt(ids.data as Int32Array, ids.shape);
  const tgT = be.uploadInt(tg.data as Int32Array, tg.shape);
  const losses = new Float32Array(lrs.length);
  for (let step = 1; step <= lrs.length; step++) {
    const fwd = model.forward(idsT, tgT);
    const grads = model.backward(fwd);
    losses[step - 1] = (await be.read(fwd.loss!))[0];
    be.dispose(fwd.logits);
    be.dispose(fwd.loss!);
    const normSq = be.ops.sumSquares([...grads.values()]);
    for (const s of specs) {
      const mv = moments.get(s.name)!;
      const hp = {
        lr: lrs[step - 1], beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: s.noDecay ? 0 : 0.1,
        step, maxGradNorm: 1.0, gradScale: 1,
      };
      be.ops.adamw(model.params.get(s.name)!, grads.get(s.name)!, mv.m, mv.v, hp, normSq);
    }
    be.dispose(normSq);
    for (const g of grads.values()) be.dispose(g);
  }
  const params = await model.toHost();
  model.dispose();
  return { losses, params };
}
