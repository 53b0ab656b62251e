// Training checkpoints: one folder holding weights.safetensors (official names),
// optimizer.safetensors (m.<name>, v.<name>), state.json (step, RNG/data cursor, config,
// train args, loss history) and config.yml. Saved atomically as a whole folder.
// Omits: keeping several checkpoints (each save replaces the previous one) and sharding.
//
// Atomicity: a save writes everything into a sibling temp folder (files fsynced, state.json
// last as the completeness marker), then renames the old folder aside, renames the temp
// folder into place and deletes the old one. POSIX cannot rename a folder over a non-empty
// one, so there is a moment with two renames; a process killed between them leaves
// `<dir>.old-*` and no `<dir>`, which loadCheckpoint recovers. A kill at any other moment
// leaves `<dir>` itself complete (the old or the new checkpoint).
//
// Safety: nothing is removed that this module did not make. A folder is replaced only when it
// is empty or one of our checkpoints (only our four file names, a valid state.json:
// checkOutputDir, checked before training and again at every save); removal deletes our file
// names one by one and then the empty folder, never recursively; leftovers are swept only
// when their name matches `<dir>.tmp-<pid>-<8 hex>` / `<dir>.old-…` exactly and they hold
// only our file names. A failed save removes its temp folder and says so in one line.

import {
  closeSync, fsyncSync, lstatSync, mkdirSync, openSync, readdirSync, renameSync, rmdirSync, statSync, unlinkSync, writeSync,
  type Stats,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import type { ModelConfig } from '../config.ts';
import { UserError } from '../errors.ts';
import { processAlive } from '../atomic.ts';
import { quote, readInputText } from '../fsguard.ts';
import { readSafetensors, serializeSafetensors, type TensorIn } from '../safetensors.ts';
import { STATE_VERSION, validateState, type TrainState } from './state-schema.ts';

export const WEIGHTS_FILE = 'weights.safetensors';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const STATE_FILE = 'state.json';
export const CONFIG_FILE = 'config.yml';
/** Every name a checkpoint folder may hold. */
export const CHECKPOINT_FILES: readonly string[] = [WEIGHTS_FILE, OPTIMIZER_FILE, CONFIG_FILE, STATE_FILE];

export type { HistoryPoint, TrainState } from './state-schema.ts';

type HostTensors = Map<string, TensorIn & { data: Float32Array }>;

export interface Checkpoint {
  weights: HostTensors;
  /** m.<name> and v.<name>; null for a weights-only folder. */
  moments: HostTensors | null;
  state: TrainState;
}

function errText(e: unknown): string {
  if (e instanceof UserError) return e.message;
  const err = e as NodeJS.ErrnoException;
  return (err && typeof err.message === 'string' ? err.message : String(e)).replace(/\s+/g, ' ');
}

/** Writes a file and fsyncs it (inside the temp folder; the folder rename is the commit). */
function writeSynced(path: string, data: Uint8Array | string): void {
  const fd = openSync(path, 'wx');
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function syncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // NOTE: some platforms cannot fsync a folder; the renames stay atomic regardless.
  }
}

function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null; // absent (ENOTDIR: an ancestor is a file)
    throw new UserError(`cannot inspect ${quote(path)}: ${(e as NodeJS.ErrnoException).code ?? errText(e)}`);
  }
}

/** Entries of a real folder that are not our regular files (a name of ours that is a folder or a link counts). */
function foreignEntries(dir: string): string[] {
  return readdirSync(dir).filter((name) => !CHECKPOINT_FILES.includes(name) || !lstatSync(join(dir, name)).isFile());
}

/**
 * Deletes our file names in `dir`, then the folder if that left it empty; never recursive.
 * Best effort: a folder someone added a file to stays (with that file) and false comes back.
 */
function removeOurFolder(dir: string): boolean {
  for (const name of CHECKPOINT_FILES) {
    try {
      if (lstatSync(join(dir, name)).isFile()) unlinkSync(join(dir, name));
    } catch {
      // absent: nothing to remove
    }
  }
  try {
    rmdirSync(dir);
    return true;
  } catch {
    return false;
  }
}

const LEFTOVER_RE = /^(.*)\.(tmp|old)-(\d+)-([0-9a-f]{8})$/;

/**
 * Sibling folders an earlier save of `dir` left: named exactly `<name>.<kind>-<pid>-<8 hex>`,
 * real folders (not links) holding only our file names. A temp folder of a process still
 * alive is someone's save in progress and is not listed.
 */
