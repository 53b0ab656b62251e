// `--weights pytorch_model.bin`: a real torch.save checkpoint (golden/torchbin/, written by
// torch itself) through the `forward` CLI gives the golden logits on every backend that loads
// here (the backend's own tolerance class), and `grad` gives the golden loss and gradients on
// the CPU reference, exactly as the same weights in safetensors do.

import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { readSafetensors } from '../src/safetensors.ts';
import { BACKEND_NAMES, toleranceClass, tryLoad } from './helpers/backends.ts';
import { runCli } from './helpers/cli.ts';
import { envWithoutDisplay } from './helpers/cli-golden.ts';
import { checkGrads, checkValues } from './helpers/compare.ts';
import { goldenPath, loadFixture, loadManifest, need } from './helpers/golden.ts';

interface BinEntry { file: string; model: string; dtype: string }
const bins = JSON.parse(readFileSync(goldenPath('torchbin/manifest.json'), 'utf8')).good as BinEntry[];
const manifest = loadManifest();
// One f32 file per golden model (those reproduce the golden logits; f16/bf16 round the weights).
const cases = manifest.models.map((m) => ({ m, bin: bins.find((b) => b.model === m.name && b.dtype === 'F32' && b.file === `${m.name}.f32.bin`)! }));
const dir = mkdtempSync(join(tmpdir(), 'tf-cli-bin-'));

function rows(t: { shape: number[]; data: Int32Array }): number[][] {
  const [B, T] = t.shape;
  return Array.from({ length: B }, (_, b) => Array.from(t.data.subarray(b * T, (b + 1) * T)));
}

function inputs(name: string) {
  const m = manifest.models.find((x) => x.name === name)!;
  const fx = loadFixture(m.file);
  const tokens = join(dir, `${name}.tokens.json`);
  const targets = join(dir, `${name}.targets.json`);
  writeFileSync(tokens, JSON.stringify(rows(need(fx, 'input_ids') as { shape: number[]; data: Int32Array })));
  writeFileSync(targets, JSON.stringify(rows(need(fx, 'targets') as { shape: number[]; data: Int32Array })));
  return { m, fx, tokens, targets };
}

describe('forward --weights pytorch_model.bin', () => {
  test('every golden model has an f32 torch.save file', () => {
    expect(cases.every((c) => c.bin !== undefined)).toBe(true);
  });

  for (const backend of BACKEND_NAMES) {
    test(`${backend}: golden logits from the .bin of every golden model`, async () => {
      const loaded = await tryLoad(backend);
      if (!loaded.backend) return; // tryLoad printed why (and throws when the backend is required)
      await loaded.backend.destroy();
      const tol = manifest.tolerances[toleranceClass(backend)].values;
      for (const { m, bin } of cases) {
        const { fx, tokens } = inputs(m.name);
        const out = join(dir, `${m.name}.${backend}.logits.safetensors`);
        const r = runCli(['forward', '--config', goldenPath(m.config), '--weights', goldenPath(`torchbin/${bin.file}`),
          '--tokens', tokens, '--out', out, '--backend', backend], { env: envWithoutDisplay(), timeout: 180_000 });
        expect(r.code, r.err).toBe(0);
        const got = readSafetensors(out).get('logits')!.data as Float32Array;
        expect(checkValues(`${m.name} logits`, got, need(fx, 'logits').data as Float32Array, tol)).toBeNull();
      }
    }, 600_000);
  }

  test('cpu: grad from a .bin gives the golden loss and every golden gradient', () => {
    const { m, bin } = cases[0];
    const { fx, tokens, targets } = inputs(m.name);
    const out = join(dir, 'grad.safetensors');
    const r = runCli(['grad', '--config', goldenPath(m.config), '--weights', goldenPath(`torchbin/${bin.file}`),
      '--tokens', tokens, '--targets', targets, '--out', out, '--backend', 'cpu']);
    expect(r.code, r.err).toBe(0);
    const got = readSafetensors(out);
    const tol = manifest.tolerances.reference;
    expect(checkValues('loss', got.get('loss')!.data as Float32Array, need(fx, 'loss').data as Float32Array, tol.values)).toBeNull();
    let n = 0;
    for (const [name, t] of fx) {
      if (!name.startsWith('grad.')) continue;
      const g = got.get(name.slice(5));
      expect(g, name).toBeDefined();
      expect(checkGrads(name, g!.data as Float32Array, t.data as Float32Array, tol.grads)).toBeNull();
      n++;
    }
    expect(n).toBeGreaterThan(10);
  });
});
