// `npm run bench`: every available backend, TensorFlow.js and PyTorch on the same fixed config,
// in one run, reported side by side as ratios (the machine is noisy; absolute numbers drift).
// Omits: timed assertions (benchmarks report, tests assert).

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import type { Backend, Handle } from '../src/backend.ts';
import { forwardFlopsPerToken, trainFlopsPerToken } from '../src/train/flops.ts';
import { BENCH_BATCH, BENCH_CONFIG, BENCH_SEQ, benchModel } from './model.ts';
import { sections } from './sections.ts';
import type { BenchRow } from './types.ts';
import { tryLoad } from '../test/helpers/backends.ts';

const SYSTEM_PYTHON = '/usr/bin/python3';

/** PyTorch eager fp32 on the bench config, or a reason it could not run. */
function torchRows(device: 'cpu' | 'cuda'): BenchRow[] | string {
  if (!existsSync(SYSTEM_PYTHON)) return `${SYSTEM_PYTHON} not found`;
  try {
    const out = execFileSync(SYSTEM_PYTHON, ['bench/torch_bench.py', JSON.stringify(BENCH_CONFIG), String(BENCH_BATCH), String(BENCH_SEQ), '5', device], {
      encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 300_000,
    });
    const r = JSON.parse(out.trim().split('\n').pop()!);
    const tokens = BENCH_BATCH * BENCH_SEQ;
    const name = `pytorch-${device} ${r.torch}`;
    return [
      { name: 'model forward', backend: name, value: tokens / r.forward_s, unit: 'tokens/s' },
      { name: 'model forward', backend: name, value: (forwardFlopsPerToken(BENCH_CONFIG, BENCH_SEQ) * tokens) / r.forward_s / 1e9, unit: 'GFLOP/s' },
      { name: 'train step', backend: name, value: tokens / r.step_s, unit: 'tokens/s' },
      { name: 'train step', backend: name, value: (trainFlopsPerToken(BENCH_CONFIG, BENCH_SEQ) * tokens) / r.step_s / 1e9, unit: 'GFLOP/s' },
    ];
  } catch (e) {
    const msg = (e as { stderr?: string }).stderr?.trim().split('\n').pop() ?? String(e);
    return `pytorch ${device} unavailable: ${msg}`;
  }
}

/** Prints each measurement group with every row as a ratio to the group's cpu row (or first). */
function report(rows: BenchRow[]): string {
  const lines: string[] = [];
  const groups = new Map<string, BenchRow[]>();
  for (const r of rows) {
    const key = `${r.name} [${r.unit}]`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  for (const [key, g] of groups) {
    lines.push(`\n${key}`);
    const base = g.find((r) => r.backend === 'cpu') ?? g[0];
    for (const r of g) {
      // a time (ms): lower is better, so the ratio is the speed-up base/value
      const ratio = r.unit === 'ms' ? base.value / r.value : r.value / base.value;
      lines.push(`  ${r.backend.padEnd(28)} ${r.value.toPrecision(4).padStart(10)}   ×${ratio.toFixed(2)} ${r.unit === 'ms' ? 'speed' : ''} vs ${base.backend}`);
    }
  }
  return lines.join('\n');
}

async function main() {
  const rows: BenchRow[] = [];
  const notes: string[] = [];
  const only = process.env.BENCH_BACKENDS?.split(',');
  const names = (only ?? ['cpu', 'webgpu', 'gpujs-webgpu', 'gpujs-headlessgl', 'gpujs-cpu']);
  const c = BENCH_CONFIG;
  console.log(`bench config: L=${c.numLayers} C=${c.hiddenSize} H=${c.numHeads} qkv=${c.qkvSlots} proj=${c.projSlots} ffn=${c.ffnSlots} V=${c.vocabSize}, B=${BENCH_BATCH} T=${BENCH_SEQ}`);
  const loaded: Backend<Handle>[] = [];
  for (const name of names) {
    const l = await tryLoad(name);
    if (!l.backend) {
      notes.push(`${name}: skipped (${l.reason})`);
      continue;
    }
    loaded.push(l.backend);
    process.stdout.write(`model on ${name}…\n`);
    rows.push(...(await benchModel(l.backend, name === 'gpujs-cpu' ? 1 : 3)));
  }
  for (const s of sections) {
    process.stdout.write(`${s.name}…\n`);
    const r = await s.run(loaded);
    if (typeof r === 'string') notes.push(`${s.name}: ${r}`);
    else rows.push(...r);
  }
  rows.push(...(await (await import('./generate.ts')).benchGenerateAll(loaded, notes))); // 150M-shaped generation tokens/s
  rows.push(...(await import('./load-bin.ts')).benchLoadBin()); // 150M-shaped pytorch_model.bin: load s, peak RSS
  for (const device of ['cpu', ...(process.env.BENCH_CUDA ? ['cuda' as const] : [])] as const) {
    const t = torchRows(device);
    if (typeof t === 'string') notes.push(t);
    else rows.push(...t);
  }
  for (const be of loaded) await be.destroy();
  const text = report(rows) + (notes.length ? `\n\nnotes:\n  ${notes.join('\n  ')}` : '');
  console.log(text);
  mkdirSync('out', { recursive: true });
  writeFileSync('out/bench.json', JSON.stringify({ config: c, batch: BENCH_BATCH, seq: BENCH_SEQ, rows, notes }, null, 2));
  console.log('\nwrote out/bench.json');
}

await main();
