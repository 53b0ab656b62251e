// Dawn's two adapter-discovery warnings stay off stderr (backends/webgpu/dawn-stderr.ts):
// the filter itself, on every kind of stderr it meets, and a real WebGPU / gpujs-webgpu
// forward through the CLI that must write nothing to stderr and still give golden logits.
// Omits: the kernels (test/webgpu*.test.ts, test/parity/*).

import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { required } from './helpers/backends.ts';
import { envWithoutDisplay, forwardCli, goldenInputs, logitsError } from './helpers/cli-golden.ts';

const g = goldenInputs();
const WARN = (kind: string) =>
  `Warning: maxDynamic${kind}BuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit.`;
// A child that prints, inside the filter, the two clamp warnings around another message,
// then one line of its own after it.
const CHILD = `
import { writeSync } from 'node:fs';
import { withoutDawnClampWarnings } from './backends/webgpu/dawn-stderr.ts';
const r = withoutDawnClampWarnings(() => {
  writeSync(2, ${JSON.stringify(`${WARN('Uniform')}\nDawn: some other message\n${WARN('Storage')}\n`)});
  return 42;
});
process.stderr.write('after ' + r + '\\n');
`;
const ALL = `${WARN('Uniform')}\nDawn: some other message\n${WARN('Storage')}\nafter 42\n`;
const KEPT = 'Dawn: some other message\nafter 42\n';

/** The child's stderr when fd 2 is a file opened with `flags` ('a' as `2>>`, 'w' as `2>`). */
function childStderrToFile(flags: 'a' | 'w', env: NodeJS.ProcessEnv = process.env): string {
  const file = join(g.dir, `child-stderr-${flags}-${Math.random().toString(36).slice(2)}.txt`);
  const fd = openSync(file, flags);
  try {
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD],
      { encoding: 'utf8', env, stdio: ['ignore', 'pipe', fd] });
    expect(r.status).toBe(0);
  } finally {
    closeSync(fd);
  }
  return readFileSync(file, 'utf8');
}

describe.runIf(process.platform === 'linux')('the stderr filter', () => {
  test('a pipe (as in `| tee` or a terminal) gets everything but the two warnings', () => {
    const r = spawnSync('sh', ['-c', `"${process.execPath}" --import tsx --input-type=module -e "$CHILD" 2>&1 >/dev/null | cat`],
      { encoding: 'utf8', env: { ...process.env, CHILD } });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(KEPT);
  });

  test('a file opened for appending (2>>) too', () => {
    expect(childStderrToFile('a')).toBe(KEPT);
  });

  test('a file opened without O_APPEND (2>) keeps everything, in order (no dup() in Node)', () => {
    expect(childStderrToFile('w')).toBe(ALL);
  });

  test('a socket (Node\'s stdio "pipe") keeps everything, in order', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stderr).toBe(ALL);
  });

  test('TOKENFORMER_DEBUG=1 leaves stderr alone', () => {
    expect(childStderrToFile('a', { ...process.env, TOKENFORMER_DEBUG: '1' })).toBe(ALL);
  });
});

describe('a WebGPU forward through the CLI writes nothing to stderr', () => {
  test.for(['webgpu', 'gpujs-webgpu'])('--backend %s', (backend, ctx) => {
    const r = forwardCli(g, backend, envWithoutDisplay(), `quiet-${backend}`);
    // Exit 2 ending in one `error:` line is how the CLI reports BackendUnavailable (no Dawn
    // adapter; Dawn's own messages about the missing driver come before it, unfiltered).
    const last = r.err.trimEnd().split('\n').pop() ?? '';
    if (r.code === 2 && /^error: .*(adapter|Dawn|webgpu)/.test(last) && !required(backend)) {
      console.warn(`[skip] ${backend}: ${last}`);
      ctx.skip(last);
    }
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(logitsError(g, r)).toBeNull();
  });
});
