// A golden model fixture on any backend: its weights on the host, and the check of logits,
// loss and every gradient against the fixture (a list of violations; empty = pass).

import { expect } from 'vitest';
import type { Backend, Handle } from '../../src/backend.ts';
import { readConfigFile } from '../../src/config-parse.ts';
import { TokenFormer } from '../../src/model.ts';
import { checkGrads, checkValues } from '../helpers/compare.ts';
import { goldenPath, loadFixture, loadManifest, need, needIds, type ModelFixture } from '../helpers/golden.ts';

const manifest = loadManifest();

export function hostModel(fx: ReturnType<typeof loadFixture>, m: ModelFixture) {
  const config = readConfigFile(goldenPath(m.config), {});
  const weights = new Map<string, Float32Array>();
  for (const [name, t] of fx) {
    if (name.startsWith('sequential.') && t.data instanceof Float32Array) weights.set(name, t.data);
  }
  return { config, weights };
}

export async function modelCheck(be: Backend<Handle>, m: ModelFixture, tolClass: 'reference' | 'gpu_f32') {
  const tol = manifest.tolerances[tolClass];
  const fx = loadFixture(m.file);
  const { config, weights } = hostModel(fx, m);
  const model = TokenFormer.fromHost(be, config, weights);
  const ids = needIds(fx, 'input_ids');
  const tg = needIds(fx, 'targets');
  const fwd = model.forward(be.uploadInt(ids.data, ids.shape), be.uploadInt(tg.data, tg.shape));
  const errors: string[] = [];
  const push = (e: string | null) => e && errors.push(e);
  push(checkValues('logits', await be.read(fwd.logits), need(fx, 'logits').data, tol.values));
  push(checkValues('loss', await be.read(fwd.loss!), need(fx, 'loss').data, tol.values));
  const grads = model.backward(fwd);
  for (const [name, g] of grads) push(checkGrads(`grad ${name}`, await be.read(g), need(fx, `grad.${name}`).data, tol.grads));
  expect(grads.size).toBe(weights.size);
  model.dispose();
  return errors;
}
