// The n inside √n of each Pattention layer (config tokenformer_norm_slots), checked on whole
// models against the independent naive forward (test/helpers/naive-model.ts): a zero-grown
// model keeps the frozen old count, random growth uses the new one, and a pin set by hand is
// what the model uses. Omits: gradients (the growth property tests cover old gradients).

import { describe, expect, it } from 'vitest';
import { createCpuBackend } from '../../backends/cpu.ts';
import type { ModelConfig } from '../../src/config.ts';
import { growModel } from '../../src/grow.ts';
import { TokenFormer } from '../../src/model.ts';
import { initParams } from '../../src/params.ts';
import { Rng } from '../../src/rng.ts';
import { naiveForward, type NaiveOptions } from '../helpers/naive-model.ts';
import { tinyConfig } from '../helpers/tiny.ts';

const be = createCpuBackend();
const B = 2, T = 4;

/** Official init with keys ×25 and values ×5, so Θ is far from linear and √n matters. */
function weights(c: ModelConfig, seed: number): Map<string, Float32Array> {
  const w = initParams(c, new Rng(seed));
  for (const [name, d] of w) {
    const s = name.endsWith('key_param_tokens') ? 25 : name.endsWith('value_param_tokens') ? 5 : name.includes('word_emb') ? 10 : 1;
    d.forEach((v, i) => (d[i] = v * s));
  }
  return w;
}

const rng = new Rng(17);
const c0 = tinyConfig({ numLayers: 1, vocabSize: 23 });
const ids = Int32Array.from({ length: B * T }, () => rng.int(c0.vocabSize));
const tgt = Int32Array.from({ length: B * T }, () => rng.int(c0.vocabSize));

async function modelLogits(c: ModelConfig, w: Map<string, Float32Array>): Promise<{ logits: Float32Array; loss: number }> {
  const m = TokenFormer.fromHost(be, c, w);
  const f = m.forward(be.uploadInt(ids, [B, T]), be.uploadInt(tgt, [B, T]));
  const out = { logits: await be.read(f.logits), loss: (await be.read(f.loss!))[0] };
  m.release(f);
  m.dispose();
  return out;
}

/** max |a − b| / max |b|. */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0, s = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    s = Math.max(s, Math.abs(b[i]));
  }
  return d / s;
}

/** The model's logits match the naive forward with `opt`, and not with `wrong` (teeth). */
async function expectNaive(c: ModelConfig, w: Map<string, Float32Array>, opt: NaiveOptions, wrong?: NaiveOptions): Promise<void> {
  const got = await modelLogits(c, w);
  const want = naiveForward(c, w, ids, tgt, B, T, opt);
  expect(relErr(got.logits, want.logits)).toBeLessThan(1e-4);
  expect(Math.abs(got.loss - want.loss)).toBeLessThan(1e-4 * want.loss);
  if (wrong) expect(relErr(got.logits, naiveForward(c, w, ids, tgt, B, T, wrong).logits)).toBeGreaterThan(1e-2);
}

describe('√n of each Pattention layer (tokenformer_norm_slots)', () => {
  for (const variant of ['l2_norm_gelu', 'gelu_l2_norm', 'softmax'] as const) {
    it(`an ungrown ${variant} model matches the naive forward with n = its token counts`, async () => {
      const c = variant === 'softmax' ? { ...c0, variant, numLayers: 2, tied: false } : { ...c0, variant }; // 2 layers, own head
      await expectNaive(c, weights(c, 3), {});
    });
  }

  it('a zero-grown model uses the frozen old count, not the new one', async () => {
    const w = weights(c0, 4);
    const g = growModel(c0, w, { qkv: 13, ffn: 29 }, 'zero', new Rng(8));
    const old = new Map([['qkv', c0.qkvSlots], ['proj', c0.projSlots], ['ffn', c0.ffnSlots]]);
    const oldN = (prefix: string) => old.get(/attention\.(query|key|value)$/.test(prefix) ? 'qkv' : prefix.endsWith('proj') ? 'proj' : 'ffn')!;
    // Independent of the pins the config records: the old counts come from c0.
    await expectNaive(g.config, g.weights, { normN: (p) => oldN(p) }, { normN: (_p, n) => n });
  });

  it('random-init growth uses the new count (the official recipe)', async () => {
    const w = weights(c0, 5);
    const g = growModel(c0, w, { ffn: 29 }, 'random', new Rng(8));
    await expectNaive(g.config, g.weights, { normN: (_p, n) => n }, { normN: (p, n) => (p.endsWith('mlp') ? c0.ffnSlots : n) });
  });

  it('a pin different from n changes the output, and the model uses the pin', async () => {
    const w = weights(c0, 6);
    const pins = { 'sequential.2.mlp': 5, 'sequential.2.attention.key': 30 };
    const c = { ...c0, normSlots: pins };
    const normN = (p: string, n: number) => (Object.hasOwn(pins, p) ? pins[p as keyof typeof pins] : n);
    await expectNaive(c, w, { normN }, { normN: (_p, n) => n });
    const a = await modelLogits(c, w), b = await modelLogits(c0, w);
    expect(relErr(a.logits, b.logits)).toBeGreaterThan(1e-2);
  });
});
