// torch.save, written without torch: the zip format torch ≥ 1.6 uses (archive/data.pkl,
// archive/byteorder = "little", archive/data/<key> per storage, archive/version = "3"), each
// tensor its own storage, rebuilt on load by torch._utils._rebuild_tensor_v2 from the persistent
// id ('storage', torch.<Float|Half|BFloat16|…>Storage, key, 'cpu', numel). A state dict
// (`stageTorchBin`) pickles byte for byte as torch 1.13 pickles the same OrderedDict; nested
// checkpoints ({"module": state dict, …}, DeepSpeed's layout) go through `TorchSave`.
// Omits: shared storages and views (every tensor is written contiguous, offset 0), the legacy
// pre-1.6 format, `_metadata` (state_dict()'s version table), requires_grad and hooks.

import { StagedWriter, commitStaged, type StagedFile } from '../atomic.ts';
import { UserError } from '../errors.ts';
import { fmtShape, quote } from '../fsguard.ts';
import { ITEMSIZE, LITTLE_ENDIAN, encode } from '../safetensors-dtypes.ts';
import { PyCall, PyDict, PyGlobal, PyPersistent, PyTuple, pickle, type PyValue } from './pickle-write.ts';
import { ZipWriter, type ByteSink, type ZipOptions } from './write-zip.ts';

/** A tensor to write: `data` (floats or integers, row-major) stored as `dtype`. */
export interface TensorOut {
  dtype: string; // F32 | F16 | BF16 | I64 | I32 | I16 | I8 | U8 | BOOL
  shape: readonly number[];
  data: Float32Array | Int32Array;
}

/** Storage class (in module torch) for each dtype torch.save can write here. */
export const TORCH_STORAGE: Record<string, string> = {
  F32: 'FloatStorage', F16: 'HalfStorage', BF16: 'BFloat16Storage', I64: 'LongStorage',
  I32: 'IntStorage', I16: 'ShortStorage', I8: 'CharStorage', U8: 'ByteStorage', BOOL: 'BoolStorage',
};

/** What torch names the archive's folder when it saves to a stream (any name loads). */
export const ARCHIVE = 'archive';
const REBUILD = new PyGlobal('torch._utils', '_rebuild_tensor_v2');

function numelOf(name: string, t: TensorOut): number {
  for (const d of t.shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new UserError(`torch.save: tensor ${quote(name)} has a bad dim ${quote(String(d))}`);
  }
  const numel = t.shape.reduce((a, b) => a * b, 1);
  if (numel !== t.data.length) {
    throw new UserError(`torch.save: tensor ${quote(name)} shape ${fmtShape(t.shape)} needs ${numel} elements, data has ${t.data.length}`);
  }
  const float = t.dtype === 'F32' || t.dtype === 'F16' || t.dtype === 'BF16';
  if (TORCH_STORAGE[t.dtype] === undefined || float !== t.data instanceof Float32Array) {
    throw new UserError(`torch.save: tensor ${quote(name)} cannot be stored as ${quote(t.dtype)} from ${t.data.constructor.name}`);
  }
  return numel;
}

/** Row-major strides of a contiguous tensor (torch's t.stride()). */
function strides(shape: readonly number[]): number[] {
  const out = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    out[i] = s;
    s *= shape[i];
  }
  return out;
}

/** A tensor's bytes as stored: a view of its data where the layout already matches. */
function recordBytes(t: TensorOut): Uint8Array {
  const same = (t.dtype === 'F32' && t.data instanceof Float32Array) || (t.dtype === 'I32' && t.data instanceof Int32Array);
  if (same && LITTLE_ENDIAN) return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  return encode(t.data, t.dtype);
}

/**
 * Builds one torch.save file: `tensor()` returns the pickled reference to a new storage, to be
 * placed anywhere in the root value; `stage()` writes the archive with every storage's record.
 */
export class TorchSave {
  private readonly storages: TensorOut[] = [];

  /** _rebuild_tensor_v2(storage, 0, size, stride, False, OrderedDict()) for a new storage. */
  tensor(name: string, t: TensorOut): PyCall {
    const numel = numelOf(name, t);
    const key = String(this.storages.length);
    this.storages.push(t);
    const pid = new PyTuple(['storage', new PyGlobal('torch', TORCH_STORAGE[t.dtype]), key, 'cpu', numel]);
    return new PyCall(REBUILD, new PyTuple([
      new PyPersistent(pid), 0, new PyTuple([...t.shape]), new PyTuple(strides(t.shape)), false, new PyDict([], true),
    ]));
  }

  /** Bytes of the whole archive (records are encoded one at a time, as they are written). */
  writeTo(sink: ByteSink, root: PyValue, opts: ZipOptions = {}): void {
    const zip = new ZipWriter(sink, opts);
    zip.add(`${ARCHIVE}/data.pkl`, [pickle(root)]);
    zip.add(`${ARCHIVE}/byteorder`, [new TextEncoder().encode('little')]);
    this.storages.forEach((t, i) => zip.add(`${ARCHIVE}/data/${i}`, [recordBytes(t)]));
    zip.add(`${ARCHIVE}/version`, [new TextEncoder().encode('3\n')]);
    zip.finish();
  }

  /** Writes the archive into a staged temp file next to `path`; commit it with commitStaged. */
  stage(path: string, root: PyValue, opts: ZipOptions = {}): StagedFile {
    const w = new StagedWriter(path);
    try {
      this.writeTo(w, root, opts);
      return w.finish();
    } catch (e) {
      w.abort();
      throw e;
    }
  }

  /** Total bytes of the storages' records (for free-space checks). */
  get dataBytes(): number {
    return this.storages.reduce((a, t) => a + t.data.length * ITEMSIZE[t.dtype], 0);
  }
}

/** The OrderedDict name → tensor that torch.save(state_dict) pickles, in the given order. */
export function stateDictValue(ts: TorchSave, tensors: ReadonlyMap<string, TensorOut>): PyDict {
  return new PyDict([...tensors].map(([name, t]) => [name, ts.tensor(name, t)] as const), true);
}

/** Stages `torch.save(OrderedDict(tensors), path)`; commit with commitStaged. */
export function stageTorchBin(path: string, tensors: ReadonlyMap<string, TensorOut>, opts: ZipOptions = {}): StagedFile {
  const ts = new TorchSave();
  return ts.stage(path, stateDictValue(ts, tensors), opts);
}

/** Staged write + commit: `path` is replaced whole or not at all. */
export function writeTorchBinAtomic(path: string, tensors: ReadonlyMap<string, TensorOut>): void {
  commitStaged([stageTorchBin(path, tensors)]);
}

/** A whole torch.save file in memory (tests; small files). */
export function serializeTorchBin(tensors: ReadonlyMap<string, TensorOut>, opts: ZipOptions = {}): Uint8Array {
  const parts: Uint8Array[] = [];
  const ts = new TorchSave();
  ts.writeTo({ write: (b) => parts.push(b.slice()) }, stateDictValue(ts, tensors), opts);
  return Buffer.concat(parts);
}
