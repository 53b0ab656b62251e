// Bad input to forward, grad and grow is one clean `error:` line and exit 2, within seconds
// and bounded memory, with no output file: JSON nested 200,000 deep, FIFOs and /dev/zero as
// inputs, absurd or malformed slot flags, an I32 parameter, newlines and 10⁶-dim shapes in
// headers, weights whose outputs overflow float32, a forward over the memory budget.

import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { serializeSafetensors, type TensorIn } from '../src/safetensors.ts';
import { expectUserError, inPool, listTree, runCliAsync } from './helpers/cli.ts';
import { idsJson, modelDir } from './helpers/cli-model.ts';

const m = modelDir('tf-input-');
const d = (name: string) => join(m.dir, name);
const OUT = d('never.safetensors');
const fwd = (o: { config?: string; weights?: string; tokens?: string }, ...rest: string[]) =>
  ['forward', '--config', o.config ?? m.config, '--weights', o.weights ?? m.weights, '--tokens', o.tokens ?? m.tokens, '--out', OUT, ...rest];
const grad = (o: { weights?: string; targets?: string }) =>
  ['grad', '--config', m.config, '--weights', o.weights ?? m.weights, '--tokens', m.tokens, '--targets', o.targets ?? m.targets, '--out', OUT];
const grow = (...flags: string[]) =>
  ['grow', '--config', m.config, '--weights', m.weights, '--out-config', d('g.yml'), '--out-weights', d('g.safetensors'), '--no-check', ...flags];

type Case = [label: string, args: string[], msg: RegExp, env?: Record<string, string>];

/** Runs every case (overlapping), expects the one-line contract, and that no output appeared. */
async function expectAll(cases: Case[]): Promise<void> {
  const before = listTree(m.dir);
  const results = await inPool(cases.map(([, args, , env]) => () =>
    runCliAsync(args, { env: { ...process.env, ...env } })));
  results.forEach((r, i) => {
    const [label, , msg] = cases[i];
    expect.soft(() => expectUserError(r, msg), `${label}: ${r.err}`).not.toThrow();
    expect.soft(r.err.length, `${label}: error line too long`).toBeLessThan(600);
  });
  expect(listTree(m.dir)).toEqual(before);
  expect(existsSync(OUT)).toBe(false);
}

function weightsWith(file: string, edit: (p: Map<string, TensorIn>) => void): string {
  const p = new Map<string, TensorIn>([...m.params].map(([n, t]) => [n, { shape: t.shape, data: t.data.slice() }]));
  edit(p);
  writeFileSync(d(file), serializeSafetensors(p));
  return d(file);
}

describe('inputs that used to crash, hang or fill memory', () => {
  test('JSON nested 200,000 deep as tokens and as targets', async () => {
    const deep = '['.repeat(200_000) + ']'.repeat(200_000);
    writeFileSync(d('deep.json'), deep);
    writeFileSync(d('deep-in-row.json'), `[[${deep}]]`);
    await expectAll([
      ['tokens nested deep', fwd({ tokens: d('deep.json') }), /"[^"]*deep\.json": \[0\]\[0\] is an array, not an integer token id/],
      ['a deep value in a row', fwd({ tokens: d('deep-in-row.json') }), /\[0\]\[0\] is an array/],
      ['targets nested deep', grad({ targets: d('deep-in-row.json') }), /\[0\]\[0\] is an array/],
    ]);
  }, 60_000);

  test('a FIFO or /dev/zero as config, weights, tokens or targets', async () => {
    execFileSync('mkfifo', [d('fifo')]);
    const fifo = d('fifo');
    await expectAll([
      ['FIFO config', fwd({ config: fifo }), /config "[^"]*fifo" is a FIFO, not a regular file/],
      ['FIFO weights', fwd({ weights: fifo }), /weights "[^"]*fifo" is a FIFO/],
      ['FIFO tokens', fwd({ tokens: fifo }), /tokens file "[^"]*fifo" is a FIFO/],
      ['FIFO targets', grad({ targets: fifo }), /targets file "[^"]*fifo" is a FIFO/],
      ['/dev/zero config', fwd({ config: '/dev/zero' }), /config "\/dev\/zero" is a device/],
      ['/dev/zero weights', grad({ weights: '/dev/zero' }), /weights "\/dev\/zero" is a device/],
      ['/dev/zero tokens', fwd({ tokens: '/dev/zero' }), /tokens file "\/dev\/zero" is a device/],
      ['a folder as weights', fwd({ weights: m.dir }), /is a directory, not a regular file/],
      ['over TOKENFORMER_MAX_INPUT_BYTES', fwd({}), /over the 1000-byte input limit \(raise it with TOKENFORMER_MAX_INPUT_BYTES\)/,
        { TOKENFORMER_MAX_INPUT_BYTES: '1000' }],
    ]);
  }, 90_000);
});

