// A torch.save zip checkpoint → tensors: finds the archive's top folder and data.pkl, runs
// the restricted unpickler, checks every tensor view against its storage record, then copies
// each view out as a contiguous row-major array (F16/BF16 → Float32Array, integers →
// Int32Array, decoded by src/safetensors-dtypes.ts exactly as for safetensors).
// Omits: the legacy (pre-1.6) format and bare pickles (recognised, refused with a clear
// message by src/torch-bin.ts), big-endian archives, nested checkpoints ({"module": ...}).

import { ITEMSIZE, decode, fail, q } from '../safetensors-dtypes.ts';
import { SafeTensors } from '../safetensors.ts';
import { PDict, describe, unpickle } from './pickle.ts';
import type { ByteSource } from './source.ts';
import { StorageRef, TensorRef, torchHooks } from './torch-globals.ts';
import { ZipArchive, type ZipEntry } from './zip.ts';

export interface TorchBinOptions {
  /** Load only the tensors whose names pass (the others are still checked, never read). */
  filter?: (name: string) => boolean;
}

/** Together, tensors may hold at most this many times the elements of the storages they view. */
export const VIEW_BUDGET = 4;

interface Layout {
  zip: ZipArchive;
  prefix: string; // "<top folder>/"
  pkl: ZipEntry;
}

/** The one top folder holding data.pkl; every entry must sit inside it, as torch writes. */
function findLayout(zip: ZipArchive, source: string): Layout {
  const names = [...zip.entries.keys()];
  const pkls = names.filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pkls.length === 0) fail(source, 'no <folder>/data.pkl in the zip archive: not a torch.save checkpoint');
  if (pkls.length > 1) fail(source, `the zip archive has ${pkls.length} top folders with a data.pkl`);
  const prefix = pkls[0].slice(0, -'data.pkl'.length);
  const stray = names.find((n) => !n.startsWith(prefix));
  if (stray !== undefined) fail(source, `zip entry ${q(stray)} is outside the archive's folder ${q(prefix)}`);
  return { zip, prefix, pkl: zip.entries.get(pkls[0])! };
}

/** A small text record (version, byteorder), or null when absent. */
function smallRecord(l: Layout, name: string, source: string): string | null {
  const e = l.zip.entries.get(l.prefix + name);
  if (!e) return null;
  if (e.size > 64) fail(source, `record ${q(e.name)} is ${e.size} bytes (expected a short text)`);
  return new TextDecoder().decode(l.zip.read(e)).trim();
}

function checkRecords(l: Layout, source: string): void {
  const order = smallRecord(l, 'byteorder', source);
  if (order === 'big') fail(source, 'big-endian checkpoint (byteorder "big") is not supported: re-save it on a little-endian machine');
  if (order !== null && order !== 'little') fail(source, `byteorder record says ${q(order)}, not "little"`);
  const version = smallRecord(l, 'version', source);
  if (version !== null && !/^[0-9]{1,4}$/.test(version)) fail(source, `version record ${q(version)} is not a number`);
}

/** The view's element count (0 when empty); throws if it reads outside its storage. */
function checkView(name: string, t: TensorRef, source: string): number {
  const numel = t.shape.includes(0) ? 0 : t.shape.reduce((a, b) => a * b, 1);
  const s = t.storage;
  const view = `(offset ${t.offset}, size [${t.shape.join(', ')}], stride [${t.stride.join(', ')}])`;
  if (numel === 0) {
    if (t.offset > s.numel) fail(source, `tensor ${q(name)}: storage offset ${t.offset} is outside its storage of ${s.numel} elements`);
    return 0;
  }
  if (numel > s.numel) {
    fail(source, `tensor ${q(name)} ${view} has more elements than its storage holds (${numel} > ${s.numel}); repeated (stride-0) views are not parameters`);
  }
  let last = t.offset;
  for (let i = 0; i < t.shape.length; i++) last += (t.shape[i] - 1) * t.stride[i];
  if (last >= s.numel) {
    fail(source, `tensor ${q(name)} ${view} reads element ${last}, outside its storage of ${s.numel} elements`);
  }
  return numel;
}

interface Planned {
  name: string;
  t: TensorRef;
  numel: number;
}