function leftovers(dir: string, kind: 'tmp' | 'old'): string[] {
  const parent = dirname(dir);
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const name of names) {
    const m = LEFTOVER_RE.exec(name);
    if (!m || m[1] !== basename(dir) || m[2] !== kind) continue;
    const p = join(parent, name);
    try {
      if (!lstatSync(p).isDirectory() || foreignEntries(p).length > 0) continue;
    } catch {
      continue;
    }
    // A temp folder of our own PID is a save of this process that failed; another live one's is
    // a save in progress.
    const pid = Number(m[3]);
    if (kind === 'tmp' && pid !== process.pid && processAlive(pid)) continue;
    out.push(p);
  }
  return out;
}

/** A state.json's content, validated (state-schema.ts); bounded, regular files only. */
function readState(dir: string): TrainState {
  const path = join(dir, STATE_FILE);
  const text = readInputText(path, 'training state');
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new UserError(`${path}: not valid JSON (${errText(e).split('\n')[0].slice(0, 120)})`);
  }
  return validateState(raw, path);
}

/**
 * What `--out DIR` holds, refusing anything a save must not replace: 'absent', 'empty' (a
 * real, empty folder) or 'checkpoint' (a real folder with only our file names and a valid
 * state.json). A file, a link, a device, or a folder with anything else is a one-line
 * UserError. Called before training starts and again by every save.
 */
export function checkOutputDir(dirIn: string, flag = '--out'): 'absent' | 'empty' | 'checkpoint' {
  const dir = resolve(dirIn);
  const refuse = (why: string): never => {
    throw new UserError(`${flag} ${quote(dirIn)} ${why}; give a new or empty folder, or an earlier checkpoint folder (nothing was changed)`);
  };
  if (dirIn.trim() === '') refuse('is empty');
  const st = lstatOrNull(dir);
  if (st === null) {
    checkParent(dir, dirIn, flag);
    return 'absent';
  }
  if (st.isSymbolicLink()) refuse('is a symbolic link (a checkpoint never replaces a link)');
  if (!st.isDirectory()) refuse(st.isFile() ? 'is a file, not a checkpoint folder' : 'is not a folder');
  const foreign = foreignEntries(dir);
  if (foreign.length > 0) {
    const names = foreign.slice(0, 3).map((n) => quote(n, 40)).join(', ');
    refuse(`holds files that are not part of a tokenformer checkpoint (${names}${foreign.length > 3 ? `, … ${foreign.length} in all` : ''})`);
  }
  if (readdirSync(dir).length === 0) return 'empty';
  if (lstatOrNull(join(dir, STATE_FILE)) === null) refuse(`has no ${STATE_FILE}, so it is not a complete tokenformer checkpoint`);
  try {
    readState(dir);
  } catch (e) {
    refuse(`is not a valid tokenformer checkpoint (${errText(e).slice(0, 160)})`);
  }
  return 'checkpoint';
}

/** The nearest existing ancestor of an absent --out must be a folder (links to one are fine). */
function checkParent(dir: string, dirIn: string, flag: string): void {
  for (let p = dirname(dir); ; p = dirname(p)) {
    if (lstatOrNull(p) !== null) {
      let isDir = false;
      try {
        isDir = statSync(p).isDirectory();
      } catch {
        // a dangling link: not a folder
      }
      if (!isDir) throw new UserError(`${flag} ${quote(dirIn)}: ${quote(p)} is not a folder, so the checkpoint folder cannot be created`);
      return;
    }
    if (dirname(p) === p) return;
  }
}

function checkpointFiles(ck: Checkpoint, configYaml: string): [string, () => Uint8Array | string][] {
  const files: [string, () => Uint8Array | string][] = [
    [WEIGHTS_FILE, () => serializeSafetensors(ck.weights, { format: 'pt' })],
    [OPTIMIZER_FILE, () => serializeSafetensors(ck.moments ?? new Map(), { step: String(ck.state.step) })],
    [CONFIG_FILE, () => configYaml],
    [STATE_FILE, () => `${JSON.stringify(ck.state, null, 1)}\n`], // last: marks the folder complete
  ];
  return files.filter(([name]) => name !== OPTIMIZER_FILE || ck.moments !== null);
}

/**
 * Saves a checkpoint folder atomically (see the header). `testHookAfterFile` runs after
 * each file is written (tests use it to be killed, or to fail, mid-save). Any failure
 * removes the temp folder, leaves the previous checkpoint as it was and is one UserError.
 */
export function saveCheckpoint(
  dirIn: string, ck: Checkpoint, configYaml: string, testHookAfterFile?: (file: string) => void,
): void {
  const dir = resolve(dirIn);
  const before = checkOutputDir(dirIn);
  const kept = before === 'checkpoint' ? `the previous checkpoint in ${quote(dirIn)} is intact` : `nothing was left in ${quote(dirIn)}`;
  const fail = (e: unknown): never => {
    throw new UserError(`cannot save the checkpoint (step ${ck.state.step}) to ${quote(dirIn)}: ${errText(e)}; ${kept}`);
  };
  try {
    mkdirSync(dirname(dir), { recursive: true });
  } catch (e) {
    fail(e);
  }
  for (const stale of leftovers(dir, 'tmp')) removeOurFolder(stale);
  const tag = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const tmp = `${dir}.tmp-${tag}`;
  try {
    mkdirSync(tmp);
    for (const [name, make] of checkpointFiles(ck, configYaml)) {
      writeSynced(join(tmp, name), make());
      testHookAfterFile?.(name);
    }
    syncDir(tmp);
  } catch (e) {
    removeOurFolder(tmp);
    fail(e);
  }
  commitFolder(dir, tmp, tag, before !== 'absent', fail, testHookAfterFile);
}

