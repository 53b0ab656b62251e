// What the CLI may read and where it may write (spec/files.md): inputs are regular files
// read with a size bound (a FIFO or /dev/zero never hangs or fills memory); outputs are absent
// or regular files, never a symlink, a device or one of the command's own inputs. Untrusted
// strings (paths, tensor names) are quoted and capped before they reach an error line.
// Omits: the writes themselves (src/atomic.ts) and checkpoint folders (src/train/checkpoint.ts).

import {
  accessSync, closeSync, constants, fstatSync, lstatSync, openSync, readSync, realpathSync, statSync, statfsSync, type Stats,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { UserError } from './errors.ts';

/** Default bound on one input file: 64 GiB (a 15B-parameter f32 checkpoint); TOKENFORMER_MAX_INPUT_BYTES raises it. */
export const DEFAULT_MAX_INPUT_BYTES = 64 * 2 ** 30;

/** The input-size bound in force: TOKENFORMER_MAX_INPUT_BYTES (bytes) or the default. */
export function maxInputBytes(): number {
  const env = process.env.TOKENFORMER_MAX_INPUT_BYTES;
  if (env === undefined || env === '') return DEFAULT_MAX_INPUT_BYTES;
  const n = Number(env);
  if (!Number.isFinite(n) || n <= 0) throw new UserError(`TOKENFORMER_MAX_INPUT_BYTES must be a positive number of bytes, got ${quote(env)}`);
  return n;
}

/** A string from outside (a path, a tensor name, a value) as one safe, short JSON literal. */
export function quote(s: unknown, max = 120): string {
  const text = typeof s === 'string' ? s : String(s);
  const q = JSON.stringify(text.length > max ? text.slice(0, max) : text);
  return text.length > max ? `${q.slice(0, -1)}…" (${text.length} chars)` : q;
}

/** A shape for messages: at most 8 dims, then how many there are (a header may hold 10⁶). */
export function fmtShape(dims: readonly unknown[]): string {
  const shown = dims.slice(0, 8).map((d) => (typeof d === 'number' ? String(d) : quote(d, 20))).join(', ');
  return dims.length > 8 ? `[${shown}, … (${dims.length} dims)]` : `[${shown}]`;
}

function kind(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

function readError(path: string, what: string, e: unknown): UserError {
  return new UserError(`cannot read ${what} ${quote(path)}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
}

/**
 * Opens an input non-blocking (a FIFO cannot block) and checks the open descriptor: a
 * regular file (symlinks to one are followed) of at most `limit` bytes. Calls `use` with the
 * descriptor and size, then closes it.
 */
function withInput<R>(path: string, what: string, limit: number, use: (fd: number, size: number) => R): R {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw readError(path, what, e);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new UserError(`${what} ${quote(path)} is ${kind(st)}, not a regular file`);
    if (st.size > limit) {
      throw new UserError(`${what} ${quote(path)} is ${st.size} bytes, over the ${limit}-byte input limit (raise it with TOKENFORMER_MAX_INPUT_BYTES)`);
    }
    return use(fd, st.size);
  } catch (e) {
    throw e instanceof UserError ? e : readError(path, what, e);
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads a whole input file: a regular file of at most `limit` bytes, checked on the open
 * descriptor, so a file swapped after the check is still the one checked.
 */
export function readInputFile(path: string, what: string, limit = maxInputBytes()): Buffer {
  return withInput(path, what, limit, (fd, size) => {
    const buf = Buffer.allocUnsafe(size);
    let off = 0;
    while (off < size) {
      const n = readSync(fd, buf, off, size - off, off);
      if (n === 0) break; // truncated while reading: parse what is there, the parser reports it
      off += n;
    }
    return off === size ? buf : buf.subarray(0, off);
  });
}

/** Checks an input before anything is computed (see withInput) and returns its size. */
export function checkInputFile(path: string, what: string, limit = maxInputBytes()): number {
  return withInput(path, what, limit, (_fd, size) => size);
}

/** An input file as UTF-8 text (see readInputFile). */
export function readInputText(path: string, what: string, limit = maxInputBytes()): string {
  return readInputFile(path, what, limit).toString('utf8');
}

function sameFile(a: Stats, b: Stats): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}

/**
 * Why `path` cannot be written as an output, or null when it can: it exists and is not a
 * regular file (a symlink, a device, a FIFO, a directory), or it ends in a slash.
 */
export function outputProblem(path: string): string | null {
  if (path === '' || path.endsWith('/')) return 'names a folder, not a file';
  let st: Stats;
  try {
    st = lstatSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? null : `cannot be checked (${code ?? String(e)})`;
  }
  if (st.isSymbolicLink()) return 'is a symbolic link; give the real path (outputs never replace a link)';
  if (!st.isFile()) return `is ${kind(st)}; outputs must be absent or regular files`;
  return null;
}

/**
 * Refuses an output path that exists and is not a regular file (a symlink, a device, a FIFO,
 * a directory), or that is one of `inputs` (by inode, so another spelling or a hard link is
 * caught too). An absent path is fine: the atomic writer creates it.
 */
export function checkOutputPath(path: string, what: string, inputs: readonly string[] = []): void {
  const problem = outputProblem(path);
  if (problem !== null) throw new UserError(`${what} ${quote(path)} ${problem}`);
  let st: Stats;
  try {
    st = statSync(path);
  } catch {
    return; // absent
  }
  for (const input of inputs) {
    let ist: Stats;
    try {
      ist = statSync(input);
    } catch {
      continue;
    }
    if (sameFile(st, ist)) throw new UserError(`${what} ${quote(path)} is the input ${quote(input)}; write to another path`);
  }
}

/** The output's folder must exist, be a folder, and be writable (checked before any work). */
export function checkOutputDir(path: string, what: string): void {
  const dir = dirname(resolve(path));
  let st: Stats;
  try {
    st = statSync(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(`${what} ${quote(path)}: its folder ${code === 'ENOENT' ? 'does not exist' : `cannot be used (${code})`}`);
  }
  if (!st.isDirectory()) throw new UserError(`${what} ${quote(path)}: ${quote(dir)} is not a folder`);
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch {
    throw new UserError(`${what} ${quote(path)}: its folder is not writable`);
  }
}

/** Refuses when the output's filesystem has fewer than `bytes` free (statfs; skipped where unsupported). */
export function checkFreeSpace(path: string, bytes: number, what: string): void {
  let free: number;
  try {
    const fs = statfsSync(dirname(resolve(path)));
    free = Number(fs.bavail) * Number(fs.bsize);
  } catch {
    return;
  }
  if (bytes > free) {
    throw new UserError(`${what} ${quote(path)} needs ${bytes} bytes but its filesystem has ${free} free`);
  }
}

/** The path an output will have, with its folder's symlinks resolved (for comparing outputs). */
function canonical(path: string): string {
  const abs = resolve(path);
  try {
    return join(realpathSync(dirname(abs)), basename(abs));
  } catch {
    return abs;
  }
}

/** Refuses two outputs of one command that name the same file (before either exists). */
export function checkDistinctOutputs(outputs: ReadonlyArray<[what: string, path: string]>): void {
  const seen = new Map<string, string>();
  for (const [what, path] of outputs) {
    const abs = canonical(path);
    const prev = seen.get(abs);
    if (prev !== undefined) throw new UserError(`${what} and ${prev} are the same path ${quote(path)}`);
    seen.set(abs, what);
  }
}
