// The train and grow subcommands end to end in a child process: train, resume with more
// steps, grow the checkpoint with zero init and see the outputs check report no change.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../../src/train/checkpoint.ts';

const CLI = join(import.meta.dirname, 'fixtures', 'cli.ts');

function cli(...args: string[]): string {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`exit ${r.status}: ${r.stderr}`);
  return r.stdout;
}

describe('tokenformer train / grow', () => {
  it('trains, resumes, and grows a checkpoint without moving its outputs', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tf-cli-'));
    const cfg = join(dir, 'tiny.yml');
    writeFileSync(cfg, 'num_layers: 1\nhidden_size: 16\nnum_attention_heads: 2\nqkv_slot_num: 8\nproj_slot_num: 8\n'
      + 'ffn_slot_num: 16\nmax_position_embeddings: 32\nrotary_pct: 0.5\nvocab_size: 256\n');
    const ck = join(dir, 'ck');
    const out1 = cli('train', '--config', cfg, '--steps', '4', '--batch', '2', '--seq', '16', '--eval-every', '2',
      '--eval-batches', '1', '--out', ck, '--backend', 'cpu');
    expect(out1).toMatch(/step 4\/4 \| loss \d\.\d+ \| val \d\.\d+/);
    expect(loadCheckpoint(ck).state.step).toBe(4);
    const out2 = cli('train', '--resume', ck, '--steps', '6', '--backend', 'cpu');
    expect(out2).toMatch(/resuming at step 4/);
    const st = loadCheckpoint(ck).state;
    expect(st.step).toBe(6);
    expect(st.history.map((p) => p.step)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect((st.args as { batch: number }).batch).toBe(2); // the recipe came from the checkpoint
    const out3 = cli('grow', '--config', join(ck, 'config.yml'), '--weights', join(ck, 'weights.safetensors'),
      '--out-config', join(dir, 'g.yml'), '--out-weights', join(dir, 'g.safetensors'), '--qkv-slots', '16', '--ffn-slots', '32');
    expect(out3).toMatch(/max \|Δlogit\| = 0\.000e\+0 \(bit-identical\)/);
    expect(readFileSync(join(dir, 'g.yml'), 'utf8')).toMatch(/tokenformer_norm_slots:\n {2}sequential\.2\.attention\.query: 8/);
  });

  it('rejects bad input with one error line and exit code 2 (through bin/tokenformer.mjs)', () => {
    const bin = join(import.meta.dirname, '..', '..', 'bin', 'tokenformer.mjs');
    const dir = mkdtempSync(join(tmpdir(), 'tf-cli-err-'));
    const cases: [string[], RegExp][] = [
      [['train', '--steps', '3'], /^error: train needs --config/],
      [['train', '--resume', join(dir, 'none')], /^error: .*no checkpoint/],
      [['demo', '--schedule', 'sometimes'], /^error: --schedule must be continue or restart/],
    ];
    for (const [args, msg] of cases) {
      const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });
      expect(r.status).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(msg);
    }
  });
});