describe('grow: slot counts and memory', () => {
  test('malformed, non-positive and absurd slot counts', async () => {
    const bad = ['1.5', '-3', 'NaN', 'abc', '1e400', '1e11', '0', ''];
    await expectAll([
      ...bad.map((v): Case => [`--ffn-slots ${v}`, grow(`--ffn-slots=${v}`), /--ffn-slots expects a positive integer/]),
      ['--layer N = 0', grow('--layer', 'sequential.2.mlp=0'), /--layer expects PREFIX=N with N a positive integer/],
      ['--ffn-slots 10¹¹', grow('--ffn-slots', '100000000000'), /growing to 1\.280e\+13 parameters needs about \d+(\.\d+)? TiB, over the .* memory limit/],
      ['--ffn-slots 3·10⁷ under --max-memory 1G', grow('--ffn-slots', '30000000', '--max-memory', '1G'),
        /needs about \d+(\.\d+)? GiB, over the 1\.00 GiB memory limit \(raise it with --max-memory/],
      ['--qkv-slots 3·10⁷ under TOKENFORMER_MAX_MEMORY', grow('--qkv-slots', '30000000'), /over the 1\.00 GiB memory limit/,
        { TOKENFORMER_MAX_MEMORY: '1G' }],
      ['a tensor past 2³¹ elements under a huge budget', grow('--ffn-slots', '100000000000', '--max-memory', '1e18'),
        /sequential\.2\.mlp with 100000000000 tokens would be a \(100000000000, 32\) tensor, over the 2147483647-element limit/],
      ['a bad --max-memory', grow('--ffn-slots', '48', '--max-memory', 'lots'), /memory limit must be a size/],
    ]);
  }, 90_000);
});

describe('weights and messages', () => {
  test('an I32 parameter, a newline in a name or path, a 10⁶-dim shape', async () => {
    const key = 'sequential.2.mlp.key_param_tokens';
    const i32 = weightsWith('i32.safetensors', (p) => {
      const t = p.get(key)!;
      p.set(key, { shape: t.shape, data: new Int32Array(t.data.length) });
    });
    const evil = weightsWith('evil.safetensors', (p) => p.set('evil\nname', { shape: [1], data: new Float32Array(1) }));
    const dims = weightsWith('dims.safetensors', (p) => p.set(key, { shape: new Array(1_000_000).fill(1), data: new Float32Array(1) }));
    const nl = d('bad\nname.json');
    writeFileSync(nl, '[[1, 2');
    await expectAll([
      ['I32 parameter', fwd({ weights: i32 }), /"sequential\.2\.mlp\.key_param_tokens" is I32; parameters must be F32, F16 or BF16/],
      ['newline in a tensor name', fwd({ weights: evil }), /unexpected tensor "evil\\nname" for this config/],
      ['newline in a path', fwd({ tokens: nl }), /"[^"\n]*bad\\nname\.json": not valid JSON \(the file ends early\)/],
      ['10⁶-dim shape', fwd({ weights: dims }), /has shape \[1, 1, 1, 1, 1, 1, 1, 1, … \(1000000 dims\)\], config says \[40, 32\]/],
    ]);
  }, 60_000);

  test('weights that overflow float32 in forward and grad: no output, the first bad position', async () => {
    const huge = weightsWith('huge.safetensors', (p) => {
      for (const [, t] of p) (t.data as Float32Array).forEach((v, i, a) => { a[i] = v < 0 ? -3e38 : 3e38; });
    });
    await expectAll([
      ['forward', fwd({ weights: huge }), /forward produced non-finite logits \(first at \[\d+, \d+, \d+\]\); the weights overflow float32/],
      ['grad', grad({ weights: huge }), /grad produced a non-finite (loss|gradient)/],
    ]);
  }, 60_000);

  test('a forward over the memory budget, a bad --chunk-tokens', async () => {
    writeFileSync(d('t1000.json'), idsJson(1000, 64, m.vocab));
    await expectAll([
      ['one chunk of 64000 tokens in 1 MiB', fwd({ tokens: d('t1000.json') }, '--max-memory', '1M', '--chunk-tokens', '64000'),
        /forward over \(B, T\) = \(1000, 64\) needs about .* over the 1\.00 MiB memory limit/],
      ['--chunk-tokens 0', fwd({}, '--chunk-tokens', '0'), /--chunk-tokens expects a positive integer/],
    ]);
  }, 60_000);
});
