// The CLI never destroys what it was given (spec/files.md): outputs equal to an input, two
// outputs on one path, outputs that are a symlink, FIFO, folder or device, a bad backend or
// folder, a full disk: each is exit 2 with one `error:` line, every input byte-identical, and
// no file (temp or partial) left behind. Also: temp files of killed runs are cleaned up.

import { execFileSync, spawnSync } from 'node:child_process';
import {
  linkSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { expectUserError, inPool, listTree, runCliAsync } from './helpers/cli.ts';
import { fillUp, modelDir } from './helpers/cli-model.ts';

const m = modelDir();
const d = (name: string) => join(m.dir, name);
const grow = (outWeights: string, outConfig: string, ...rest: string[]) =>
  ['grow', '--config', m.config, '--weights', m.weights, '--out-weights', outWeights, '--out-config', outConfig, '--ffn-slots', '48', '--no-check', ...rest];
const forward = (out: string, ...rest: string[]) =>
  ['forward', '--config', m.config, '--weights', m.weights, '--tokens', m.tokens, '--out', out, ...rest];
const grad = (out: string) =>
  ['grad', '--config', m.config, '--weights', m.weights, '--tokens', m.tokens, '--targets', m.targets, '--out', out];

function snapshot(): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of listTree(m.dir)) {
    const st = lstatSync(d(f));
    out.set(f, st.isFile() ? readFileSync(d(f)).toString('base64') : st.isSymbolicLink() ? `-> ${readlinkSync(d(f))}` : `mode ${st.mode} rdev ${st.rdev}`);
  }
  return out;
}

type Case = [label: string, args: string[], msg: RegExp];

async function expectAllRefused(cases: Case[]): Promise<void> {
  const before = snapshot();
  const results = await inPool(cases.map(([, args]) => () => runCliAsync(args)));
  results.forEach((r, i) => {
    const [label, , msg] = cases[i];
    expect.soft(() => expectUserError(r, msg), `${label}: ${r.err}`).not.toThrow();
  });
  expect(snapshot()).toEqual(before); // every input as it was, nothing added
}

describe('outputs never replace an input, each other, or a special file', () => {
  test('grow: its own weights as --out-weights, one path for both outputs, bad folder or backend', async () => {
    linkSync(m.weights, d('hardlink.safetensors'));
    await expectAllRefused([
      ['weights as --out-weights, --out-config in a missing folder', grow(m.weights, '/missing/c.yml'), /--out-weights .* is the input/],
      ['weights as --out-weights', grow(m.weights, d('c.yml')), /--out-weights .* is the input/],
      ['a hard link to the weights', grow(d('hardlink.safetensors'), d('c.yml')), /is the input/],
      ['config as --out-config', grow(d('g.safetensors'), m.config), /--out-config .* is the input/],
      ['--out-config = --out-weights', grow(d('same'), `${m.dir}/sub/../same`), /same path/],
      ['--out-config in a missing folder', grow(d('g.safetensors'), d('missing/c.yml')), /--out-config .*folder does not exist/],
      ['--backend nonsense', grow(d('g.safetensors'), d('c.yml'), '--backend', 'nonsense'), /unknown backend "nonsense"/],
    ]);
  }, 60_000);

  test('forward and grad: an input as --out (another spelling too)', async () => {
    await expectAllRefused([
      ['forward --out = --tokens', forward(m.tokens), /--out .* is the input/],
      ['forward --out = weights, spelled differently', forward(`${m.dir}/./../${m.dir.split('/').pop()}/w.safetensors`), /is the input/],
      ['grad --out = --targets', grad(m.targets), /--out .* is the input/],
    ]);
  }, 60_000);

  test('forward, grad and grow onto a symlink, a FIFO, a folder or a device', async () => {
    writeFileSync(d('victim.safetensors'), 'precious');
    symlinkSync(d('victim.safetensors'), d('link.safetensors'));
    symlinkSync(d('nowhere'), d('dangling.safetensors'));
    execFileSync('mkfifo', [d('fifo')]);
    mkdirSync(d('folder'));
    const cases: Case[] = [
      ['forward onto a symlink', forward(d('link.safetensors')), /symbolic link/],
      ['forward onto a dangling symlink', forward(d('dangling.safetensors')), /symbolic link/],
      ['forward onto a FIFO', forward(d('fifo')), /is a FIFO; outputs must be absent or regular files/],
      ['forward onto a folder', forward(d('folder')), /is a directory/],
      ['forward onto a name ending in /', forward(`${d('newdir')}/`), /names a folder/],
      ['grad onto a symlink', grad(d('link.safetensors')), /symbolic link/],
      ['grow weights onto a FIFO', grow(d('fifo'), d('c.yml')), /--out-weights .* FIFO/],
      ['grow config onto a symlink', grow(d('g.safetensors'), d('link.safetensors')), /--out-config .* symbolic link/],
    ];
    // a copy of /dev/null's node (c 1 3): replacing it would replace a device
    const dev = spawnSync('mknod', [d('null-copy'), 'c', '1', '3'], { encoding: 'utf8' });
    if (dev.status === 0) {
      cases.push(['forward onto a char device', forward(d('null-copy')), /is a device/]);
      cases.push(['grow config onto a char device', grow(d('g.safetensors'), d('null-copy')), /is a device/]);
    } else {
      console.log(`skipped the device cases: mknod failed (${dev.stderr.trim() || dev.error?.message})`);
    }
    await expectAllRefused(cases);
    expect(statSync(d('victim.safetensors')).size).toBe(8);
    if (dev.status === 0) expect(lstatSync(d('null-copy')).isCharacterDevice()).toBe(true);
  }, 90_000);
});