/** The state dict's tensors in file order, validated against their records; nothing read yet. */
function plan(l: Layout, root: unknown, source: string, opts: TorchBinOptions) {
  if (!(root instanceof PDict)) fail(source, `data.pkl holds ${describe(root as never)}, not a state dict (name → tensor)`);
  const tensors: Planned[] = [];
  const records = new Map<StorageRef, ZipEntry>();
  for (const [name, t] of root.map) {
    if (typeof name !== 'string') fail(source, `state dict key is ${describe(name)}, not a string`);
    if (!(t instanceof TensorRef)) {
      fail(source, `${q(name)} holds ${describe(t as never)}, not a tensor (a plain state dict of name → tensor is expected)`);
    }
    const s = t.storage;
    const recName = `${l.prefix}data/${s.key}`;
    const rec = l.zip.entries.get(recName);
    if (!rec) fail(source, `storage ${q(s.key)} of tensor ${q(name)} has no record ${q(recName)}`);
    const want = s.numel * ITEMSIZE[s.dtype];
    if (rec.size !== want) {
      fail(source, `storage ${q(s.key)} declares ${s.numel} × ${s.dtype} = ${want} bytes but its record holds ${rec.size} bytes`);
    }
    const numel = checkView(name, t, source);
    if (opts.filter && !opts.filter(name)) continue;
    tensors.push({ name, t, numel });
    records.set(s, rec);
  }
  let elements = 0;
  let stored = 0;
  for (const x of tensors) elements += x.numel;
  for (const s of records.keys()) stored += s.numel;
  if (elements > VIEW_BUDGET * stored) {
    fail(source, `tensors hold ${elements} elements in all, over ${VIEW_BUDGET} × the ${stored} their storages hold`);
  }
  return { tensors, records };
}

/** Row-major copy of a strided view (offsets relative to `src`, which starts at the view's first element). */
function gather<T extends Float32Array | Int32Array>(src: T, out: T, shape: number[], stride: number[]): void {
  const nd = shape.length;
  const idx = new Array<number>(nd).fill(0);
  const inner = shape[nd - 1];
  const step = stride[nd - 1];
  let base = 0;
  for (let o = 0; o < out.length; o += inner) {
    for (let j = 0; j < inner; j++) out[o + j] = src[base + j * step];
    for (let d = nd - 2; d >= 0; d--) {
      idx[d]++;
      base += stride[d];
      if (idx[d] < shape[d]) break;
      base -= stride[d] * shape[d];
      idx[d] = 0;
    }
  }
}

function isRowMajor(shape: number[], stride: number[]): boolean {
  let want = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && stride[i] !== want) return false;
    want *= shape[i];
  }
  return true;
}

/** Elements [first, last + 1) of its storage that a non-empty view touches. */
function extent(t: TensorRef): [number, number] {
  let span = 1;
  for (let i = 0; i < t.shape.length; i++) span += (t.shape[i] - 1) * t.stride[i];
  return [t.offset, span];
}

/** One view out of `bytes`, which hold its storage from element `base` on. */
function materialize(bytes: Uint8Array, base: number, name: string, t: TensorRef, numel: number, source: string) {
  const { dtype } = t.storage;
  const size = ITEMSIZE[dtype];
  if (numel === 0) return decode(bytes, 0, 0, dtype, source, name);
  const [first, span] = extent(t);
  if (isRowMajor(t.shape, t.stride)) return decode(bytes, (first - base) * size, numel, dtype, source, name);
  const src = decode(bytes, (first - base) * size, span, dtype, source, name);
  const out = src instanceof Float32Array ? new Float32Array(numel) : new Int32Array(numel);
  gather(src, out, t.shape, t.stride);
  return out;
}

/**
 * Records up to this size are read whole, CRC-checked, and shared by their views. A bigger one
 * (zero_to_fp32's flat buffer of a large model) is read view by view, without its CRC: one
 * buffer cannot hold it in every Node, and peak memory stays near the output's.
 */
export const WHOLE_RECORD_BYTES = 1 << 30;

function loadGroup(l: Layout, entry: ZipEntry, group: Planned[], source: string, wholeMax: number) {
  const out = new Map<string, Float32Array | Int32Array>();
  if (entry.size <= wholeMax) {
    const rec = l.zip.read(entry);
    for (const { name, t, numel } of group) out.set(name, materialize(rec, 0, name, t, numel, source));
    return out;
  }
  for (const { name, t, numel } of group) {
    const size = ITEMSIZE[t.storage.dtype];
    const [first, span] = numel === 0 ? [0, 0] : extent(t);
    const bytes = l.zip.readRange(entry, first * size, span * size);
    out.set(name, materialize(bytes, first, name, t, numel, source));
  }
  return out;
}

/** Reads a torch.save zip checkpoint from `src`; every failure is a one-line UserError. */
export function loadTorchZip(
  src: ByteSource, source: string, opts: TorchBinOptions = {}, wholeMax = WHOLE_RECORD_BYTES,
): SafeTensors {
  const l = findLayout(new ZipArchive(src, source), source);
  checkRecords(l, source);
  const root = unpickle(l.zip.read(l.pkl), torchHooks(source), source);
  const { tensors, records } = plan(l, root, source, opts);
  const byStorage = new Map<StorageRef, Planned[]>();
  for (const x of tensors) {
    const group = byStorage.get(x.t.storage);
    if (group) group.push(x);
    else byStorage.set(x.t.storage, [x]);
  }
  const data = new Map<string, Float32Array | Int32Array>();
  for (const [storage, group] of byStorage) {
    // one storage record in memory at a time
    for (const [name, d] of loadGroup(l, records.get(storage)!, group, source, wholeMax)) data.set(name, d);
  }
  const out = new SafeTensors();
  for (const { name, t } of tensors) out.set(name, { dtype: t.storage.dtype, shape: t.shape, data: data.get(name)! });
  return out;
}
