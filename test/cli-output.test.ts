// What the CLI does with its outputs: a stdout that is full (/dev/full) is one error line and
// exit 2 (and grow then writes nothing); a stdout whose reader went away (EPIPE) ends quietly;
// forward and grad over row chunks equal the unchunked results (forward byte for byte on the
// CPU reference, grad within the reference tolerance of the golden gradients).

import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { readSafetensors } from '../src/safetensors.ts';
import { expectUserError, inPool, listTree, runCliAsync } from './helpers/cli.ts';
import { idsJson, modelDir } from './helpers/cli-model.ts';
import { checkGrads, checkValues } from './helpers/compare.ts';
import { loadFixture, loadManifest, need } from './helpers/golden.ts';

const m = modelDir('tf-output-');
const d = (name: string) => join(m.dir, name);
const forward = (out: string, tokens = m.tokens, ...rest: string[]) =>
  ['forward', '--config', m.config, '--weights', m.weights, '--tokens', tokens, '--out', out, ...rest];
const grad = (out: string, tokens = m.tokens, targets = m.targets, ...rest: string[]) =>
  ['grad', '--config', m.config, '--weights', m.weights, '--tokens', tokens, '--targets', targets, '--out', out, ...rest];
const grow = (name: string) =>
  ['grow', '--config', m.config, '--weights', m.weights, '--out-config', d(`${name}.yml`), '--out-weights', d(`${name}.safetensors`), '--ffn-slots', '48'];
const TRAIN_CFG = 'num_layers: 1\nhidden_size: 16\nnum_attention_heads: 2\nqkv_slot_num: 8\nproj_slot_num: 8\n'
  + 'ffn_slot_num: 16\nmax_position_embeddings: 32\nrotary_pct: 0.5\nvocab_size: 256\n';

describe('stdout that cannot take the output', () => {
  test('/dev/full: --help, grow and train fail with one line; forward (silent) succeeds', async () => {
    writeFileSync(d('train.yml'), TRAIN_CFG);
    const full = openSync('/dev/full', 'w');
    const opts = { stdio: ['ignore', full, 'pipe'] as ['ignore', number, 'pipe'] };
    const train = ['train', '--config', d('train.yml'), '--steps', '1', '--batch', '1', '--seq', '8', '--out', d('ck'), '--backend', 'cpu'];
    try {
      const [help, g, f, t] = await inPool([
        () => runCliAsync(['--help'], opts),
        () => runCliAsync(grow('full'), opts),
        () => runCliAsync(forward(d('full-logits.safetensors')), opts),
        () => runCliAsync(train, opts),
      ], 4);
      expectUserError(help, /^error: cannot write to stdout: ENOSPC$/);
      expectUserError(g, /cannot write to stdout: ENOSPC; the grown config and weights were not written/);
      expect(existsSync(d('full.yml')) || existsSync(d('full.safetensors'))).toBe(false);
      expect({ code: f.code, err: f.err }).toEqual({ code: 0, err: '' });
      expect(readSafetensors(d('full-logits.safetensors')).get('logits')!.shape).toEqual([m.B, m.T, m.vocab]);
      expectUserError(t, /cannot write to stdout: ENOSPC/);
    } finally {
      closeSync(full);
    }
    expect(listTree(m.dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  }, 90_000);

  test('a closed pipe: --help, grow and forward end quietly, grow\'s files complete', async () => {
    const opts = { closeStdout: true };
    writeFileSync(d('bad.json'), '[[1, 2');
    const [help, g, f, bad] = await inPool([
      () => runCliAsync(['--help'], opts),
      () => runCliAsync(grow('piped'), opts),
      () => runCliAsync(forward(d('piped-logits.safetensors')), opts),
      () => runCliAsync(forward(d('never.safetensors'), d('bad.json')), { closeStderr: true }), // its error line has no reader
    ], 4);
    for (const r of [help, g, f]) expect({ code: r.code, signal: r.signal, err: r.err }).toEqual({ code: 0, signal: null, err: '' });
    expect({ code: bad.code, signal: bad.signal }).toEqual({ code: 2, signal: null });
    expect(readFileSync(d('piped.yml'), 'utf8')).toMatch(/ffn_slot_num: 48/);
    expect(readSafetensors(d('piped.safetensors')).get('sequential.2.mlp.key_param_tokens')!.shape).toEqual([48, 32]);
  }, 60_000);
});

describe('chunked forward and grad', () => {
  const manifest = loadManifest();
  const tol = manifest.tolerances.reference;

  test('forward in chunks of 4 rows writes the same bytes as one chunk; grad in chunks matches', async () => {
    writeFileSync(d('t40.json'), idsJson(40, 64, m.vocab, 1));
    writeFileSync(d('y40.json'), idsJson(40, 64, m.vocab, 2));
    const rs = await inPool([
      () => runCliAsync(forward(d('one.safetensors'), d('t40.json'))),
      () => runCliAsync(forward(d('chunked.safetensors'), d('t40.json'), '--chunk-tokens', '300')), // 4 rows of 64
      () => runCliAsync(forward(d('small-budget.safetensors'), d('t40.json'), '--max-memory', '1M')), // the budget picks the rows
      () => runCliAsync(grad(d('g-one.safetensors'), d('t40.json'), d('y40.json'))),
      () => runCliAsync(grad(d('g-chunked.safetensors'), d('t40.json'), d('y40.json'), '--chunk-tokens', '640')), // 4 chunks of 10 rows
    ]);
    for (const r of rs) expect(r.code, r.err).toBe(0);
    const one = readFileSync(d('one.safetensors'));
    expect(readSafetensors(d('one.safetensors')).get('logits')!.shape).toEqual([40, 64, m.vocab]);
    expect(readFileSync(d('chunked.safetensors')).equals(one)).toBe(true);
    expect(readFileSync(d('small-budget.safetensors')).equals(one)).toBe(true);
    const g1 = readSafetensors(d('g-one.safetensors'));
    const g4 = readSafetensors(d('g-chunked.safetensors'));
    expect([...g4.keys()].sort()).toEqual([...g1.keys()].sort());
    expect(checkValues('loss', g4.get('loss')!.data, g1.get('loss')!.data, tol.values)).toBeNull();
    for (const [name, t] of g1) if (name !== 'loss') expect(checkGrads(name, g4.get(name)!.data, t.data, tol.grads)).toBeNull();
  }, 90_000);

  test('grad one row per chunk reproduces the golden loss and gradients', async () => {
    const fx = loadFixture(manifest.models.find((x) => x.name === 'tiny_l2_tied')!.file);
    const r = await runCliAsync(grad(d('g-golden.safetensors'), m.tokens, m.targets, '--chunk-tokens', String(m.T)));
    expect(r.code, r.err).toBe(0);
    const g = readSafetensors(d('g-golden.safetensors'));
    expect(checkValues('loss', g.get('loss')!.data, need(fx, 'loss').data, tol.values)).toBeNull();
    let n = 0;
    for (const [name, t] of g) {
      if (name === 'loss') continue;
      expect(checkGrads(name, t.data, need(fx, `grad.${name}`).data, tol.grads)).toBeNull();
      n++;
    }
    expect(n).toBe(m.params.size);
  }, 60_000);
});
