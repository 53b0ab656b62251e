// The committed golden fixtures must equal what golden/gen.py (PyTorch) produces now. Needs
// Debian's python3 with torch; without it the test skips with the reason, unless
// TOKENFORMER_REQUIRE names 'torch' (as CI does), where that is a failure.

import { spawnSync } from 'node:child_process';
import { describe, expect, test } from 'vitest';
import { required } from './helpers/backends.ts';

const PY = '/usr/bin/python3';
const probe = spawnSync(PY, ['-c', 'import torch'], { encoding: 'utf8' });
const reason = probe.error ? `${PY} not found` : probe.status !== 0 ? `${PY} has no torch` : '';
if (reason && !required('torch')) console.warn(`[skip] golden drift check: ${reason}`);

describe.skipIf(reason !== '' && !required('torch'))('golden fixtures', () => {
  test('regenerating them with PyTorch reproduces the committed files', () => {
    expect(reason).toBe('');
    const r = spawnSync(PY, ['golden/check_drift.py'], { encoding: 'utf8', timeout: 300_000 });
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
  }, 300_000);
});
