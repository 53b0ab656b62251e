// Safetensors read/write (https://github.com/huggingface/safetensors, format described in
// spec/checkpoint.md): reads F32/F16/BF16 (to Float32Array) and I32/I64/I16/U16/I8/U8/BOOL
// (to Int32Array; see src/safetensors-dtypes.ts), writes F32 and I32, whole or streamed tensor
// by tensor (or chunk by chunk) into a staged temp file. Every malformed input is a one-line
// UserError naming the file; names and shapes in messages are quoted and capped.
// Omits: memory-mapping, lazy loading, and F64/U32/U64/F8_* (recognised, rejected clearly).

import { UserError } from './errors.ts';
import { StagedWriter, commitStaged, type StagedFile } from './atomic.ts';
import { fmtShape, quote, readInputFile } from './fsguard.ts';
import { ITEMSIZE, LITTLE_ENDIAN, READABLE, decode, fail, q } from './safetensors-dtypes.ts';
export { bf16ToNumber, f16ToNumber } from './safetensors-dtypes.ts';

export interface SafeTensor {
  dtype: string; // as stored in the file: 'F32' | 'F16' | 'BF16' | 'I32' | 'I64'
  shape: number[];
  data: Float32Array | Int32Array;
}

/** A parsed file: tensors by name (in file order), plus the `__metadata__` string map. */
export class SafeTensors extends Map<string, SafeTensor> {
  metadata: Record<string, string> = {};
}

export interface TensorIn {
  shape: readonly number[];
  data: Float32Array | Int32Array;
}

/** The official reader's limit on the JSON header (safetensors MAX_HEADER_SIZE). */
export const MAX_HEADER_BYTES = 100_000_000;

/** A JSON value for messages without recursing into it (it may be nested arbitrarily deep). */
function brief(v: unknown): string {
  if (typeof v === 'string') return q(v);
  if (Array.isArray(v)) return 'an array';
  if (v === null || typeof v !== 'object') return String(v);
  return 'an object';
}


// ------------------------------------------------------------------------------ header checks

/**
 * Finds a key that repeats within one JSON object (JSON.parse silently keeps the last).
 * `text` must already be valid JSON. Iterative, so deep nesting cannot overflow the stack.
 */
export function findDuplicateKey(text: string): string | null {
  const stack: (Set<string> | null)[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 0x22 /* " */) {
      let j = i + 1;
      while (text.charCodeAt(j) !== 0x22) j += text.charCodeAt(j) === 0x5c /* \ */ ? 2 : 1;
      const top = stack[stack.length - 1];
      if (expectKey && top) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (top.has(key)) return key;
        top.add(key);
        expectKey = false;
      }
      i = j;
    } else if (ch === 0x7b /* { */) {
      stack.push(new Set());
      expectKey = true;
    } else if (ch === 0x5b /* [ */) {
      stack.push(null);
      expectKey = false;
    } else if (ch === 0x7d /* } */ || ch === 0x5d /* ] */) {
      stack.pop();
    } else if (ch === 0x2c /* , */) {
      expectKey = stack[stack.length - 1] !== null && stack.length > 0;
    }
  }
  return null;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads the 8-byte length prefix and the JSON header; returns it and where data begins. */
