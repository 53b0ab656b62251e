// The zip container of a torch.save checkpoint, read through its central directory: stored
// (uncompressed) entries only, as torch writes them, with every offset and size checked
// against the file's real size before anything is allocated for it.
// Omits: compression (refused: torch never compresses, and a deflate bomb cannot be built from
// stored entries), encryption, multi-disk archives, and writing.
//
// Why not fflate or yauzl (see spec/checkpoint.md "PyTorch .bin"): yauzl is asynchronous only,
// and the weights readers are synchronous; fflate's unzipSync needs the whole file in one
// buffer (Node reads at most 2 GiB at once, less than the released 900M and 1.5B
// checkpoints), copies every entry, and does not bound-check offsets, the entry count or the
// sizes it allocates for (a deflate entry claiming 4 GB gets a 4 GB buffer). Wrapping it
// safely would take most of this file anyway.

import * as zlib from 'node:zlib';
import { fail, q } from '../safetensors-dtypes.ts';
import type { ByteSource } from './source.ts';

export interface ZipEntry {
  name: string;
  size: number; // bytes (stored: compressed = uncompressed)
  crc: number;
  localOffset: number;
}

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_EOCD64 = 0x06064b50;
const SIG_LOC64 = 0x07064b50;
const MAX_COMMENT = 0xffff;

function u16(b: Uint8Array, p: number): number {
  return b[p] | (b[p + 1] << 8);
}
function u32(b: Uint8Array, p: number): number {
  return (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24)) >>> 0;
}
/** A u64 as a number; above 2⁵³ it cannot be a real offset in a file, so it is refused. */
function u64(b: Uint8Array, p: number, source: string, what: string): number {
  const hi = u32(b, p + 4);
  if (hi >= 2 ** 21) fail(source, `zip ${what} ${hi} · 2³² is absurd`);
  return hi * 2 ** 32 + u32(b, p);
}

interface Directory {
  entries: number;
  cdSize: number;
  cdOffset: number;
  cdEnd: number; // where the directory must end: the first end record
}

/** Finds the end-of-central-directory record (and its zip64 twin) at the file's end. */
function findDirectory(src: ByteSource, source: string): Directory {
  if (src.size < 22) fail(source, `truncated: ${src.size} bytes is too short for a zip archive`);
  const tailStart = Math.max(0, src.size - 22 - MAX_COMMENT);
  const tail = src.read(tailStart, src.size - tailStart);
  let p = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (u32(tail, i) === SIG_EOCD && i + 22 + u16(tail, i + 20) === tail.length) {
      p = i;
      break;
    }
  }
  if (p < 0) fail(source, 'truncated or not a zip archive: no end-of-central-directory record at the end of the file');
  if (u16(tail, p + 4) !== 0 || u16(tail, p + 6) !== 0) fail(source, 'multi-disk zip archives are not supported');
  let entries = u16(tail, p + 10);
  let cdSize = u32(tail, p + 12);
  let cdOffset = u32(tail, p + 16);
  let cdEnd = tailStart + p;
  if (p >= 20 && u32(tail, p - 20) === SIG_LOC64) {
    const at = u64(tail, p - 12, source, 'zip64 record offset');
    if (at + 56 > cdEnd) fail(source, `zip64 end record at ${at} runs past the end record at ${cdEnd}`);
    const r = src.read(at, 56);
    if (u32(r, 0) !== SIG_EOCD64) fail(source, `no zip64 end record at offset ${at}`);
    const e64 = u64(r, 32, source, 'entry count');
    const s64 = u64(r, 40, source, 'directory size');
    const o64 = u64(r, 48, source, 'directory offset');
    const agree = (v16or32: number, sat: number, v64: number) => v16or32 === sat || v16or32 === v64;
    if (!agree(entries, 0xffff, e64) || !agree(cdSize, 0xffffffff, s64) || !agree(cdOffset, 0xffffffff, o64)) {
      fail(source, 'the zip end record and its zip64 record disagree');
    }
    [entries, cdSize, cdOffset, cdEnd] = [e64, s64, o64, at];
  }
  if (cdOffset + cdSize > cdEnd) {
    fail(source, `truncated or corrupt: the zip directory [${cdOffset}, ${cdOffset + cdSize}) runs past ${cdEnd}`);
  }
  if (entries * 46 > cdSize) fail(source, `zip directory of ${cdSize} bytes cannot hold ${entries} entries`);
  return { entries, cdSize, cdOffset, cdEnd };
}

/** A name that is a plain relative path: no "..", ".", empty or absolute parts, no "\\" or controls. */
function checkName(name: string, source: string): void {
  const bad = name === '' || name.startsWith('/') || /[\\\u0000-\u001f\u007f]/.test(name) ||
    name.split('/').some((s) => s === '..' || s === '.' || s === '');
  if (bad) fail(source, `zip entry ${q(name)} is not a safe relative path`);
}

