// `--backend gpujs` with no DISPLAY, through the real CLI in a child whose env lacks DISPLAY
// (test/run.sh may run vitest itself under xvfb-run): a private Xvfb when Xvfb is on PATH,
// gone once the process ends (normal exit, an uncaught error, SIGINT/SIGTERM/SIGKILL), and
// without Xvfb on PATH a fallback mode, said on stderr, with the golden logits either way.
// Omits: the kernels themselves (test/gpujs.test.ts, test/parity/gpujs-*.test.ts).

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { findOnPath } from '../backends/gpujs/xvfb.ts';
import { envWithoutDisplay, forwardCli, goldenInputs, logitsError } from './helpers/cli-golden.ts';

const XVFB_LINE = /^tokenformer: gpujs-headlessgl: DISPLAY is unset, so it runs on a private Xvfb on :\d+ \(pid (\d+)\), stopped with the backend$/;
const hasXvfb = findOnPath('Xvfb') !== null;
if (!hasXvfb) console.warn('[skip] private-Xvfb tests: no Xvfb on PATH (the fallback tests still run)');
const g = goldenInputs();
/** PATH without any folder that holds an Xvfb. */
const pathWithoutXvfb = (process.env.PATH ?? '').split(delimiter).filter((d) => d && !existsSync(join(d, 'Xvfb'))).join(delimiter);

/** Whether pid is a live (not zombie) Xvfb. */
function xvfbRunning(pid: number): boolean {
  try {
    const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    const state = /^\d+ \(.*\) (\S)/.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1];
    return comm === 'Xvfb' && state !== 'Z';
  } catch {
    return false;
  }
}

async function goneWithin(pid: number, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 50))) {
    if (!xvfbRunning(pid)) return true;
  }
  return !xvfbRunning(pid);
}

function xvfbPid(stderr: string): number {
  const m = XVFB_LINE.exec(stderr.trimEnd());
  expect(m, `stderr should be exactly the private-Xvfb line, got: ${stderr}`).not.toBeNull();
  return Number(m![1]);
}

/** Does gpujs-webgpu load here (then the fallback must choose it, else gpujs-cpu)? */
function gpujsWebgpuLoads(): boolean {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'test/helpers/gpujs-hold.ts', 'gpujs-webgpu', 'reload'],
    { encoding: 'utf8', env: envWithoutDisplay(), timeout: 180_000 });
  return r.status === 0 && r.stdout.startsWith('ready gpujs-webgpu 2,4,6\n');
}

describe.runIf(hasXvfb)('no DISPLAY, Xvfb on PATH: a private Xvfb', () => {
  test.each(['gpujs', 'gpujs-headlessgl'])('--backend %s: golden logits, one stderr line, no Xvfb left', (backend) => {
    const r = forwardCli(g, backend, envWithoutDisplay());
    expect(r.code, r.err).toBe(0);
    const pid = xvfbPid(r.err);
    expect(logitsError(g, r)).toBeNull();
    // destroy() waits for the server to exit, so it is gone as soon as the CLI is.
    expect(xvfbRunning(pid)).toBe(false);
  });

  test('an uncaught error with the backend still open (no destroy) leaves no Xvfb', async () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'test/helpers/gpujs-hold.ts', 'gpujs', 'throw'],
      { encoding: 'utf8', env: envWithoutDisplay(), timeout: 180_000 });
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('ready gpujs-headlessgl 2,4,6\n');
    expect(r.stderr).toContain('boom, with the backend still open');
    // The exit hook only signals the server (no waiting at exit), so give it a moment.
    expect(await goneWithin(xvfbPid(r.stderr.split('\n')[0]), 5000)).toBe(true);
  });

  test.each(['SIGTERM', 'SIGINT', 'SIGKILL'] as const)('%s to a process holding the backend leaves no Xvfb', async (sig) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/gpujs-hold.ts', 'gpujs'], { env: envWithoutDisplay() });
    let out = '';
    let err = '';
    child.stderr.on('data', (b: Buffer) => { err += b.toString(); });
    const exited = new Promise<[number | null, string | null]>((res) => child.once('exit', (c, s) => res([c, s])));
    await new Promise<void>((res, rej) => {
      child.stdout.on('data', (b: Buffer) => {
        out += b.toString();
        if (out.includes('\n')) res();
      });
      child.once('exit', () => rej(new Error(`helper exited before ready: ${err}`)));
    });
    expect(out).toBe('ready gpujs-headlessgl 2,4,6\n');
    const pid = xvfbPid(err);
    expect(xvfbRunning(pid)).toBe(true);
    child.kill(sig);
    // The handlers stop the server and re-raise, so the process still dies of the signal;
    // SIGKILL runs no handler, and Xvfb's -terminate ends it when the GL connection drops.
    expect(await exited).toEqual([null, sig]);
    expect(await goneWithin(pid, 5000)).toBe(true);
  });

  test('one private Xvfb per process: after it stops, headlessgl refuses and gpujs falls back', () => {
    const run = (name: string) => spawnSync(process.execPath, ['--import', 'tsx', 'test/helpers/gpujs-hold.ts', name, 'reload'],
      { encoding: 'utf8', env: envWithoutDisplay(), timeout: 180_000 });
    const explicit = run('gpujs-headlessgl');
    expect(explicit.status, explicit.stderr).toBe(0);
    expect(explicit.stdout).toMatch(/^ready gpujs-headlessgl 2,4,6\nagain-error gpujs-headlessgl: .*private Xvfb was already stopped/);
    expect(xvfbRunning(xvfbPid(explicit.stderr))).toBe(false);
    const plain = run('gpujs');
    expect(plain.status, plain.stderr).toBe(0);
    expect(plain.stdout).toMatch(/^ready gpujs-headlessgl 2,4,6\nagain gpujs-(webgpu|cpu)\n$/);
  });
});

describe('no DISPLAY, no Xvfb on PATH', () => {
  let expected: string;
  beforeAll(() => {
    expected = gpujsWebgpuLoads() ? 'gpujs-webgpu' : 'gpujs-cpu';
  });

  test('--backend gpujs falls back to a mode that needs no display, says so, and gives the golden logits', () => {
    expect(findOnPath('Xvfb', pathWithoutXvfb)).toBeNull();
    const r = forwardCli(g, 'gpujs', envWithoutDisplay({ PATH: pathWithoutXvfb }), 'gpujs-fallback');
    expect(r.code, r.err).toBe(0);
    const line = `tokenformer: --backend gpujs chose ${expected}, because gpujs-headlessgl cannot run: `
      + 'DISPLAY is unset and no Xvfb is on PATH to start one';
    if (expected === 'gpujs-webgpu') {
      expect(r.err).toBe(`${line}\n`);
    } else {
      // With no adapter, Dawn's messages about the missing driver come first, and the line
      // goes on to say why gpujs-webgpu could not run either.
      expect(r.err.trimEnd().split('\n').pop()).toMatch(new RegExp(`^${line.replace(/[.()]/g, '\\$&')}; nor can gpujs-webgpu: `));
    }
    expect(logitsError(g, r)).toBeNull();
  });

  test('--backend gpujs-headlessgl is explicit: exit 2 and one error line', () => {
    const r = forwardCli(g, 'gpujs-headlessgl', envWithoutDisplay({ PATH: pathWithoutXvfb }), 'headlessgl-nox');
    expect(r.code).toBe(2);
    expect(r.err).toBe('error: gpujs-headlessgl: DISPLAY is unset and no Xvfb is on PATH to start one\n');
  });
});
