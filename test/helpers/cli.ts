// Running the `tokenformer` CLI from tests, as a user meets it: a real child process
// (`node bin/tokenformer.mjs …`) with its exit code, stdout and stderr, plus the checks every
// bad-input case shares (exit 2, one `error:` line, nothing left behind in a folder).

import { spawn, spawnSync, type SpawnOptions, type SpawnSyncOptions } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'tokenformer.mjs');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  err: string;
}

/** Runs the CLI in a child process; `timeout` ms (default 60 s) guards against hangs. */
export function runCli(args: readonly string[], opts: SpawnSyncOptions = {}): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000, ...opts });
  return { code: r.status, signal: r.signal, out: String(r.stdout ?? ''), err: String(r.stderr ?? '') };
}

/**
 * Runs the CLI in a child process without blocking the test, so several runs overlap (each
 * spends most of its second starting tsx). `timeout` ms (default 60 s) kills a hang.
 */
export function runCliAsync(
  args: readonly string[], opts: SpawnOptions & { timeout?: number; closeStdout?: boolean; closeStderr?: boolean } = {},
): Promise<CliResult> {
  const { timeout = 60_000, closeStdout = false, closeStderr = false, ...rest } = opts;
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...rest });
    if (closeStdout) child.stdout?.destroy(); // the reader goes away, as `| head -c 0` would
    if (closeStderr) child.stderr?.destroy();
    let out = '';
    let err = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => { out += d; });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => { err += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeout);
    child.on('error', fail);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      done({ code, signal, out, err });
    });
  });
}

/** Runs every job with at most `width` at a time; results in job order. */
export async function inPool<T>(jobs: Array<() => Promise<T>>, width = 3): Promise<T[]> {
  const results: T[] = new Array(jobs.length);
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++;
      results[i] = await jobs[i]();
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, jobs.length) }, worker));
  return results;
}

/** Asserts the bad-input contract: exit 2, exactly one stderr line starting `error: `, matching `re`. */
export function expectUserError(r: CliResult, re?: RegExp): void {
  const lines = r.err.split('\n').filter((l) => l !== '');
  expect(r.signal, `killed by ${r.signal}: ${r.err}`).toBeNull();
  expect({ code: r.code, lines: lines.length }, r.err).toEqual({ code: 2, lines: 1 });
  expect(lines[0]).toMatch(/^error: /);
  expect(lines[0]).not.toMatch(/internal/);
  if (re) expect(lines[0]).toMatch(re);
}

/** Every entry of `dir` (recursively, sorted), for before/after comparisons. */
export function listTree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      out.push(r);
      if (e.isDirectory()) walk(join(d, e.name), r);
    }
  };
  walk(dir, '');
  return out;
}
