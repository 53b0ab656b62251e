// bench/gpu.sh's CPU-runnable path (--dry-run): the environment record, the TokenFormer-150M
// step bench at a tiny shape on the CPU reference, a tiny `scaling` run, the GPU-only steps
// marked skipped, all in the one JSON file the script promises.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const SCRIPT = join(import.meta.dirname, '..', 'bench', 'gpu.sh');

describe('bench/gpu.sh --dry-run', () => {
  it('writes one JSON with the environment, the tiny 150M-shape bench and a tiny scaling run', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'tf-gpu-')), 'gpu.json');
    const r = spawnSync('bash', [SCRIPT, '--dry-run', '--out', out], { encoding: 'utf8', timeout: 180_000 });
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(readFileSync(out, 'utf8'));
    expect(j.env).toMatchObject({ dryRun: true, gpu: '' });
    expect(j.env.node).toMatch(/^v\d+/);
    expect(['yes', 'no']).toContain(j.env.vulkanLoader);
    expect(j.parity.status).toBe('skipped');
    expect(j.bench.status).toBe('skipped');
    expect(j.train150m.status).toBe('ok');
    const t = j.train150m.result;
    expect(t).toMatchObject({ bench: 'train150m', backend: 'cpu', largestBatch: 2, seq: 32 });
    for (const a of t.attempts) {
      expect(a.ok).toBe(true);
      expect(a.tokensPerSecond).toBeGreaterThan(0);
      expect(a.peakLiveBytes).toBeGreaterThan(a.estimate.paramsGradsAdam); // weights, grads, m, v at least
      expect(a.peakLiveBytes).toBeLessThan(3 * a.estimate.total);
    }
    expect(j.scaling.status).toBe('ok');
    expect(j.scaling.result.headline).toMatchObject({ variant: 'zero', seeds: 1 });
    expect(j.scaling.result.headline.seriesRatio.mean).toBeGreaterThan(0);
    expect(typeof j.writtenAt).toBe('string');
  });
});
