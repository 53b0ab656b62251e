// The CLI contract: `forward` and `grad` reproduce the golden model fixtures through files,
// and bad input gives exit code 2, one `error:` line on stderr and no output file.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { readSafetensors, writeSafetensorsAtomic } from '../src/safetensors.ts';
import { checkGrads, checkValues } from './helpers/compare.ts';
import { goldenPath, loadFixture, loadManifest, need } from './helpers/golden.ts';

const manifest = loadManifest();
const tol = manifest.tolerances.reference;
const dir = mkdtempSync(join(tmpdir(), 'tf-cli-'));

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/tokenformer.mjs', ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function rows(ids: Int32Array, B: number, T: number): number[][] {
  return Array.from({ length: B }, (_, b) => Array.from(ids.subarray(b * T, (b + 1) * T)));
}

const m = manifest.models.find((x) => x.name.includes('untied')) ?? manifest.models[0];
const fx = loadFixture(m.file);
const weights = join(dir, 'w.safetensors');
const tokens = join(dir, 'tokens.json');
const targets = join(dir, 'targets.json');

beforeAll(() => {
  const params: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const [name, t] of fx) if (name.startsWith('sequential.')) params[name] = { shape: t.shape, data: t.data as Float32Array };
  writeSafetensorsAtomic(weights, params);
  const ids = need(fx, 'input_ids');
  const tg = need(fx, 'targets');
  writeFileSync(tokens, JSON.stringify(rows(ids.data as Int32Array, ids.shape[0], ids.shape[1])));
  writeFileSync(targets, JSON.stringify(rows(tg.data as Int32Array, tg.shape[0], tg.shape[1])));
});

describe('tokenformer forward / grad', () => {
  test(`forward reproduces the golden logits of ${m.name}`, () => {
    const out = join(dir, 'logits.safetensors');
    const r = cli('forward', '--config', goldenPath(m.config), '--weights', weights, '--tokens', tokens, '--out', out);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const logits = readSafetensors(out).get('logits')!;
    expect(logits.shape).toEqual(need(fx, 'logits').shape);
    expect(checkValues('logits', logits.data, need(fx, 'logits').data, tol.values)).toBeNull();
  });

  test(`grad reproduces the golden loss and every gradient of ${m.name}`, () => {
    const out = join(dir, 'grads.safetensors');
    const r = cli('grad', '--config', goldenPath(m.config), '--weights', weights, '--tokens', tokens, '--targets', targets, '--out', out);
    expect(r.code, r.err).toBe(0);
    const g = readSafetensors(out);
    expect(checkValues('loss', g.get('loss')!.data, need(fx, 'loss').data, tol.values)).toBeNull();
    let n = 0;
    for (const [name, t] of g) {
      if (name === 'loss') continue;
      expect(checkGrads(name, t.data, need(fx, `grad.${name}`).data, tol.grads)).toBeNull();
      n++;
    }
    expect(n).toBe([...fx.keys()].filter((k) => k.startsWith('grad.')).length);
  });
});

describe('bad input', () => {
  const bad = (name: string, file: string, content: string | Uint8Array) => {
    const p = join(dir, file);
    writeFileSync(p, content);
    return [name, p] as const;
  };
  const cases = () => [
    bad('ragged token rows', 'ragged.json', '[[1,2,3],[1,2]]'),
    bad('out-of-range id', 'range.json', `[[1, 2, ${1e6}]]`),
    bad('non-integer id', 'float.json', '[[1, 2.5]]'),
    bad('not JSON', 'nojson.json', '[[1, 2'),
    bad('negative id', 'neg.json', '[[-1, 2]]'),
  ];

  test.each(['ragged token rows', 'out-of-range id', 'non-integer id', 'not JSON', 'negative id'])('%s: exit 2, one error line, no output', (which) => {
    const [, path] = cases().find(([n]) => n === which)!;
    const out = join(dir, `never-${which.replace(/\W/g, '')}.safetensors`);
    const r = cli('forward', '--config', goldenPath(m.config), '--weights', weights, '--tokens', path, '--out', out);
    expect(r.code).toBe(2);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toMatch(/^error: /);
    expect(existsSync(out)).toBe(false);
  });

  test('a truncated weights file: exit 2, one error line, no output', () => {
    const trunc = join(dir, 'trunc.safetensors');
    writeFileSync(trunc, readFileSync(weights).subarray(0, 100));
    const out = join(dir, 'never-trunc.safetensors');
    const r = cli('forward', '--config', goldenPath(m.config), '--weights', trunc, '--tokens', tokens, '--out', out);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^error: .*trunc\.safetensors/);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(existsSync(out)).toBe(false);
  });

  test('a config that does not match the weights: exit 2', () => {
    const cfg = join(dir, 'wrong.yml');
    writeFileSync(cfg, readFileSync(goldenPath(m.config), 'utf8').replace(/(hidden[-_]size"?\s*:\s*)\d+/, '$164'));
    expect(readFileSync(cfg, 'utf8')).toMatch(/hidden[-_]size"?\s*:\s*64/);
    const r = cli('forward', '--config', cfg, '--weights', weights, '--tokens', tokens, '--out', join(dir, 'x.safetensors'));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^error: .*shape/);
  });

  test('targets shaped unlike tokens: exit 2', () => {
    const t2 = join(dir, 'short.json');
    writeFileSync(t2, '[[1]]');
    const r = cli('grad', '--config', goldenPath(m.config), '--weights', weights, '--tokens', tokens, '--targets', t2, '--out', join(dir, 'y.safetensors'));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^error: targets/);
  });

  test('a missing required flag and an unknown backend: exit 2', () => {
    expect(cli('forward', '--config', 'x').code).toBe(2);
    const r = cli('forward', '--config', goldenPath(m.config), '--weights', weights, '--tokens', tokens, '--out', join(dir, 'z'), '--backend', 'nope');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^error: unknown backend/);
  });
});
