// The committed golden/torchbin/ fixtures must equal what golden/gen_torchbin.py (PyTorch)
// writes now, byte for byte. Needs Debian's python3 with torch; without it the test skips with
// the reason, unless TOKENFORMER_REQUIRE names 'torch', where that is a failure.

import { spawnSync } from 'node:child_process';
import { describe, expect, test } from 'vitest';
import { required } from './helpers/backends.ts';

const PY = '/usr/bin/python3';
const probe = spawnSync(PY, ['-c', 'import torch'], { encoding: 'utf8' });
const reason = probe.error ? `${PY} not found` : probe.status !== 0 ? `${PY} has no torch` : '';
if (reason && !required('torch')) console.warn(`[skip] torchbin drift check: ${reason}`);

describe.skipIf(reason !== '' && !required('torch'))('golden/torchbin fixtures', () => {
  test('regenerating them with PyTorch reproduces the committed files', () => {
    expect(reason).toBe('');
    const r = spawnSync(PY, ['golden/gen_torchbin.py', '--check'], { encoding: 'utf8', timeout: 120_000 });
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toContain('torchbin drift: OK');
  }, 120_000);
});
