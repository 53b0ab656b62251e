// Loading a released-checkpoint-sized `pytorch_model.bin`: a random TokenFormer-150M-shaped
// state dict (the official 150M_eval.yml, vocabulary padded to 50304, official names) written
// with our torch.save writer, then read back through the CLI's own path (readModelFiles: the
// restricted .bin reader, shape and finiteness checks) in a fresh child process, so its peak
// RSS is the load's alone. Reports the load seconds, the peak RSS and its ratio to the
// weights' size (the goal: at most about 2×).
// Also runnable alone: node --import tsx bench/load-bin.ts
// Omits: the backend upload (bench/generate.ts times init + upload).

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readConfigFile } from '../src/config-parse.ts';
import { initParams, paramSpecs } from '../src/params.ts';
import { Rng } from '../src/rng.ts';
import { writeTorchBinAtomic, type TensorOut } from '../src/torch-bin/write.ts';
import type { BenchRow } from './types.ts';

const CONFIG = join(import.meta.dirname, '..', 'test', 'fixtures', 'official-configs', '150M_eval.yml');

/** In the child: load `path` as the CLI does and print {seconds, peakRss} as JSON. */
async function child(path: string): Promise<void> {
  const { readModelFiles } = await import('../cli/io.ts');
  const t0 = performance.now();
  const { weights } = readModelFiles(CONFIG, path);
  const seconds = (performance.now() - t0) / 1000;
  if (weights.size === 0) throw new Error('no weights loaded');
  process.stdout.write(JSON.stringify({ seconds, peakRss: process.resourceUsage().maxRSS * 1024 }));
}

/** Writes the checkpoint, loads it in a child, returns the rows. */
export function benchLoadBin(): BenchRow[] {
  const dir = mkdtempSync(join(tmpdir(), 'tf-bench-bin-'));
  try {
    const path = join(dir, 'pytorch_model.bin');
    {
      const c = readConfigFile(CONFIG, { vocabFromWeights: 50304 });
      const w = initParams(c, new Rng(3));
      const tensors = new Map<string, TensorOut>();
      for (const s of paramSpecs(c)) tensors.set(s.name, { dtype: 'F32', shape: s.shape, data: w.get(s.name)! });
      writeTorchBinAtomic(path, tensors);
    }
    const bytes = statSync(path).size;
    const out = execFileSync(process.execPath, ['--import', 'tsx', import.meta.filename, '--child', path], { encoding: 'utf8' });
    const r = JSON.parse(out) as { seconds: number; peakRss: number };
    return [
      { name: 'load 150M-shaped pytorch_model.bin (f32)', backend: 'host', value: r.seconds, unit: 's' },
      { name: 'load 150M-shaped .bin: peak RSS', backend: 'host', value: r.peakRss / 2 ** 20, unit: 'MiB' },
      { name: 'load 150M-shaped .bin: peak RSS / file size', backend: 'host', value: r.peakRss / bytes, unit: '×' },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--child') await child(process.argv[3]);
else if (import.meta.filename === process.argv[1]) {
  for (const r of benchLoadBin()) console.log(`${r.name}: ${r.value.toFixed(2)} ${r.unit}`);
}
