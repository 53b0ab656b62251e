// Atomic file writes: each output is written to a temp file in the target's directory
// (`.NAME.PID.RANDOM.tmp`), fsynced, then renamed over the target, so a reader (or a run killed
// mid-write) sees either the old file or the new one. Several outputs of one command are
// staged first and renamed together (commitStaged), undoing the earlier renames if a later
// one fails. Temp files of dead processes for the same target are removed on the next write.
// Omits: cross-device moves (the temp file always lives next to the target), Windows
// rename-over-open-file quirks, and a journal: a process killed between two renames of one
// commit leaves the first output new and the second old (spec/files.md).

import {
  closeSync, fsyncSync, linkSync, lstatSync, openSync, readdirSync, renameSync, unlinkSync, writeSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import { UserError } from './errors.ts';
import { outputProblem, quote } from './fsguard.ts';

function describe(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  const msg = err && typeof err.code === 'string' ? err.code : err && typeof err.message === 'string' ? err.message : String(e);
  return msg.replace(/\s+/g, ' ').slice(0, 200);
}

/** The temp path used for `path`: hidden, same directory, `.NAME.PID.RANDOM.tmp`. */
export function tempPathFor(path: string): string {
  const abs = resolve(path);
  const tag = `${process.pid}.${randomBytes(6).toString('hex')}`;
  return join(dirname(abs), `.${basename(abs)}.${tag}.tmp`);
}

/** Whether process `pid` runs (on this host's PID namespace). Unsure (an error other than
 *  "no such process") counts as alive, so a temp file is never removed from under a writer. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH'; // EPERM: alive, someone else's
  }
}

/**
 * Removes temp files left for `path` by processes that no longer run (killed mid-write).
 * Only names of our own pattern and only regular files; best effort. Returns how many.
 */
export function removeStaleTemps(path: string): number {
  const abs = resolve(path);
  const name = basename(abs);
  let entries: string[];
  try {
    entries = readdirSync(dirname(abs));
  } catch {
    return 0;
  }
  const prefix = `.${name}.`;
  let removed = 0;
  for (const e of entries) {
    if (!e.startsWith(prefix) || !e.endsWith('.tmp')) continue;
    const m = /^(\d+)\.[0-9a-f]{12}\.tmp$/.exec(e.slice(prefix.length));
    if (!m || processAlive(Number(m[1]))) continue; // our own PID counts as alive: a write in progress
    const p = join(dirname(abs), e);
    try {
      if (lstatSync(p).isFile()) {
        unlinkSync(p);
        removed++;
      }
    } catch {
      // raced with another cleaner, or not ours to remove
    }
  }
  return removed;
}

/** Outputs are absent or regular files: never replace a symlink, device, FIFO or folder. */
function refuseSpecial(target: string): void {
  const problem = outputProblem(target);
  if (problem !== null) throw new UserError(`cannot write ${quote(target)}: it ${problem}`);
}

/** A complete, fsynced temp file waiting to be renamed over `target`. */
export interface StagedFile {
  readonly target: string;
  readonly tmp: string;
}

function tryUnlink(p: string): void {
  try {
    unlinkSync(p);
  } catch {
    // already gone
  }
}

/** An output being written: `write` bytes in order, then `finish` (stage) or `abort`. */
export class StagedWriter {
  private fd: number | null;
  readonly tmp: string;

  constructor(readonly target: string) {
    refuseSpecial(target);
    removeStaleTemps(target);
    this.tmp = tempPathFor(target);
    try {
      this.fd = openSync(this.tmp, 'wx', 0o644);
    } catch (e) {
      throw new UserError(`cannot write ${quote(target)}: ${describe(e)}`);
    }
  }

  write(bytes: Uint8Array): void {
    if (this.fd === null) throw new Error('internal: write after finish/abort');
    try {
      let off = 0;
      while (off < bytes.length) off += writeSync(this.fd, bytes, off, bytes.length - off);
    } catch (e) {
      this.abort();
      throw new UserError(`cannot write ${quote(this.target)}: ${describe(e)}`);
    }
  }

  /** fsync + close; the temp file is complete. */
  finish(): StagedFile {
    if (this.fd === null) throw new Error('internal: finish after finish/abort');
    try {
      fsyncSync(this.fd);
      closeSync(this.fd);
      this.fd = null;
    } catch (e) {
      this.abort();
      throw new UserError(`cannot write ${quote(this.target)}: ${describe(e)}`);
    }
    return { target: this.target, tmp: this.tmp };
  }

  /** Closes and removes the temp file; safe to call twice. */
  abort(): void {
    if (this.fd !== null) {
      try {
        closeSync(this.fd);
      } catch {
        // already failing; the original error is the one to report
      }
      this.fd = null;
    }
    tryUnlink(this.tmp);
  }
}

/** Writes a whole file to a staged temp file. */
export function stageFile(path: string, data: Uint8Array | string): StagedFile {
  const w = new StagedWriter(path);
  w.write(typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
  return w.finish();
}

/** Removes staged temp files that will not be committed. */
export function discardStaged(files: readonly StagedFile[]): void {
  for (const f of files) tryUnlink(f.tmp);
}

/** A hard link to the current target, so a failed multi-file commit can put it back. */
function backupOf(target: string): string | null {
  try {
    if (!lstatSync(target).isFile()) return null;
  } catch {
    return null; // absent: undo = remove
  }
  const b = tempPathFor(target);
  try {
    linkSync(target, b);
    return b;
  } catch {
    return null; // NOTE: filesystems without hard links cannot undo; the rename is still atomic
  }
}

/**
 * Renames every staged file over its target. If one rename fails, the targets renamed
 * before it are restored (their old file, or removed when there was none), every temp file
 * is removed, and a one-line UserError names the output.
 */
export function commitStaged(files: readonly StagedFile[]): void {
  const done: { f: StagedFile; backup: string | null; existed: boolean }[] = [];
  for (let i = 0; i < files.length; i++) {
    const f = files[i];
    try {
      refuseSpecial(f.target); // again: it may have become a link since staging
      const existed = exists(f.target);
      const backup = files.length > 1 ? backupOf(f.target) : null;
      try {
        renameSync(f.tmp, resolve(f.target));
      } catch (e) {
        if (backup) tryUnlink(backup);
        throw e;
      }
      done.push({ f, backup, existed });
    } catch (e) {
      undo(done);
      discardStaged(files.slice(i));
      throw e instanceof UserError ? e : new UserError(`cannot write ${quote(f.target)}: ${describe(e)}`);
    }
  }
  for (const d of done) if (d.backup) tryUnlink(d.backup);
  for (const dir of new Set(files.map((f) => dirname(resolve(f.target))))) syncDir(dir);
}

function exists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

function undo(done: { f: StagedFile; backup: string | null; existed: boolean }[]): void {
  for (const d of done.reverse()) {
    try {
      if (d.backup) renameSync(d.backup, resolve(d.f.target));
      else if (!d.existed) unlinkSync(resolve(d.f.target));
    } catch {
      // NOTE: best effort; the error reported is the rename that failed
    }
  }
}

/**
 * Writes `data` (bytes, or a string as UTF-8) to `path` atomically: temp file in the same
 * directory → fsync → rename. On any failure the temp file is removed and a one-line
 * UserError names the path; the previous file at `path`, if any, is left untouched.
 */
export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  commitStaged([stageFile(path, data)]);
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
