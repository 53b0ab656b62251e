// Runs the real `tokenformer forward` CLI on a golden model, in a child with the env it is
// given, and checks its logits at the gpu_f32 tolerance. Shared by the tests that exercise
// how backends start (display, Xvfb, Dawn's stderr). Omits: grad (test/cli.test.ts has it).

import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSafetensors, writeSafetensorsAtomic } from '../../src/safetensors.ts';
import { checkValues } from './compare.ts';
import { goldenPath, loadFixture, loadManifest, need } from './golden.ts';

export interface CliRun { code: number | null; signal: string | null; out: string; err: string; logits: string }

/** Weights and tokens of the first golden model, written once per test file. */
export function goldenInputs(): { config: string; weights: string; tokens: string; want: Float32Array; dir: string } {
  const m = loadManifest().models[0];
  const fx = loadFixture(m.file);
  const dir = mkdtempSync(join(tmpdir(), 'tf-cli-golden-'));
  const params: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const [name, t] of fx) if (name.startsWith('sequential.')) params[name] = { shape: t.shape, data: t.data as Float32Array };
  writeSafetensorsAtomic(join(dir, 'w.safetensors'), params);
  const ids = need(fx, 'input_ids');
  const [B, T] = ids.shape;
  const rows = Array.from({ length: B }, (_, b) => Array.from((ids.data as Int32Array).subarray(b * T, (b + 1) * T)));
  writeFileSync(join(dir, 'tokens.json'), JSON.stringify(rows));
  return {
    config: goldenPath(m.config), weights: join(dir, 'w.safetensors'), tokens: join(dir, 'tokens.json'),
    want: need(fx, 'logits').data as Float32Array, dir,
  };
}

/** The parent's env less DISPLAY, with a writable XDG_RUNTIME_DIR (Mesa wants one). */
export function envWithoutDisplay(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete env.DISPLAY;
  env.XDG_RUNTIME_DIR ??= mkdtempSync(join(tmpdir(), 'tf-xdg-'));
  return env;
}

/**
 * `node bin/tokenformer.mjs forward … --backend <backend>` with `env`. Its stderr is a file
 * opened for appending, as `2>>log` gives: Node's own 'pipe' would be a socket, where Dawn's
 * adapter warnings cannot be filtered (backends/webgpu/dawn-stderr.ts).
 */
export function forwardCli(g: ReturnType<typeof goldenInputs>, backend: string, env: NodeJS.ProcessEnv, name = backend): CliRun {
  const logits = join(g.dir, `logits-${name}.safetensors`);
  const errFile = join(g.dir, `stderr-${name}.txt`);
  const errFd = openSync(errFile, 'a');
  try {
    const r = spawnSync(process.execPath, [
      'bin/tokenformer.mjs', 'forward', '--config', g.config, '--weights', g.weights, '--tokens', g.tokens,
      '--out', logits, '--backend', backend,
    ], { encoding: 'utf8', env, timeout: 180_000, stdio: ['ignore', 'pipe', errFd] });
    return { code: r.status, signal: r.signal, out: r.stdout, err: readFileSync(errFile, 'utf8'), logits };
  } finally {
    closeSync(errFd);
  }
}

/** null when the run's logits match the golden ones at gpu_f32, else what is wrong. */
export function logitsError(g: ReturnType<typeof goldenInputs>, run: CliRun): string | null {
  const got = readSafetensors(run.logits).get('logits');
  if (!got) return 'no logits tensor in the output';
  return checkValues('logits', got.data, g.want, loadManifest().tolerances.gpu_f32.values);
}
