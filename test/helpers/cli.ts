// Running the `tokenformer` CLI from tests, as a user meets it: a real child process
// (`node bin/tokenformer.mjs …`) with its exit code, stdout and stderr, plus the checks every
// bad-input case shares (exit 2, one `error:` line, nothing left behind in a folder).

import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
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
