// The zip container torch.save writes, written as a stream: stored (uncompressed) entries whose
// data starts on a 64-byte boundary (torch pads each local header with an extra field "FB"
// of filler, so a reader may map records in place), the CRC-32 and sizes in the local header,
// a central directory, and zip64 records where an offset or a size needs more than 32 bits
// (checkpoints over 4 GiB). Read back by src/torch-bin/zip.ts, torch.load and Python's zipfile.
// Omits: compression, data descriptors (torch's writer sets flag bit 3; all three readers take
// the sizes from the central directory either way), timestamps (all zero, as torch writes),
// comments, and seeking (headers are written before their data, so the CRC is computed first).

import * as zlib from 'node:zlib';

/** Where the archive's bytes go, in order (a StagedWriter, or a buffer in tests). */
export interface ByteSink {
  write(bytes: Uint8Array): void;
}

/** torch's kFieldAlignment: record data starts at a multiple of this offset. */
export const RECORD_ALIGNMENT = 64;
const MAX32 = 0xffffffff;

let crcTable: Uint32Array | null = null;

/** CRC-32 (zip's), continuing from `prev`; zlib's where Node has it, else a table. */
export function crc32(bytes: Uint8Array, prev = 0): number {
  const native = (zlib as { crc32?: (b: Uint8Array, v?: number) => number }).crc32;
  if (typeof native === 'function') return native(bytes, prev) >>> 0;
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = ~prev >>> 0;
  for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

class Bytes {
  readonly b: Uint8Array;
  private readonly dv: DataView;
  private p = 0;
  constructor(n: number) {
    this.b = new Uint8Array(n);
    this.dv = new DataView(this.b.buffer);
  }
  u16(v: number): this {
    this.dv.setUint16(this.p, v, true);
    this.p += 2;
    return this;
  }
  u32(v: number): this {
    this.dv.setUint32(this.p, v >>> 0, true);
    this.p += 4;
    return this;
  }
  u64(v: number): this {
    this.dv.setUint32(this.p, v % 2 ** 32, true);
    this.dv.setUint32(this.p + 4, Math.floor(v / 2 ** 32), true);
    this.p += 8;
    return this;
  }
  raw(x: Uint8Array): this {
    this.b.set(x, this.p);
    this.p += x.length;
    return this;
  }
}

interface Written {
  name: Uint8Array;
  crc: number;
  size: number;
  offset: number;
}

export interface ZipOptions {
  /** Write zip64 fields for every entry and the end record (tests the >4 GiB path on small files). */
  forceZip64?: boolean;
}

/** A stored-only zip archive written front to back into `sink`; call `finish()` at the end. */
export class ZipWriter {
  private pos = 0;
  private readonly done: Written[] = [];

  constructor(private readonly sink: ByteSink, private readonly opts: ZipOptions = {}) {}

  private emit(b: Uint8Array): void {
    if (b.length === 0) return;
    this.sink.write(b);
    this.pos += b.length;
  }

  /** One record: `parts` concatenated (a tensor may come as one buffer or several). */
  add(name: string, parts: readonly Uint8Array[]): void {
    const nameBytes = new TextEncoder().encode(name);
    let crc = 0;
    let size = 0;
    for (const p of parts) {
      crc = crc32(p, crc);
      size += p.length;
    }
    const offset = this.pos;
    const z64 = this.opts.forceZip64 === true || size >= MAX32 || offset >= MAX32;
    const z64Len = z64 ? 4 + 16 : 0; // local zip64 extra: id, length, both sizes
    const before = offset + 30 + nameBytes.length + z64Len + 4; // data start with an empty FB field
    const pad = (RECORD_ALIGNMENT - (before % RECORD_ALIGNMENT)) % RECORD_ALIGNMENT;
    const h = new Bytes(30 + nameBytes.length + z64Len + 4 + pad);
    h.u32(0x04034b50).u16(z64 ? 45 : 20).u16(0).u16(0).u16(0).u16(0).u32(crc);
    h.u32(z64 ? MAX32 : size).u32(z64 ? MAX32 : size).u16(nameBytes.length).u16(z64Len + 4 + pad).raw(nameBytes);
    if (z64) h.u16(1).u16(16).u64(size).u64(size);
    h.u16(0x4246).u16(pad).raw(new Uint8Array(pad).fill(0x5a)); // "FB", then pad × "Z"
    this.emit(h.b);
    for (const p of parts) this.emit(p);
    this.done.push({ name: nameBytes, crc, size, offset });
  }

  private central(e: Written): Uint8Array {
    const force = this.opts.forceZip64 === true;
    const big = [force || e.size >= MAX32, force || e.size >= MAX32, force || e.offset >= MAX32];
    const extra = big.filter(Boolean).length * 8;
    const h = new Bytes(46 + e.name.length + (extra ? 4 + extra : 0));
    const z64 = extra > 0;
    h.u32(0x02014b50).u16(z64 ? 45 : 20).u16(z64 ? 45 : 20).u16(0).u16(0).u16(0).u16(0).u32(e.crc);
    h.u32(big[1] ? MAX32 : e.size).u32(big[0] ? MAX32 : e.size).u16(e.name.length).u16(z64 ? 4 + extra : 0);
    h.u16(0).u16(0).u16(0).u32(0).u32(big[2] ? MAX32 : e.offset).raw(e.name);
    if (z64) {
      h.u16(1).u16(extra);
      if (big[0]) h.u64(e.size); // uncompressed, compressed, offset: the order zip64 fixes
      if (big[1]) h.u64(e.size);
      if (big[2]) h.u64(e.offset);
    }
    return h.b;
  }

  /** The central directory and end record(s). The archive is complete after this. */
  finish(): void {
    const cdOffset = this.pos;
    for (const e of this.done) this.emit(this.central(e));
    const cdSize = this.pos - cdOffset;
    const n = this.done.length;
    const z64 = this.opts.forceZip64 === true || n >= 0xffff || cdSize >= MAX32 || cdOffset >= MAX32;
    if (z64) {
      const at = this.pos;
      const r = new Bytes(56 + 20);
      r.u32(0x06064b50).u64(44).u16(45).u16(45).u32(0).u32(0).u64(n).u64(n).u64(cdSize).u64(cdOffset);
      r.u32(0x07064b50).u32(0).u64(at).u32(1);
      this.emit(r.b);
    }
    const end = new Bytes(22);
    end.u32(0x06054b50).u16(0).u16(0).u16(z64 ? 0xffff : n).u16(z64 ? 0xffff : n);
    end.u32(z64 ? MAX32 : cdSize).u32(z64 ? MAX32 : cdOffset).u16(0);
    this.emit(end.b);
  }
}
