// A folder with a golden tiny model as CLI inputs (config, weights, tokens, targets) for the
// file-safety and output tests, plus small file makers. Omits: checking results against the
// golden values (test/cli.test.ts does that).

import { closeSync, mkdtempSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serializeSafetensors, type TensorIn } from '../../src/safetensors.ts';
import { goldenPath, loadFixture, loadManifest, need } from './golden.ts';

export interface ModelDir {
  dir: string;
  config: string;
  weights: string;
  tokens: string; // the golden (B, T) ids
  targets: string;
  params: Map<string, TensorIn & { data: Float32Array }>;
  B: number;
  T: number;
  vocab: number;
}

function rows(ids: Int32Array, B: number, T: number): number[][] {
  return Array.from({ length: B }, (_, b) => Array.from(ids.subarray(b * T, (b + 1) * T)));
}

/** A fresh folder holding the golden `tiny_l2_tied` model and its inputs. */
export function modelDir(prefix = 'tf-safety-'): ModelDir {
  const m = loadManifest().models.find((x) => x.name === 'tiny_l2_tied')!;
  const fx = loadFixture(m.file);
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const params = new Map<string, TensorIn & { data: Float32Array }>();
  for (const [name, t] of fx) if (name.startsWith('sequential.')) params.set(name, { shape: t.shape, data: t.data as Float32Array });
  const weights = join(dir, 'w.safetensors');
  writeFileSync(weights, serializeSafetensors(params));
  const ids = need(fx, 'input_ids');
  const tg = need(fx, 'targets');
  const [B, T] = ids.shape;
  writeFileSync(join(dir, 'tokens.json'), JSON.stringify(rows(ids.data as Int32Array, B, T)));
  writeFileSync(join(dir, 'targets.json'), JSON.stringify(rows(tg.data as Int32Array, B, T)));
  const vocab = params.get('sequential.0.word_embeddings.weight')!.shape[0];
  return {
    dir, config: goldenPath(m.config), weights, tokens: join(dir, 'tokens.json'), targets: join(dir, 'targets.json'),
    params, B, T, vocab,
  };
}

/** Random-looking but seeded (B, T) ids in [0, vocab), as JSON text. */
export function idsJson(B: number, T: number, vocab: number, seed = 1): string {
  let s = seed;
  const next = () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s % vocab;
  };
  return JSON.stringify(Array.from({ length: B }, () => Array.from({ length: T }, next)));
}

/** Fills the filesystem holding `dir` (a small tmpfs) until a write fails. */
export function fillUp(dir: string): void {
  const fd = openSync(join(dir, 'filler'), 'w');
  const block = Buffer.alloc(4096, 1);
  try {
    for (;;) writeSync(fd, block);
  } catch {
    // ENOSPC: full; now the last bytes
    try {
      for (;;) writeSync(fd, block, 0, 1);
    } catch {
      // full to the byte
    }
  } finally {
    closeSync(fd);
  }
}
