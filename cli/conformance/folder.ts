// Writing a whole output folder (a suite, or a candidate's outputs) safely: everything is built in
// a hidden staging folder next to the target, then swapped in by rename, so a failed run leaves the
// old folder as it was. An existing target is replaced only when empty or when it holds nothing but
// what this tool writes (a suite, or a candidate folder); anything else is refused.
// Omits: merging into an existing folder (a run always writes the whole folder).

import { lstatSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import { UserError } from '../../src/errors.ts';
import { quote } from '../../src/fsguard.ts';

/** What a folder of this tool looks like: its marker file and the files allowed in each case folder. */
export interface FolderKind {
  what: string;
  marker: string;
  caseFiles: readonly string[];
}

function entries(dir: string): string[] | null {
  try {
    return readdirSync(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    throw new UserError(`cannot use ${quote(dir)} as an output folder: ${code ?? String(e)}`);
  }
}

/** Is `dir` empty or one of ours (the marker file, and case folders holding only our files)? */
function replaceable(dir: string, kind: FolderKind): boolean {
  const list = entries(dir);
  if (list === null || list.length === 0) return true;
  if (!list.includes(kind.marker)) return false;
  for (const e of list) {
    const p = join(dir, e);
    const st = lstatSync(p);
    if (e === kind.marker && st.isFile()) continue;
    if (!st.isDirectory()) return false;
    const inner = readdirSync(p);
    for (const f of inner) {
      if (!kind.caseFiles.includes(f) || !lstatSync(join(p, f)).isFile()) return false;
    }
  }
  return true;
}

/**
 * Builds a folder with `build(staging)` and puts it at `dir`. Refuses (before building) a `dir`
 * that is a file, a link, or a non-empty folder that is not a `kind` folder this tool wrote.
 */
export async function writeFolder(dir: string, kind: FolderKind, build: (staging: string) => Promise<void>): Promise<void> {
  const target = resolve(dir);
  let st: ReturnType<typeof lstatSync> | null = null;
  try {
    st = lstatSync(target);
  } catch {
    st = null;
  }
  if (st && !st.isDirectory()) throw new UserError(`${kind.what} ${quote(dir)} exists and is not a folder`);
  if (st && !replaceable(target, kind)) {
    throw new UserError(`${kind.what} ${quote(dir)} is a non-empty folder that is not a ${kind.what} this tool wrote; give an empty or new folder`);
  }
  mkdirSync(dirname(target), { recursive: true });
  const tag = `${process.pid}.${randomBytes(4).toString('hex')}`;
  const staging = join(dirname(target), `.${basename(target)}.${tag}.staging`);
  mkdirSync(staging);
  try {
    await build(staging);
    if (st) {
      const old = join(dirname(target), `.${basename(target)}.${tag}.old`);
      renameSync(target, old);
      renameSync(staging, target);
      rmSync(old, { recursive: true, force: true });
    } else {
      renameSync(staging, target);
    }
  } catch (e) {
    rmSync(staging, { recursive: true, force: true });
    throw e;
  }
}