function readHeader(bytes: Uint8Array, source: string): { header: Record<string, unknown>; dataStart: number } {
  if (bytes.length < 8) {
    fail(source, `not a safetensors file: ${bytes.length} bytes, shorter than the 8-byte header length`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, 8);
  const lo = dv.getUint32(0, true);
  const hi = dv.getUint32(4, true);
  const n = hi * 4294967296 + lo; // exact below 2^53; anything near that is rejected anyway
  if (n > MAX_HEADER_BYTES) fail(source, `header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  if (n > bytes.length - 8) {
    fail(source, `header length ${n} exceeds the file (${bytes.length - 8} bytes after the length prefix)`);
  }
  if (n < 2) fail(source, `header length ${n} is too short for a JSON object`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    return fail(source, 'header is not valid UTF-8');
  }
  if (text[0] !== '{') fail(source, 'header does not start with "{" (not a JSON object)');
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    return fail(source, `header is not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (!isPlainObject(header)) fail(source, 'header is not a JSON object');
  const dup = findDuplicateKey(text);
  if (dup !== null) fail(source, `header repeats the key ${q(dup)}`);
  return { header, dataStart: 8 + n };
}

function checkMetadata(v: unknown, source: string): Record<string, string> {
  if (!isPlainObject(v)) fail(source, '__metadata__ must be an object of strings');
  for (const [k, val] of Object.entries(v)) {
    if (typeof val !== 'string') fail(source, `__metadata__ value of ${q(k)} is not a string`);
  }
  return Object.fromEntries(Object.entries(v)) as Record<string, string>;
}

interface Entry {
  name: string;
  dtype: string;
  shape: number[];
  begin: number;
  end: number;
  numel: number;
}

/** Validates one tensor entry's fields, dtype, shape and offsets against the data section. */
function checkEntry(name: string, v: unknown, dataLen: number, source: string): Entry {
  const t = `tensor ${q(name)}`;
  if (!isPlainObject(v)) fail(source, `${t}: entry is not an object`);
  const keys = Object.keys(v);
  for (const k of ['dtype', 'shape', 'data_offsets']) {
    if (!Object.hasOwn(v, k)) fail(source, `${t}: missing field "${k}"`);
  }
  const extra = keys.filter((k) => k !== 'dtype' && k !== 'shape' && k !== 'data_offsets');
  if (extra.length > 0) fail(source, `${t}: unexpected field ${q(extra[0])}`);
  const { dtype, shape, data_offsets: offs } = v as { dtype: unknown; shape: unknown; data_offsets: unknown };
  if (typeof dtype !== 'string') fail(source, `${t}: dtype is not a string`);
  if (!Object.hasOwn(ITEMSIZE, dtype)) fail(source, `${t}: unknown dtype ${q(dtype)}`);
  if (!READABLE.has(dtype)) {
    fail(source, `${t}: unsupported dtype ${dtype} (readable: ${[...READABLE].join(', ')})`);
  }
  if (!Array.isArray(shape)) fail(source, `${t}: shape is not an array`);
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      fail(source, `${t}: shape dim ${brief(d)} is not a non-negative integer`);
    }
  }
  const dims = shape as number[];
  if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && o >= 0)) {
    fail(source, `${t}: data_offsets must be [begin, end], two non-negative integers`);
  }
  const [begin, end] = offs as [number, number];
  if (begin > end) fail(source, `${t}: data_offsets [${begin}, ${end}] has begin > end`);
  if (end > dataLen) {
    fail(source, `${t}: data_offsets [${begin}, ${end}] run past the data section (${dataLen} bytes)`);
  }
  // Product with a zero dim is 0 even if others are huge; otherwise it may exceed 2^53, which
  // can never equal end − begin (≤ file size), so the mismatch check below still catches it.
  const numel = dims.includes(0) ? 0 : dims.reduce((a, b) => a * b, 1);
  const want = numel * ITEMSIZE[dtype];
  if (want !== end - begin) {
    fail(source, `${t}: shape ${fmtShape(dims)} × ${dtype} needs ${want} bytes but data_offsets span ${end - begin}`);
  }
  return { name, dtype, shape: dims.slice(), begin, end, numel };
}

/** The data section must be covered exactly: no overlaps, no holes, nothing trailing. */
function checkCoverage(entries: Entry[], dataLen: number, source: string): void {
  const sorted = entries.slice().sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  let prev: Entry | null = null;
  for (const e of sorted) {
    if (e.begin < pos && prev) fail(source, `tensors ${q(prev.name)} and ${q(e.name)} overlap`);
    if (e.begin > pos) {
      fail(source, `hole of ${e.begin - pos} bytes at data offset ${pos} (before tensor ${q(e.name)})`);
    }
    if (e.end > pos) {
      pos = e.end;
      prev = e;
    }
  }
  if (pos !== dataLen) {
    fail(source, `${dataLen - pos} trailing bytes after the last tensor are not covered by any tensor`);
  }
}

// --------------------------------------------------------------------------------- public API

/** Parses a whole safetensors file held in memory. `source` names it in error messages. */
export function parseSafetensors(bytes: Uint8Array, source: string): SafeTensors {
  const { header, dataStart } = readHeader(bytes, source);
  const dataLen = bytes.length - dataStart;
  const out = new SafeTensors();
  const entries: Entry[] = [];
  for (const [name, v] of Object.entries(header)) {
    if (name === '__metadata__') out.metadata = checkMetadata(v, source);
    else entries.push(checkEntry(name, v, dataLen, source));
  }
  checkCoverage(entries, dataLen, source);
  for (const e of entries) {
    const data = decode(bytes, dataStart + e.begin, e.numel, e.dtype, source, e.name);
    out.set(e.name, { dtype: e.dtype, shape: e.shape, data });
  }
  return out;
}

/**
 * Reads and parses a safetensors file; I/O problems are UserErrors too. Only regular files
 * (symlinks to one are followed), bounded by TOKENFORMER_MAX_INPUT_BYTES (src/fsguard.ts).
 */
export function readSafetensors(path: string, what = 'safetensors file'): SafeTensors {
  return parseSafetensors(readInputFile(path, what), quote(path));
}

function dtypeOf(data: Float32Array | Int32Array): 'F32' | 'I32' {
  if (data instanceof Float32Array) return 'F32';
  if (data instanceof Int32Array) return 'I32';
  throw new UserError('safetensors: only Float32Array (F32) and Int32Array (I32) can be written');
}

