// Inputs for the convert tests: an official GPT-NeoX config (the 150M training file) with small
// model sizes substituted, random weights for it (the official init), and float32 values that
// probe f16/bf16 rounding (ties, subnormals, overflow, ±0, ±∞, NaN).

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelConfig } from '../../src/config.ts';
import { readConfigFile } from '../../src/config-parse.ts';
import { initParams, paramSpecs } from '../../src/params.ts';
import { Rng } from '../../src/rng.ts';
import { serializeSafetensors } from '../../src/safetensors.ts';

const OFFICIAL = join(import.meta.dirname, '..', 'fixtures', 'official-configs', '150M_train_pile.yml');

export interface SmallModel {
  layers: number;
  hidden: number;
  heads: number;
  qkv: number;
  proj: number;
  ffn: number;
  tied: boolean;
  pipe: number;
  vocab: number;
}

export const SMALL: SmallModel = { layers: 2, hidden: 16, heads: 2, qkv: 8, proj: 6, ffn: 12, tied: true, pipe: 1, vocab: 128 };

/** The official 150M training config with `m`'s sizes; returns its path and the parsed config. */
export function writeOfficialConfig(dir: string, name: string, m: SmallModel): { path: string; config: ModelConfig } {
  const sub: Record<string, string> = {
    pipe_parallel_size: String(m.pipe), num_layers: String(m.layers), hidden_size: String(m.hidden),
    num_attention_heads: String(m.heads), qkv_slot_num: String(m.qkv), proj_slot_num: String(m.proj),
    ffn_slot_num: String(m.ffn), max_position_embeddings: '64', no_weight_tying: String(!m.tied),
  };
  let text = readFileSync(OFFICIAL, 'utf8');
  for (const [k, v] of Object.entries(sub)) text = text.replace(new RegExp(`"${k}": *[A-Za-z0-9.]+`), `"${k}": ${v}`);
  text = text.replace(/"attention_config": \[\[\["tokenformer"\], *\d+\]\]/, `"attention_config": [[["tokenformer"], ${m.layers}]]`);
  const path = join(dir, `${name}.yml`);
  writeFileSync(path, text);
  return { path, config: readConfigFile(path, { vocabFromWeights: m.vocab }) };
}

/** Official-init random weights for `c` as an F32 safetensors file; returns them too. */
export function writeWeights(path: string, c: ModelConfig, seed: number): Map<string, Float32Array> {
  const w = initParams(c, new Rng(seed));
  writeFileSync(path, serializeSafetensors(new Map(paramSpecs(c).map((s) => [s.name, { shape: s.shape, data: w.get(s.name)! }]))));
  return w;
}

/** float32 values at the edges of f16/bf16 rounding, then `n` random ones (seeded). */
export function edgeValues(n: number, seed: number): Float32Array {
  const f32 = (bits: number) => new Float32Array(new Uint32Array([bits >>> 0]).buffer)[0];
  const edges = [
    0, -0, 1, -1, 65504, 65519.99, 65520, -65520, 1e6, Infinity, -Infinity, NaN,
    2 ** -24, 2 ** -25, 1.5 * 2 ** -25, 2 ** -26, 3 * 2 ** -25, 2 ** -14, 2 ** -14 - 2 ** -24, 1e-30,
    1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -11 + 2 ** -20, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -8 + 2 ** -20,
    f32(0x7f7fffff), f32(0xff7fffff), f32(0x00000001), f32(0x80000001), f32(0x7f7f8000), f32(0x3f808000),
  ];
  const out = new Float32Array(edges.length + n);
  out.set(edges);
  const rng = new Rng(seed);
  const bits = new Uint32Array(out.buffer, 4 * edges.length, n);
  for (let i = 0; i < n; i++) {
    const scale = [1e-6, 1e-3, 1, 1e3, 6e4][i % 5];
    out[edges.length + i] = rng.normal() * scale;
    if (i % 7 === 0) bits[i] = rng.nextU32(); // any bit pattern
  }
  return out;
}