describe('a full disk', () => {
  const mnt = mkdtempSync(join(tmpdir(), 'tf-full-'));
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=16k', 'tmpfs', mnt], { encoding: 'utf8' });
  afterAll(() => {
    if (mounted.status === 0) spawnSync('umount', [mnt]);
    rmSync(mnt, { recursive: true, force: true });
  });

  test('grow whose config write fails after the weights were written leaves neither', async () => {
    if (mounted.status !== 0) {
      console.log(`skipped: cannot mount a small tmpfs (${mounted.stderr.trim() || mounted.error?.message})`);
      return;
    }
    fillUp(mnt);
    const before = snapshot();
    const [r, r2] = await inPool([
      () => runCliAsync(grow(d('grown.safetensors'), join(mnt, 'c.yml'))),
      () => runCliAsync(forward(join(mnt, 'logits.safetensors'))),
    ]);
    expectUserError(r, /cannot write .*c\.yml.*ENOSPC/);
    expectUserError(r2, /--out .* needs \d+ bytes but its filesystem has \d+ free/);
    expect(snapshot()).toEqual(before); // the staged weights were removed
    expect(listTree(mnt)).toEqual(['filler']);
  }, 60_000);
});

describe('temp files of killed runs', () => {
  test('writing an output removes its dead runs\' temp files and keeps live ones', async () => {
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const deadPid = Number(dead.stdout);
    expect(deadPid).toBeGreaterThan(0);
    const out = d('out.safetensors');
    const stale = d(`.out.safetensors.${deadPid}.0123456789ab.tmp`);
    const live = d(`.out.safetensors.${process.pid}.0123456789ab.tmp`); // this test runner: alive
    const other = d('.out.safetensors.notapid.tmp');
    for (const f of [stale, live, other]) writeFileSync(f, 'partial');
    const r = await runCliAsync(forward(out));
    expect(r.code, r.err).toBe(0);
    const left = listTree(m.dir).filter((f) => f.startsWith('.out.safetensors.'));
    expect(left.sort()).toEqual([`.out.safetensors.${process.pid}.0123456789ab.tmp`, '.out.safetensors.notapid.tmp'].sort());
    expect(statSync(out).size).toBeGreaterThan(m.B * m.T * m.vocab * 4);
    for (const f of [live, other, out]) rmSync(f);
  }, 60_000);
});
