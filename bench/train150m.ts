// Training-step benchmark at TokenFormer-150M's official shapes (test/fixtures/official-configs/
// 150M_eval.yml: 12 layers, hidden 768, qkv/proj 768 and ffn 3072 tokens, GPT-NeoX vocab 50304),
// random init, T = 2048 by default, on any backend: for each batch size tried (doubling until
// one fails or the memory estimate passes --memory-limit) the median step time, tokens/s, the
// peak of live tensor bytes, and what params + grads + Adam + saved activations need
// (src/limits.ts). Writes one JSON file. Omits: mixed precision and activation checkpointing.
//
//   node --import tsx bench/train150m.ts [--backend webgpu] [--seq 2048] [--batches 1,2,4,...]
//     [--steps 3] [--memory-limit BYTES] [--tiny] [--probe] [--out FILE.json]
// --probe prints only the backend and its adapter description (bench/gpu.sh checks it first).
// --tiny swaps in a small shape (2 layers, hidden 64, vocab 512, T 32) for CPU smoke tests.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadBackend } from '../backends/index.ts';
import type { Backend, Handle } from '../src/backend.ts';
import type { ModelConfig } from '../src/config.ts';
import { NEOX_20B_VOCAB, readConfigFile } from '../src/config-parse.ts';
import { activationFloatsPerToken, paramFloats, trainBytes } from '../src/limits.ts';
import { TokenFormer } from '../src/model.ts';
import { initParams, paramSpecs } from '../src/params.ts';
import { Rng } from '../src/rng.ts';
import { trainFlopsPerToken } from '../src/train/flops.ts';
import { AdamW, disposeAll } from '../src/train/optimizer.ts';

const CONFIG = join(import.meta.dirname, '..', 'test', 'fixtures', 'official-configs', '150M_eval.yml');

interface Args { backend: string; seq: number; batches: number[]; steps: number; memoryLimit: number; tiny: boolean; probe: boolean; out: string | null }

function parseArgs(argv: string[]): Args {
  const a: Args = { backend: 'auto', seq: 2048, batches: [1, 2, 4, 8, 16, 32, 64], steps: 3, memoryLimit: Infinity, tiny: false, probe: false, out: null };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1];
    switch (argv[i]) {
      case '--backend': a.backend = v; i++; break;
      case '--seq': a.seq = Number(v); i++; break;
      case '--batches': a.batches = v.split(',').map(Number); i++; break;
      case '--steps': a.steps = Number(v); i++; break;
      case '--memory-limit': a.memoryLimit = Number(v); i++; break;
      case '--out': a.out = v; i++; break;
      case '--tiny': a.tiny = true; break;
      case '--probe': a.probe = true; break;
      default: throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  if (a.tiny && !argv.includes('--seq')) a.seq = 32;
  if (!(a.seq >= 1) || !(a.steps >= 1) || a.batches.some((b) => !(b >= 1))) throw new Error('bad --seq, --steps or --batches');
  return a;
}

function benchConfig(tiny: boolean, seq: number): ModelConfig {
  const c = readConfigFile(CONFIG, { vocabFromWeights: NEOX_20B_VOCAB });
  const shaped = tiny ? { ...c, numLayers: 2, hiddenSize: 64, numHeads: 4, qkvSlots: 64, projSlots: 64, ffnSlots: 256, vocabSize: 512 } : c;
  return { ...shaped, maxPositions: Math.max(shaped.maxPositions, seq) };
}

/** Peak bytes of live tensor storage during one attempt, from the backend's own allocator
 *  count (Backend.memory: a fused op's saved state included), above what was alive when it
 *  started (the CPU backends of one process share host memory and its count). */
function peakTracker<T extends Handle>(be: Backend<T>): () => number {
  const m = be.memory?.();
  if (!m) throw new Error(`${be.name}: the backend does not count its memory (Backend.memory)`);
  m.resetPeak();
  const before = m.liveBytes;
  return () => m.peakBytes - before;
}

