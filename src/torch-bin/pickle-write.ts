// A pickle writer for torch.save's data.pkl: protocol 2, emitting the same opcodes, in the same
// order and with the same memo numbering, as CPython's pickle.Pickler(protocol=2) does for the
// values a checkpoint holds (so a state dict pickles byte for byte as torch 1.13 pickles it;
// golden/verify_torch_outputs.py checks that). Values: None, bools, ints, floats, strings,
// tuples, lists, dicts, globals, calls (REDUCE) and persistent ids.
// Omits: protocols other than 2, framing, bytes, sets, object state (BUILD), and memo hits on
// anything but strings and globals (a value that recurs is written again, not referenced).
//
// NOTE: CPython memoizes by object identity. Strings here are memoized by value, which gives the
// same bytes for torch's state dicts: its repeated strings ('storage', 'cpu') are one object each.

import { UserError } from '../errors.ts';

/** A float (a JS number is written as an int when it is an integer, else as a float). */
export class PyFloat {
  constructor(readonly value: number) {}
}
export class PyTuple {
  constructor(readonly items: readonly PyValue[]) {}
}
export class PyList {
  constructor(readonly items: readonly PyValue[]) {}
}
/** A plain dict, or with `ordered` a collections.OrderedDict (GLOBAL + REDUCE, as pickled). */
export class PyDict {
  constructor(readonly entries: ReadonlyArray<readonly [PyValue, PyValue]>, readonly ordered = false) {}
}
/** A module-level name (GLOBAL "module\nname\n"), e.g. torch.FloatStorage. */
export class PyGlobal {
  constructor(readonly module: string, readonly name: string) {}
}
/** fn(*args), as REDUCE does; the result is memoized like CPython memoizes the reduced object. */
export class PyCall {
  constructor(readonly fn: PyGlobal, readonly args: PyTuple) {}
}
/** A persistent id (BINPERSID); the id itself is written with save_persistent_id off. */
export class PyPersistent {
  constructor(readonly pid: PyValue) {}
}
export type PyValue =
  | null | boolean | number | bigint | string
  | PyFloat | PyTuple | PyList | PyDict | PyGlobal | PyCall | PyPersistent;

/** pickle's _BATCHSIZE: SETITEMS/APPENDS carry at most this many items each. */
const BATCH = 1000;
const OD = new PyGlobal('collections', 'OrderedDict');

class Out {
  private chunks: Uint8Array[] = [];
  private cur = new Uint8Array(1 << 16);
  private pos = 0;
  byte(b: number): void {
    if (this.pos === this.cur.length) this.flush();
    this.cur[this.pos++] = b;
  }
  bytes(b: Uint8Array): void {
    if (b.length > this.cur.length - this.pos) this.flush();
    if (b.length > this.cur.length) this.chunks.push(b.slice());
    else {
      this.cur.set(b, this.pos);
      this.pos += b.length;
    }
  }
  u32(v: number): void {
    for (let i = 0; i < 4; i++) this.byte((v >>> (8 * i)) & 0xff);
  }
  private flush(): void {
    this.chunks.push(this.cur.slice(0, this.pos));
    this.pos = 0;
  }
  done(): Uint8Array {
    this.flush();
    const n = this.chunks.reduce((a, c) => a + c.length, 0);
    const all = new Uint8Array(n);
    let p = 0;
    for (const c of this.chunks) {
      all.set(c, p);
      p += c.length;
    }
    return all;
  }
}

const utf8 = new TextEncoder();

/** Two's-complement little-endian bytes of `v`, shortest form (pickle.encode_long). */
function encodeLong(v: bigint): Uint8Array {
  if (v === 0n) return new Uint8Array(0);
  const out: number[] = [];
  let x = v;
  for (;;) {
    out.push(Number(x & 0xffn));
    x >>= 8n;
    const top = out[out.length - 1];
    if ((x === 0n && (top & 0x80) === 0) || (x === -1n && (top & 0x80) !== 0)) break;
  }
  return Uint8Array.from(out);
}

class Pickler {
  readonly out = new Out();
  private next = 0; // the next memo slot
  private strings = new Map<string, number>();
  private globals = new Map<string, number>();

  /** Memoizes the value just written (BINPUT); returns its slot. */
  private put(): number {
    const n = this.next++;
    if (n < 256) {
      this.out.byte(0x71); // BINPUT
      this.out.byte(n);
    } else {
      this.out.byte(0x72); // LONG_BINPUT
      this.out.u32(n);
    }
    return n;
  }
  private get(n: number): void {
    if (n < 256) {
      this.out.byte(0x68); // BINGET
      this.out.byte(n);
    } else {
      this.out.byte(0x6a); // LONG_BINGET
      this.out.u32(n);
    }
  }

