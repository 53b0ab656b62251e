// Generation throughput on a TokenFormer-150M-shaped model (the official 150M_eval.yml with the
// padded GPT-NeoX vocabulary, 50304; random official init): a 64-token prompt in one batch,
// then 32 greedy tokens one cached step at a time (src/generate.ts). Reports prompt tokens/s,
// generated tokens/s, and the seconds to initialize and upload the 150M parameters.
// Also runnable alone: node --import tsx bench/generate.ts [backend…] (default cpu webgpu).
// Omits: sampling cost beyond greedy (a few ms per token with top-k), and batch > 1.

import { join } from 'node:path';
import type { Backend, Handle } from '../src/backend.ts';
import { readConfigFile } from '../src/config-parse.ts';
import { generate } from '../src/generate.ts';
import { TokenFormer } from '../src/model.ts';
import { initParams } from '../src/params.ts';
import { Rng } from '../src/rng.ts';
import { tryLoad } from '../test/helpers/backends.ts';
import type { BenchRow } from './types.ts';

const CONFIG = join(import.meta.dirname, '..', 'test', 'fixtures', 'official-configs', '150M_eval.yml');
export const GEN_PROMPT = 64;
export const GEN_NEW = 32;
const TOKENIZER_SIZE = 50277;

/** The rows for one backend: init + upload seconds, prompt tokens/s, generated tokens/s. */
export async function benchGenerate(be: Backend<Handle>): Promise<BenchRow[]> {
  const c = readConfigFile(CONFIG, { vocabFromWeights: 50304 });
  const t0 = performance.now();
  const model = TokenFormer.fromHost(be, c, initParams(c, new Rng(1)));
  const loadS = (performance.now() - t0) / 1000;
  const rng = new Rng(2);
  const prompt = Array.from({ length: GEN_PROMPT }, () => rng.int(TOKENIZER_SIZE));
  const opts = { temperature: 0, topK: 0, topP: 1, maxNewTokens: GEN_NEW, seed: 0, allowed: TOKENIZER_SIZE, eosId: null };
  await generate(model, prompt.slice(0, 4), { ...opts, maxNewTokens: 2 }); // warm-up: kernels, tables
  let tFirst = 0;
  const t1 = performance.now();
  const out = await generate(model, prompt, opts, () => { if (tFirst === 0) tFirst = performance.now(); });
  const t2 = performance.now();
  model.dispose();
  const name = 'generate 150M-shaped (prompt 64, 32 new)';
  return [
    { name: `${name}: init + upload`, backend: be.name, value: loadS * 1000, unit: 'ms' },
    { name: `${name}: prompt`, backend: be.name, value: GEN_PROMPT / ((tFirst - t1) / 1000), unit: 'tokens/s' },
    { name: `${name}: new tokens`, backend: be.name, value: (out.ids.length - 1) / ((t2 - tFirst) / 1000), unit: 'tokens/s' },
  ];
}

/** For bench/run.ts: every loaded backend that can hold the model (GPU.js cannot: 2^24 elements). */
export async function benchGenerateAll(loaded: Backend<Handle>[], notes: string[]): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const be of loaded) {
    if (be.name.startsWith('gpujs')) {
      notes.push(`generate 150M-shaped: ${be.name} skipped (its embedding, 50304 × 768, is over GPU.js's 2^24-element tensors)`);
      continue;
    }
    process.stdout.write(`generate 150M-shaped on ${be.name}…\n`);
    rows.push(...(await benchGenerate(be)));
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const name of process.argv.slice(2).length ? process.argv.slice(2) : ['cpu', 'webgpu']) {
    const l = await tryLoad(name);
    if (!l.backend) continue;
    for (const r of await benchGenerate(l.backend)) console.log(`${r.backend.padEnd(10)} ${r.name}: ${r.value.toPrecision(4)} ${r.unit}`);
    await l.backend.destroy();
  }
}
