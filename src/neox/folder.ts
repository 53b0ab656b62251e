// A whole output folder made atomic: everything is written into a hidden temp folder next to
// the target (`.NAME.PID.RANDOM.tmp`, same file system), which is then renamed into place. The
// target may be absent, an empty folder, or a folder this program wrote before (its marker
// file lists every file in it, and nothing else is there); anything else is refused, so no
// user file is ever deleted or mixed with ours. spec/files.md describes the rule for files.
// Omits: removing temp folders left by a killed process (they are hidden, named by pid, and
// hold only our own output), and cross-device targets.

import { lstatSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, type Stats } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { UserError } from '../errors.ts';
import { quote } from '../fsguard.ts';

function lstat(p: string): Stats | null {
  try {
    return lstatSync(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new UserError(`cannot check ${quote(p)}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

/** Every file under `dir` (relative paths, sorted); folders are not listed, links are refused. */
function filesUnder(dir: string): string[] | null {
  const out: string[] = [];
  const walk = (d: string): boolean => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) {
        if (!walk(p)) return false;
      } else if (e.isFile()) out.push(relative(dir, p));
      else return false;
    }
    return true;
  };
  return walk(dir) ? out.sort() : null;
}

/** True when `dir` holds exactly the files its marker lists (a folder we wrote, untouched). */
function isOurs(dir: string, marker: string): boolean {
  const files = filesUnder(dir);
  if (files === null || !files.includes(marker)) return false;
  let listed: unknown;
  try {
    listed = (JSON.parse(readFileSync(join(dir, marker), 'utf8')) as { files?: unknown }).files;
  } catch {
    return false;
  }
  if (!Array.isArray(listed)) return false;
  const want = [...new Set(listed.map(String))].sort();
  return want.length === files.length && want.every((f, i) => f === files[i]);
}

/**
 * Checks that `dir` may be written (before any work): absent, an empty folder, or ours.
 * Returns whether it exists.
 */
export function checkOutputFolder(dir: string, what: string, marker: string): boolean {
  const st = lstat(dir);
  if (st === null) {
    const parent = lstat(dirname(resolve(dir)));
    if (!parent?.isDirectory()) throw new UserError(`${what} ${quote(dir)}: its parent folder does not exist`);
    return false;
  }
  if (st.isSymbolicLink()) throw new UserError(`${what} ${quote(dir)} is a symbolic link; give the real path`);
  if (!st.isDirectory()) throw new UserError(`${what} ${quote(dir)} exists and is not a folder`);
  if (readdirSync(dir).length > 0 && !isOurs(dir, marker)) {
    throw new UserError(`${what} ${quote(dir)} is not empty and was not written by tokenformer convert; give a new or empty folder`);
  }
  return true;
}

function hidden(dir: string, kind: string): string {
  const abs = resolve(dir);
  return join(dirname(abs), `.${basename(abs)}.${process.pid}.${randomBytes(6).toString('hex')}.${kind}`);
}

/**
 * Runs `fill(tmp)` on a fresh temp folder next to `dir`, then puts it in `dir`'s place. On
 * failure the temp folder is removed and `dir` is as it was.
 */
export function writeFolderAtomic<R>(dir: string, what: string, marker: string, fill: (tmp: string) => R): R {
  checkOutputFolder(dir, what, marker);
  const tmp = hidden(dir, 'tmp');
  try {
    mkdirSync(tmp, { mode: 0o755 });
  } catch (e) {
    throw new UserError(`cannot write ${what} ${quote(dir)}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  try {
    const result = fill(tmp);
    swapIn(tmp, dir, what, marker);
    return result;
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true }); // our own temp folder, nothing else
    throw e;
  }
}

/** Renames `tmp` to `dir`; an existing `dir` (checked again: empty or ours) is moved aside first. */
function swapIn(tmp: string, dir: string, what: string, marker: string): void {
  const exists = checkOutputFolder(dir, what, marker); // again: it may have changed meanwhile
  const empty = exists && readdirSync(dir).length === 0;
  const fail = (e: unknown) => new UserError(`cannot write ${what} ${quote(dir)}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  if (!exists || empty) {
    try {
      renameSync(tmp, resolve(dir)); // rename(2) replaces an empty folder atomically
    } catch (e) {
      throw fail(e);
    }
    return;
  }
  const old = hidden(dir, 'old');
  try {
    renameSync(resolve(dir), old);
  } catch (e) {
    throw fail(e);
  }
  try {
    renameSync(tmp, resolve(dir));
  } catch (e) {
    renameSync(old, resolve(dir)); // put the previous export back
    throw fail(e);
  }
  rmSync(old, { recursive: true, force: true }); // the previous export: only files we wrote
}