/** One batch size: median seconds per step after one warm-up step, and the peak live bytes. */
async function tryBatch(a: Args, c: ModelConfig, host: Map<string, Float32Array>, B: number) {
  const be = await loadBackend(a.backend);
  const peak = peakTracker(be);
  const T = a.seq;
  try {
    const model = TokenFormer.fromHost(be, c, host);
    const opt = new AdamW(be, paramSpecs(c));
    const rng = new Rng(7);
    const ids = be.uploadInt(Int32Array.from({ length: B * T }, () => rng.int(c.vocabSize)), [B, T]);
    const tgt = be.uploadInt(Int32Array.from({ length: B * T }, () => rng.int(c.vocabSize)), [B, T]);
    const times: number[] = [];
    let loss = NaN;
    for (let s = 0; s <= a.steps; s++) {
      const t0 = performance.now();
      const f = model.forward(ids, tgt);
      const g = model.backward(f);
      const nsq = opt.update(model.params, g, 1e-4);
      loss = (await be.read(f.loss!))[0]; // the step's only readback, its sync point
      disposeAll(be, [...g.values(), nsq, f.loss!, f.logits]);
      if (s > 0) times.push((performance.now() - t0) / 1000);
    }
    times.sort((x, y) => x - y);
    const sec = times[Math.floor(times.length / 2)];
    return { batch: B, ok: true, loss, stepSeconds: sec, tokensPerSecond: (B * T) / sec, gflops: (trainFlopsPerToken(c, T) * B * T) / sec / 1e9, peakLiveBytes: peak() };
  } catch (e) {
    return { batch: B, ok: false, error: String(e instanceof Error ? e.message : e).split('\n')[0].slice(0, 300), peakLiveBytes: peak() };
  } finally {
    await be.destroy().catch(() => {});
  }
}

function estimate(c: ModelConfig, B: number, T: number) {
  const P = paramFloats(c);
  const paramsGradsAdam = 4 * 4 * P; // weights, gradients, m, v (float32)
  const activations = 4 * B * T * activationFloatsPerToken(c, T);
  return { paramsGradsAdam, activations, total: paramsGradsAdam + activations, trainBytesWithCheckpoint: trainBytes(c, B, T) };
}

/** The backend's name and (WebGPU) adapter description, e.g. to check it is not lavapipe. */
async function adapterOf(name: string): Promise<{ backend: string; adapter: string | null }> {
  const be = await loadBackend(name);
  const adapter = 'adapter' in be && typeof be.adapter === 'string' ? be.adapter : null;
  await be.destroy();
  return { backend: be.name, adapter };
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  if (a.probe) {
    process.stdout.write(`${JSON.stringify(await adapterOf(a.backend))}\n`);
    return;
  }
  const c = benchConfig(a.tiny, a.seq);
  const host = initParams(c, new Rng(1));
  const attempts: object[] = [];
  let largest: number | null = null;
  for (const B of a.batches) {
    const est = estimate(c, B, a.seq);
    if (est.total > a.memoryLimit) {
      attempts.push({ batch: B, ok: false, skipped: `estimate ${est.total} B over --memory-limit ${a.memoryLimit}`, estimate: est });
      break;
    }
    const r = await tryBatch(a, c, host, B);
    attempts.push({ ...r, estimate: est });
    process.stderr.write(`train150m B=${B} T=${a.seq}: ${r.ok ? `${(r as { tokensPerSecond: number }).tokensPerSecond.toFixed(0)} tokens/s` : `failed: ${(r as { error: string }).error}`}\n`);
    if (!r.ok) break;
    largest = B;
  }
  const report = {
    bench: 'train150m', shape: a.tiny ? 'tiny (smoke test)' : 'TokenFormer-150M (150M_eval.yml)', config: c, seq: a.seq,
    params: paramFloats(c), trainFlopsPerToken: trainFlopsPerToken(c, a.seq), ...(await adapterOf(a.backend)), largestBatch: largest,
    attempts, note: 'peakLiveBytes: the peak of live tensor storage counted at the backend allocator (Backend.memory; a fused op saved state included; not the buffer pool, staging buffers or driver overhead); bench/gpu.sh adds nvidia-smi\'s device peak',
    at: new Date().toISOString(),
  };
  const text = `${JSON.stringify(report, null, 1)}\n`;
  if (a.out) writeFileSync(a.out, text);
  else process.stdout.write(text);
}

await main();