/** The zip64 extra field (id 1): the 64-bit values of fields saturated at 0xFFFFFFFF. */
function zip64Extra(extra: Uint8Array, want: number[], source: string, name: string): number[] {
  for (let p = 0; p + 4 <= extra.length; p += 4 + u16(extra, p + 2)) {
    if (u16(extra, p) !== 1) continue;
    const len = u16(extra, p + 2);
    const out: number[] = [];
    let at = p + 4;
    for (const v of want) {
      if (v !== 0xffffffff) {
        out.push(v);
        continue;
      }
      if (at + 8 > p + 4 + len || at + 8 > extra.length) break;
      out.push(u64(extra, at, source, 'entry size or offset'));
      at += 8;
    }
    if (out.length === want.length) return out;
  }
  if (want.every((v) => v !== 0xffffffff)) return want;
  return fail(source, `zip entry ${q(name)} lacks the zip64 sizes its header promises`);
}

function parseEntry(cd: Uint8Array, p: number, source: string): { entry: ZipEntry; next: number } {
  if (p + 46 > cd.length || u32(cd, p) !== SIG_CENTRAL) fail(source, `corrupt zip directory at entry offset ${p}`);
  const [flags, method] = [u16(cd, p + 8), u16(cd, p + 10)];
  const [n, m, k] = [u16(cd, p + 28), u16(cd, p + 30), u16(cd, p + 32)];
  const next = p + 46 + n + m + k;
  if (next > cd.length) fail(source, `corrupt zip directory: entry at ${p} runs past its end`);
  let name: string;
  try {
    name = new TextDecoder('utf-8', { fatal: true }).decode(cd.subarray(p + 46, p + 46 + n));
  } catch {
    return fail(source, `zip entry name at directory offset ${p} is not valid UTF-8`);
  }
  checkName(name, source);
  if (flags & 1) fail(source, `zip entry ${q(name)} is encrypted`);
  if (method !== 0) {
    fail(source, `zip entry ${q(name)} is compressed (method ${method}); torch.save writes stored entries, and compressed ones are refused (zip-bomb guard)`);
  }
  const extra = cd.subarray(p + 46 + n, p + 46 + n + m);
  const [usize, csize, localOffset] = zip64Extra(extra, [u32(cd, p + 24), u32(cd, p + 20), u32(cd, p + 42)], source, name);
  if (usize !== csize) fail(source, `zip entry ${q(name)} is stored but claims ${csize} bytes stored and ${usize} unpacked`);
  return { entry: { name, size: usize, crc: u32(cd, p + 16), localOffset }, next };
}

/** The archive's entries by name; names are checked and may not repeat. */
export class ZipArchive {
  readonly entries = new Map<string, ZipEntry>();
  private readonly dataEnd: number;

  constructor(private readonly src: ByteSource, private readonly source: string) {
    const dir = findDirectory(src, source);
    this.dataEnd = dir.cdOffset;
    const cd = src.read(dir.cdOffset, dir.cdSize);
    let p = 0;
    for (let i = 0; i < dir.entries; i++) {
      const { entry, next } = parseEntry(cd, p, source);
      if (this.entries.has(entry.name)) fail(source, `zip entry ${q(entry.name)} appears twice`);
      this.entries.set(entry.name, entry);
      p = next;
    }
  }

  /** Where an entry's bytes start, after its local header (checked against the directory). */
  dataOffset(e: ZipEntry): number {
    const { src, source } = this;
    if (e.localOffset + 30 > this.dataEnd) fail(source, `zip entry ${q(e.name)}: local header at ${e.localOffset} is past the data`);
    const h = src.read(e.localOffset, 30);
    if (u32(h, 0) !== SIG_LOCAL) fail(source, `zip entry ${q(e.name)}: no local header at offset ${e.localOffset}`);
    if (u16(h, 8) !== 0) fail(source, `zip entry ${q(e.name)}: local header says compressed (method ${u16(h, 8)})`);
    const start = e.localOffset + 30 + u16(h, 26) + u16(h, 28);
    if (start + e.size > this.dataEnd) {
      fail(source, `zip entry ${q(e.name)} claims ${e.size} bytes at offset ${start}, past the end of the data (${this.dataEnd} of ${src.size} bytes)`);
    }
    return start;
  }

  /** Bytes [start, start + len) of an entry, not CRC-checked (the range is checked). */
  readRange(e: ZipEntry, start: number, len: number): Uint8Array {
    if (start < 0 || len < 0 || start + len > e.size) {
      fail(this.source, `zip entry ${q(e.name)}: bytes [${start}, ${start + len}) are outside its ${e.size}`);
    }
    return this.src.read(this.dataOffset(e) + start, len);
  }

  /** An entry's bytes, CRC-checked where this Node has zlib.crc32 (20.15 and later). */
  read(e: ZipEntry): Uint8Array {
    const bytes = this.src.read(this.dataOffset(e), e.size);
    const crc32 = (zlib as { crc32?: (b: Uint8Array) => number }).crc32;
    if (typeof crc32 === 'function' && crc32(bytes) >>> 0 !== e.crc) {
      fail(this.source, `zip entry ${q(e.name)} is corrupt (CRC-32 mismatch)`);
    }
    return bytes;
  }
}