  int(v: number | bigint): void {
    const o = this.out;
    if (typeof v === 'number' && v >= 0 && v < 256) {
      o.byte(0x4b); o.byte(v); // BININT1
    } else if (typeof v === 'number' && v >= 0 && v < 65536) {
      o.byte(0x4d); o.byte(v & 0xff); o.byte(v >>> 8); // BININT2
    } else if (typeof v === 'number' && v >= -(2 ** 31) && v < 2 ** 31) {
      o.byte(0x4a); o.u32(v >>> 0); // BININT
    } else {
      const b = encodeLong(BigInt(v));
      if (b.length > 255) throw new UserError('pickle: integer too large');
      o.byte(0x8a); o.byte(b.length); o.bytes(b); // LONG1
    }
  }

  str(s: string): void {
    const seen = this.strings.get(s);
    if (seen !== undefined) return this.get(seen);
    const b = utf8.encode(s);
    this.out.byte(0x58); // BINUNICODE
    this.out.u32(b.length);
    this.out.bytes(b);
    this.strings.set(s, this.put());
  }

  global(g: PyGlobal): void {
    const key = `${g.module}\n${g.name}`;
    const seen = this.globals.get(key);
    if (seen !== undefined) return this.get(seen);
    this.out.byte(0x63); // GLOBAL
    this.out.bytes(utf8.encode(`${key}\n`));
    this.globals.set(key, this.put());
  }

  tuple(items: readonly PyValue[]): void {
    if (items.length === 0) return this.out.byte(0x29); // EMPTY_TUPLE, never memoized
    if (items.length > 3) this.out.byte(0x28); // MARK
    for (const v of items) this.save(v);
    this.out.byte(items.length > 3 ? 0x74 : 0x84 + items.length); // TUPLE or TUPLE1-3
    this.put(); // a fresh tuple: memoized, as CPython does, and never looked up again
  }

  batches(items: readonly PyValue[], pairs: boolean): void {
    const step = pairs ? 2 : 1;
    for (let i = 0; i < items.length; i += BATCH * step) {
      const batch = items.slice(i, i + BATCH * step);
      if (batch.length === step) {
        for (const v of batch) this.save(v);
        this.out.byte(pairs ? 0x73 : 0x61); // SETITEM / APPEND
        continue;
      }
      this.out.byte(0x28); // MARK
      for (const v of batch) this.save(v);
      this.out.byte(pairs ? 0x75 : 0x65); // SETITEMS / APPENDS
    }
  }

  dict(d: PyDict): void {
    if (d.ordered) {
      this.global(OD);
      this.out.byte(0x29); // EMPTY_TUPLE
      this.out.byte(0x52); // REDUCE
    } else {
      this.out.byte(0x7d); // EMPTY_DICT
    }
    this.put();
    this.batches(d.entries.flat(), true);
  }

  save(v: PyValue): void {
    const o = this.out;
    if (v === null) return o.byte(0x4e); // NONE
    if (typeof v === 'boolean') return o.byte(v ? 0x88 : 0x89); // NEWTRUE / NEWFALSE
    if (typeof v === 'bigint') return this.int(v);
    if (typeof v === 'number') {
      if (!Number.isSafeInteger(v)) throw new UserError(`pickle: ${v} is not a safe integer (use PyFloat for floats)`);
      return this.int(v);
    }
    if (typeof v === 'string') return this.str(v);
    if (v instanceof PyFloat) {
      o.byte(0x47); // BINFLOAT, big-endian float64
      const b = new Uint8Array(8);
      new DataView(b.buffer).setFloat64(0, v.value, false);
      return o.bytes(b);
    }
    if (v instanceof PyTuple) return this.tuple(v.items);
    if (v instanceof PyList) {
      o.byte(0x5d); // EMPTY_LIST
      this.put();
      return this.batches(v.items, false);
    }
    if (v instanceof PyDict) return this.dict(v);
    if (v instanceof PyGlobal) return this.global(v);
    if (v instanceof PyCall) {
      this.global(v.fn);
      this.tuple(v.args.items);
      o.byte(0x52); // REDUCE
      this.put();
      return;
    }
    this.save(v.pid);
    o.byte(0x51); // BINPERSID (its result is not memoized)
  }
}

/** The protocol-2 pickle of `v`: PROTO 2, the value, STOP. */
export function pickle(v: PyValue): Uint8Array {
  const p = new Pickler();
  p.out.byte(0x80); // PROTO
  p.out.byte(2);
  p.save(v);
  p.out.byte(0x2e); // STOP
  return p.out.done();
}
