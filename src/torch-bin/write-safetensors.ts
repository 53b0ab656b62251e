// Safetensors in any dtype the readers take (F32, F16, BF16, I64, I32, I16, U16, I8, U8, BOOL),
// for `tokenformer convert`: the same layout as src/safetensors.ts writes for F32/I32 (tensors
// sorted by name, `__metadata__` first, header space-padded to a multiple of 8), streamed tensor
// by tensor into a staged temp file. Lives here, beside the torch writer, until
// src/safetensors.ts (another owner's) takes encoders itself; then this file can go.
// Omits: F64, U32/U64 and F8_* (not readable here either).

import { StagedWriter, type StagedFile } from '../atomic.ts';
import { UserError } from '../errors.ts';
import { fmtShape, quote } from '../fsguard.ts';
import { ITEMSIZE, WRITABLE, encode } from '../safetensors-dtypes.ts';
import type { TensorOut } from './write.ts';

function checked(name: string, t: TensorOut): number {
  if (!WRITABLE.has(t.dtype)) throw new UserError(`safetensors: tensor ${quote(name)}: cannot write dtype ${quote(t.dtype)}`);
  for (const d of t.shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new UserError(`safetensors: tensor ${quote(name)} has a bad dim ${quote(String(d))}`);
  }
  const numel = t.shape.reduce((a, b) => a * b, 1);
  if (numel !== t.data.length) {
    throw new UserError(`safetensors: tensor ${quote(name)} shape ${fmtShape(t.shape)} needs ${numel} elements, data has ${t.data.length}`);
  }
  const float = t.dtype === 'F32' || t.dtype === 'F16' || t.dtype === 'BF16';
  if (float !== t.data instanceof Float32Array) {
    throw new UserError(`safetensors: tensor ${quote(name)} cannot be stored as ${t.dtype} from ${t.data.constructor.name}`);
  }
  return numel;
}

/** Length prefix + JSON header (space-padded to 8) for the tensors in the order given. */
export function headerFor(items: ReadonlyArray<readonly [string, TensorOut]>, metadata?: Record<string, string>): Uint8Array {
  const parts: string[] = [];
  if (metadata && Object.keys(metadata).length > 0) parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  let offset = 0;
  for (const [name, t] of items) {
    if (name === '__metadata__') throw new UserError('safetensors: "__metadata__" is not a tensor name');
    const end = offset + checked(name, t) * ITEMSIZE[t.dtype];
    parts.push(`${JSON.stringify(name)}:{"dtype":"${t.dtype}","shape":[${t.shape.join(',')}],"data_offsets":[${offset},${end}]}`);
    offset = end;
  }
  const raw = new TextEncoder().encode(`{${parts.join(',')}}`);
  const len = Math.ceil(raw.length / 8) * 8;
  const out = new Uint8Array(8 + len).fill(0x20, 8 + raw.length);
  new DataView(out.buffer).setUint32(0, len, true); // headers here are far below 2^32
  out.set(raw, 8);
  return out;
}

/** Stages a safetensors file of `tensors` (sorted by name); commit with commitStaged. */
export function stageSafetensorsAny(
  path: string, tensors: ReadonlyMap<string, TensorOut>, metadata?: Record<string, string>,
): StagedFile {
  const items = [...tensors].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const header = headerFor(items, metadata);
  const w = new StagedWriter(path);
  try {
    w.write(header);
    for (const [, t] of items) w.write(encode(t.data, t.dtype));
    return w.finish();
  } catch (e) {
    w.abort();
    throw e;
  }
}