/** One tensor of a file to write: its data may come later (streamed). */
export interface TensorSpec {
  name: string;
  dtype: 'F32' | 'I32';
  shape: readonly number[];
}

function numelOf(name: string, shape: readonly number[]): number {
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new UserError(`safetensors: tensor ${q(name)} has a bad dim ${d}`);
  }
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * The 8-byte length prefix and the JSON header for tensors stored in the given order, space-
 * padded so data starts 8-aligned. Returns it and the data section's length in bytes.
 */
export function safetensorsHeader(specs: readonly TensorSpec[], metadata?: Record<string, string>): { header: Uint8Array; dataBytes: number } {
  const parts: string[] = [];
  if (metadata && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new UserError(`safetensors: metadata ${q(k)} is not a string`);
    }
    parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  }
  let offset = 0;
  for (const t of specs) {
    if (t.name === '__metadata__') throw new UserError('safetensors: "__metadata__" is not a tensor name');
    const end = offset + 4 * numelOf(t.name, t.shape);
    parts.push(`${JSON.stringify(t.name)}:{"dtype":"${t.dtype}","shape":[${t.shape.join(',')}],"data_offsets":[${offset},${end}]}`);
    offset = end;
  }
  const raw = new TextEncoder().encode(`{${parts.join(',')}}`);
  const headerLen = Math.ceil(raw.length / 8) * 8;
  const header = new Uint8Array(8 + headerLen);
  const dv = new DataView(header.buffer);
  dv.setUint32(0, headerLen, true); // headers here are far below 2^32
  dv.setUint32(4, 0, true);
  header.set(raw, 8);
  header.fill(0x20, 8 + raw.length);
  return { header, dataBytes: offset };
}

function sortedItems(tensors: Record<string, TensorIn> | ReadonlyMap<string, TensorIn>): [string, TensorIn][] {
  const items = (tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors)) as [string, TensorIn][];
  items.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const [name, t] of items) {
    const numel = numelOf(name, t.shape);
    dtypeOf(t.data);
    if (numel !== t.data.length) {
      throw new UserError(`safetensors: tensor ${q(name)} shape ${fmtShape(t.shape)} needs ${numel} elements, data has ${t.data.length}`);
    }
  }
  return items;
}

function specsOf(items: [string, TensorIn][]): TensorSpec[] {
  return items.map(([name, t]) => ({ name, dtype: dtypeOf(t.data), shape: t.shape }));
}

/**
 * Serializes tensors (F32 from Float32Array, I32 from Int32Array) sorted by name, with an
 * optional `__metadata__` string map. The header is space-padded so data starts 8-aligned.
 */
export function serializeSafetensors(
  tensors: Record<string, TensorIn> | ReadonlyMap<string, TensorIn>,
  metadata?: Record<string, string>,
): Uint8Array {
  const items = sortedItems(tensors);
  const { header, dataBytes } = safetensorsHeader(specsOf(items), metadata);
  const out = new Uint8Array(header.length + dataBytes);
  out.set(header);
  let pos = header.length;
  for (const [, t] of items) {
    out.set(tensorBytes(t.data), pos);
    pos += t.data.byteLength;
  }
  return out;
}

/** A tensor's little-endian bytes (a view on little-endian machines, else a converted copy). */
export function tensorBytes(data: Float32Array | Int32Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = new Uint8Array(data.byteLength);
  const dv = new DataView(out.buffer);
  const f = data instanceof Float32Array;
  for (let i = 0; i < data.length; i++) {
    if (f) dv.setFloat32(4 * i, data[i], true);
    else dv.setInt32(4 * i, data[i], true);
  }
  return out;
}

/**
 * Writes a safetensors file into a staged temp file next to `path`, tensor by tensor (no
 * whole-file buffer); commit it with commitStaged. Nothing is left on failure.
 */
export function stageSafetensors(
  path: string,
  tensors: Record<string, TensorIn> | ReadonlyMap<string, TensorIn>,
  metadata?: Record<string, string>,
): StagedFile {
  const items = sortedItems(tensors);
  const { header } = safetensorsHeader(specsOf(items), metadata);
  const w = new StagedWriter(path);
  try {
    w.write(header);
    for (const [, t] of items) w.write(tensorBytes(t.data));
    return w.finish();
  } catch (e) {
    w.abort();
    throw e;
  }
}

/** Staged safetensors write + commit: the target is replaced whole or not at all. */
export function writeSafetensorsAtomic(
  path: string,
  tensors: Record<string, TensorIn> | ReadonlyMap<string, TensorIn>,
  metadata?: Record<string, string>,
): void {
  commitStaged([stageSafetensors(path, tensors, metadata)]);
}
