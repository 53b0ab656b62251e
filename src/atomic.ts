// Atomic file writes: write a temp file in the target's directory, fsync, then rename over the
// target, so a reader (or a run killed mid-write) sees either the old file or the new one.
// Omits: cross-device moves (the temp file always lives next to the target) and Windows
// rename-over-open-file quirks.

import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import { UserError } from './errors.ts';

function describe(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  const msg = err && typeof err.message === 'string' ? err.message : String(e);
  return msg.replace(/\s+/g, ' ');
}

/** The temp path used for `path`: hidden, same directory, unique per process and call. */
export function tempPathFor(path: string): string {
  const abs = resolve(path);
  const tag = `${process.pid}.${randomBytes(6).toString('hex')}`;
  return join(dirname(abs), `.${basename(abs)}.${tag}.tmp`);
}

/**
 * Writes `data` (bytes, or a string as UTF-8) to `path` atomically: temp file in the same
 * directory → fsync → rename. On any failure the temp file is removed and a one-line
 * UserError names the path; the previous file at `path`, if any, is left untouched.
 */
export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const tmp = tempPathFor(path);
  let fd: number | null = null;
  try {
    fd = openSync(tmp, 'wx');
    let off = 0;
    while (off < bytes.length) {
      off += writeSync(fd, bytes, off, bytes.length - off);
    }
    fsyncSync(fd);
    closeSync(fd);
    fd = null;
    renameSync(tmp, resolve(path));
  } catch (e) {
    if (fd !== null) {
      try {
        closeSync(fd);
      } catch {
        // already failing; the original error is the one to report
      }
    }
    try {
      unlinkSync(tmp);
    } catch {
      // the temp file may never have been created
    }
    throw new UserError(`cannot write ${path}: ${describe(e)}`);
  }
  syncDir(dirname(resolve(path)));
}

/** Best effort: persist the rename itself (a directory fsync; unsupported on some systems). */
function syncDir(dir: string): void {
  let fd: number | null = null;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // NOTE: not every platform lets a directory be opened or fsynced; the rename is still atomic.
  } finally {
    if (fd !== null) {
      try {
        closeSync(fd);
      } catch {
        // ignore
      }
    }
  }
}