/** The two renames: the old folder aside, the temp folder in; then the old one removed. */
function commitFolder(
  dir: string, tmp: string, tag: string, exists: boolean, fail: (e: unknown) => never, hook?: (file: string) => void,
): void {
  const old = exists ? `${dir}.old-${tag}` : null;
  try {
    if (old) {
      renameSync(dir, old);
      hook?.('(renamed aside)');
    }
    renameSync(tmp, dir);
  } catch (e) {
    if (old && lstatOrNull(dir) === null) {
      try {
        renameSync(old, dir); // put the previous checkpoint back
      } catch {
        // it stays complete as <dir>.old-*, which loadCheckpoint recovers
      }
    }
    removeOurFolder(tmp);
    fail(e);
  }
  syncDir(dirname(dir));
  if (old) removeOurFolder(old);
  for (const stale of leftovers(dir, 'old')) removeOurFolder(stale);
}

/** Where a checkpoint's files are: the folder, or a complete `.old-*` copy a kill left. */
export function resolveCheckpointDir(dirIn: string): string {
  const dir = resolve(dirIn);
  if (lstatOrNull(join(dir, STATE_FILE)) !== null) return dir;
  const olds = leftovers(dir, 'old').filter((d) => lstatOrNull(join(d, STATE_FILE)) !== null);
  if (olds.length > 0) {
    // The newest complete one: the highest step.
    return olds.map((d) => ({ d, step: readState(d).step })).sort((a, b) => b.step - a.step)[0].d;
  }
  throw new UserError(`${dirIn}: no checkpoint (${STATE_FILE} missing)`);
}

/** The first NaN or infinite value of a set of tensors, or null. */
export function firstNonFinite(tensors: ReadonlyMap<string, { data: Float32Array }>): { name: string; index: number; value: number } | null {
  for (const [name, t] of tensors) {
    const d = t.data;
    for (let i = 0; i < d.length; i++) {
      if (!Number.isFinite(d[i])) return { name, index: i, value: d[i] };
    }
  }
  return null;
}

function f32Map(path: string, what: string): HostTensors {
  const out: HostTensors = new Map();
  for (const [name, t] of readSafetensors(path, what)) {
    if (!(t.data instanceof Float32Array)) throw new UserError(`${path}: ${quote(name)} is not a float tensor`);
    out.set(name, { shape: t.shape, data: t.data });
  }
  const bad = firstNonFinite(out);
  if (bad) throw new UserError(`${path}: ${quote(bad.name)} holds ${bad.value} at index ${bad.index} (a checkpoint must be finite)`);
  return out;
}

/** Adam's second moments v.* are running means of g², never negative. */
function checkSecondMoments(path: string, moments: HostTensors): void {
  for (const [name, t] of moments) {
    if (!name.startsWith('v.')) continue;
    const i = t.data.findIndex((x) => x < 0);
    if (i >= 0) throw new UserError(`${path}: ${quote(name)} holds ${t.data[i]} at index ${i}; Adam's second moment is never negative`);
  }
}

/** A checkpoint's folder and validated state, without reading its tensors (plan memory first). */
export function readCheckpointState(dirIn: string): { dir: string; state: TrainState } {
  const dir = resolveCheckpointDir(dirIn);
  return { dir, state: readState(dir) };
}

/** The tensors of a checkpoint whose state was read: finite weights and moments, v ≥ 0. */
export function loadCheckpointTensors(dir: string, state: TrainState): Checkpoint {
  const weights = f32Map(join(dir, WEIGHTS_FILE), 'checkpoint weights');
  const optPath = join(dir, OPTIMIZER_FILE);
  const moments = lstatOrNull(optPath) !== null ? f32Map(optPath, 'checkpoint optimizer state') : null;
  if (moments) checkSecondMoments(optPath, moments);
  return { weights, moments, state };
}

export function loadCheckpoint(dirIn: string): Checkpoint {
  const { dir, state } = readCheckpointState(dirIn);
  return loadCheckpointTensors(dir, state);
}

export function newState(config: ModelConfig, args: Record<string, unknown>, dataRng: number[]): TrainState {
  return { version: STATE_VERSION, step: 0, dataRng, config, args, history: [] };
}
