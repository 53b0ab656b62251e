// Whole-model throughput on any backend: forward tokens/s and training-step tokens/s (forward,
// backward, AdamW) for the fixed bench config, with GFLOP/s from the exact product count.
// Omits: warm-up beyond one untimed step, and memory figures.

import type { Backend, Handle } from '../src/backend.ts';
import type { ModelConfig } from '../src/config.ts';
import { TokenFormer } from '../src/model.ts';
import { initParams, paramSpecs } from '../src/params.ts';
import { Rng } from '../src/rng.ts';
import { forwardFlopsPerToken, trainFlopsPerToken } from '../src/train/flops.ts';
import { AdamW } from '../src/train/optimizer.ts';
import type { BenchRow } from './types.ts';

/** The fixed small config every backend and PyTorch run in the bench. */
export const BENCH_CONFIG: ModelConfig = {
  numLayers: 2, hiddenSize: 128, numHeads: 4, qkvSlots: 128, projSlots: 128, ffnSlots: 512,
  maxPositions: 256, rotaryPct: 0.25, rotaryBase: 10000, variant: 'l2_norm_gelu', tied: true,
  eps: 1e-5, vocabSize: 256, normSlots: {},
};
export const BENCH_BATCH = 4;
export const BENCH_SEQ = 64;

/** Seconds per call of f, the median of `reps` timed calls after one warm-up call. */
export async function timeIt(f: () => Promise<void>, reps: number): Promise<number> {
  await f();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await f();
    times.push((performance.now() - t0) / 1000);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

export async function benchModel(be: Backend<Handle>, reps = 3): Promise<BenchRow[]> {
  const c = BENCH_CONFIG;
  const B = BENCH_BATCH;
  const T = BENCH_SEQ;
  const rng = new Rng(1);
  const model = TokenFormer.fromHost(be, c, initParams(c, rng));
  const ids = be.uploadInt(Int32Array.from({ length: B * T }, () => rng.int(c.vocabSize)), [B, T]);
  const tgt = be.uploadInt(Int32Array.from({ length: B * T }, () => rng.int(c.vocabSize)), [B, T]);
  const opt = new AdamW(be, paramSpecs(c));
  const fwdTime = await timeIt(async () => {
    const f = model.forward(ids, null);
    await be.read(f.logits); // the readback is the sync point
    model.release(f);
    be.dispose(f.logits);
  }, reps);
  const stepTime = await timeIt(async () => {
    const f = model.forward(ids, tgt);
    const g = model.backward(f);
    const nsq = opt.update(model.params, g, 1e-4);
    await be.read(f.loss!); // the only readback of a training step
    for (const t of [...g.values(), nsq, f.loss!, f.logits]) be.dispose(t);
  }, reps);
  model.dispose();
  const tokens = B * T;
  return [
    { name: 'model forward', backend: be.name, value: tokens / fwdTime, unit: 'tokens/s' },
    { name: 'model forward', backend: be.name, value: (forwardFlopsPerToken(c, T) * tokens) / fwdTime / 1e9, unit: 'GFLOP/s' },
    { name: 'train step', backend: be.name, value: tokens / stepTime, unit: 'tokens/s' },
    { name: 'train step', backend: be.name, value: (trainFlopsPerToken(c, T) * tokens) / stepTime / 1e9, unit: 'GFLOP/s' },
  ];
}
