// Checkpoint folders: round trip, and atomicity under SIGKILL at every phase of a save and at
// random moments (the previous or the new checkpoint must load, complete and consistent).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadCheckpoint, saveCheckpoint, type Checkpoint } from '../../src/train/checkpoint.ts';
import { fixtureRng, fixtureState } from './fixtures/ckpt-state.ts';

const CHILD = join(import.meta.dirname, 'fixtures', 'ckpt-child.ts');

function runChild(dir: string, killAt: string, killAfterMs?: number): Promise<{ signal: string | null; out: string }> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dir, killAt], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (killAfterMs !== undefined && out.includes('saved 1\n') && !child.killed) {
        setTimeout(() => child.kill('SIGKILL'), killAfterMs);
      }
    });
    child.on('error', rej);
    child.on('exit', (_code, signal) => res({ signal, out }));
  });
}

/** The checkpoint loads, and every tensor and the state agree on one step. */
function checkConsistent(dir: string): number {
  const ck = loadCheckpoint(dir);
  const step = ck.state.step;
  for (const t of [...ck.weights.values(), ...ck.moments!.values()]) {
    expect(t.data.length).toBe(1 << 20);
    expect(t.data[0]).toBe(step);
    expect(t.data[t.data.length - 1]).toBe(step);
  }
  expect(ck.state.dataRng).toEqual(fixtureRng(step));
  return step;
}

describe('checkpoint', () => {
  it('round-trips weights, moments and state', () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'tf-ck-')), 'ck');
    const ck: Checkpoint = {
      weights: new Map([['a', { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }]]),
      moments: new Map([['m.a', { shape: [2, 3], data: new Float32Array(6).fill(0.5) }], ['v.a', { shape: [2, 3], data: new Float32Array(6) }]]),
      state: fixtureState(7, [{ step: 7, tokens: 10, flops: 100, lr: 1e-3, loss: 2.5 }]),
    };
    saveCheckpoint(dir, ck, 'num_layers: 1\n');
    saveCheckpoint(dir, { ...ck, state: { ...ck.state, step: 8 } }, 'num_layers: 1\n');
    const back = loadCheckpoint(dir);
    expect(back.state.step).toBe(8);
    expect(back.state.history).toEqual(ck.state.history);
    expect(Array.from(back.weights.get('a')!.data)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(back.weights.get('a')!.shape).toEqual([2, 3]);
    expect(back.moments!.get('m.a')!.data[5]).toBe(0.5);
    expect(readdirSync(join(dir, '..'))).toEqual(['ck']); // no temp folders left
    expect(() => loadCheckpoint(join(dir, '..', 'nope'))).toThrow(/no checkpoint/);
  });

  for (const phase of ['weights.safetensors', 'optimizer.safetensors', 'config.yml', 'state.json', '(renamed aside)']) {
    it(`a SIGKILL after "${phase}" of a save leaves checkpoint 1 loadable`, async () => {
      const dir = join(mkdtempSync(join(tmpdir(), 'tf-kill-')), 'ck');
      const r = await runChild(dir, phase);
      expect(r.signal).toBe('SIGKILL');
      expect(r.out).toBe('saved 1\n');
      expect(checkConsistent(dir)).toBe(1);
      if (phase === '(renamed aside)') expect(existsSync(dir)).toBe(false); // recovered from .old-*
    });
  }

  it('SIGKILLs at random moments always leave a complete checkpoint', async () => {
    for (const ms of [3, 17, 41, 90]) {
      const dir = join(mkdtempSync(join(tmpdir(), 'tf-rand-')), 'ck');
      const r = await runChild(dir, 'never', ms);
      expect(r.signal).toBe('SIGKILL');
      const saved = r.out.match(/saved \d+/g)!.length;
      const step = checkConsistent(dir);
      expect(step === saved || step === saved + 1).toBe(true); // the kill may land after the rename, before the print
      saveCheckpoint(dir, loadCheckpoint(dir), ''); // and the next save cleans up after the dead one
      expect(readdirSync(join(dir, '..'))).toEqual(['ck']);
    }
  });
});
