// A few steps of the trainer's AdamW (official recipe: β 0.9/0.95, eps 1e-8, weight decay 0.1
// except norm parameters, global-norm clipping 1.0), checked against the golden training
// fixtures and, across backends, against the CPU reference.

import type { Backend, Handle } from '../../src/backend.ts';
import type { ModelConfig } from '../../src/config.ts';
import { TokenFormer } from '../../src/model.ts';
import { paramSpecs } from '../../src/params.ts';
import type { SafeTensors } from '../../src/safetensors.ts';
import { AdamW } from '../../src/train/optimizer.ts';
import { needIds } from '../helpers/golden.ts';

export interface StepRecord {
  losses: Float32Array; // loss before each update
  params: Map<string, Float32Array>; // after the last update
}

export async function runSteps(
  be: Backend<Handle>, config: ModelConfig, weights: Map<string, Float32Array>, fx: SafeTensors, lrs: number[],
): Promise<StepRecord> {
  const model = TokenFormer.fromHost(be, config, weights);
  const opt = new AdamW(be, paramSpecs(config));
  const ids = needIds(fx, 'input_ids');
  const tg = needIds(fx, 'targets');
  const idsT = be.uploadInt(ids.data, ids.shape);
  const tgT = be.uploadInt(tg.data, tg.shape);
  const losses = new Float32Array(lrs.length);
  for (let step = 1; step <= lrs.length; step++) {
    const fwd = model.forward(idsT, tgT);
    const grads = model.backward(fwd);
    losses[step - 1] = (await be.read(fwd.loss!))[0];
    be.dispose(fwd.logits);
    be.dispose(fwd.loss!);
    const normSq = opt.update(model.params, grads, lrs[step - 1]);
    be.dispose(normSq);
    for (const g of grads.values()) be.dispose(g);
  }
  const params = await model.toHost();
  model.dispose();
  return { losses, params };
}
