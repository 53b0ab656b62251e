// Keeps Dawn's two adapter-discovery warnings off stderr. Dawn's Vulkan backend clamps the
// driver's maxDynamic{Uniform,Storage}BuffersPerPipelineLayout to 16 while it enumerates
// adapters (inside the synchronous part of GPU.requestAdapter, before any device or
// requiredLimits exists) and says so with a raw fprintf(stderr): lavapipe reports 1000000,
// so every start printed two "Warning: … artificially reduced …" lines. No Dawn flag,
// toggle or callback reaches that log, so the synchronous call runs with fd 2 pointed at a
// temporary file, and afterwards everything Dawn wrote there except those two lines goes
// to the real stderr. TOKENFORMER_DEBUG=1 leaves stderr alone (Dawn's raw output).
// Omits: anything but Linux (elsewhere fn runs untouched); a stderr that is a socket or a
// file opened without O_APPEND (see `reopenable`: the warnings stay there); messages Dawn
// logs later, from other calls (they pass through).

import { closeSync, constants, fstatSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The only lines dropped: Dawn's clamp of the dynamic-buffer limits, nothing else. */
export const DAWN_CLAMP_WARNING =
  /^Warning: maxDynamic(Uniform|Storage)BuffersPerPipelineLayout artificially reduced from \d+ to \d+ to fit dynamic offset allocation limit\.$/;

const WRITE_FLAGS = constants.O_WRONLY | constants.O_APPEND | constants.O_NOCTTY;

/**
 * Whether stderr can be reopened by path and mean the same: a pipe, a tty, /dev/null, or a
 * file opened for appending. NOTE: Node has no dup(), so the restored fd 2 is a new open
 * file description; on a file opened without O_APPEND (`2>log`, `>log 2>&1`) it would not
 * share the original's offset, and writes through the original would overwrite ours, so
 * such a stderr (and a socket, which cannot be reopened) keeps Dawn's warnings.
 */
function reopenable(): boolean {
  const st = fstatSync(2);
  if (st.isFIFO() || st.isCharacterDevice()) return true;
  if (!st.isFile()) return false;
  const m = /^flags:\s*([0-7]+)$/m.exec(readFileSync('/proc/self/fdinfo/2', 'utf8'));
  return m !== null && (parseInt(m[1], 8) & constants.O_APPEND) !== 0;
}

/** Opens `path` and checks that it became fd 2 (the lowest free descriptor, just closed). */
function reopenAsFd2(path: string, flags: number): void {
  const fd = openSync(path, flags);
  if (fd !== 2) {
    // NOTE: another thread took fd 2 between close and open; nothing safe is left to do.
    closeSync(fd);
    throw new Error(`dawn-stderr: ${path} opened as fd ${fd}, not 2`);
  }
}

/** A second descriptor on stderr, or null where stderr cannot be captured and restored. */
function openSaved(): number | null {
  if (process.platform !== 'linux' || process.env.TOKENFORMER_DEBUG) return null;
  try {
    return reopenable() ? openSync('/proc/self/fd/2', WRITE_FLAGS) : null;
  } catch {
    return null;
  }
}

/**
 * Runs the synchronous fn with fd 2 captured; returns its result and writes what it printed,
 * less Dawn's clamp warnings, to the real stderr. fn must not start async work that prints.
 */
export function withoutDawnClampWarnings<T>(fn: () => T): T {
  const saved = openSaved();
  if (saved === null) return fn();
  let dir: string | null = null;
  let captured = false;
  try {
    dir = mkdtempSync(join(tmpdir(), 'tokenformer-dawn-'));
    closeSync(2);
    try {
      reopenAsFd2(join(dir, 'stderr'), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL);
      captured = true;
      return fn();
    } finally {
      if (captured) closeSync(2);
      reopenAsFd2(`/proc/self/fd/${saved}`, WRITE_FLAGS);
    }
  } finally {
    closeSync(saved);
    if (dir) {
      const rest = captured ? readCaptured(join(dir, 'stderr')) : '';
      rmSync(dir, { recursive: true, force: true });
      if (rest) process.stderr.write(rest);
    }
  }
}

function readCaptured(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return '';
  }
  const kept = text.split('\n').filter((line, i, all) => !DAWN_CLAMP_WARNING.test(line) && (line || i < all.length - 1));
  return kept.length ? `${kept.join('\n')}\n` : '';
}
