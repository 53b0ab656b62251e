// A restricted pickle interpreter for torch's data.pkl: it only builds data (None, bools,
// ints, floats, strings, tuples, lists, dicts) and hands globals, calls (REDUCE), persistent
// ids and BUILD to hooks that allow an explicit list (src/torch-bin/torch-globals.ts). No
// opcode can run code, and every allocation is bounded by the pickle's own length.
// Omits: every opcode a state dict written by torch.save (protocols 2-5) does not use: the
// text-mode protocol 0 opcodes, INST/OBJ/NEWOBJ/NEWOBJ_EX, EXT*, sets, bytes, out-of-band
// buffers, POP/DUP; each is refused by name.
//
// Why not the `pickleparser` package: it lets a caller resolve globals and persistent ids, but
// it cannot refuse opcodes (it implements all of them, so refusing would take a second
// opcode walker), REDUCE calls whatever value is on the stack, BUILD Object.assign()s into
// any object, LONG1 reads negative numbers as unsigned, and its errors are free-form.

import { fail } from '../safetensors-dtypes.ts';

export class PTuple {
  constructor(readonly items: PValue[]) {}
}
export class PList {
  constructor(readonly items: PValue[]) {}
}
export type DictKey = string | number | boolean | null;
export class PDict {
  readonly map = new Map<DictKey, PValue>();
  constructor(readonly ordered = false) {}
}
/** A global the hooks allowed, by its dotted name; it is never a JS function. */
export class PGlobal {
  constructor(readonly name: string) {}
}
/** Anything the hooks return (storages, tensors): opaque to the interpreter. */
export interface PObject {
  readonly kind: string;
}
export type PValue = null | boolean | number | bigint | string | PTuple | PList | PDict | PGlobal | PObject;

export interface PickleHooks {
  /** Returns the global's value or throws; `at` is the opcode's byte offset. */
  global(module: string, name: string, at: number): PValue;
  reduce(fn: PValue, args: PValue, at: number): PValue;
  persistent(pid: PValue, at: number): PValue;
  build(obj: PValue, state: PValue, at: number): void;
}

/** Names of every pickle opcode, so a refused one is named in the message. */
const NAMES: Record<number, string> = {
  0x28: 'MARK', 0x2e: 'STOP', 0x30: 'POP', 0x31: 'POP_MARK', 0x32: 'DUP', 0x46: 'FLOAT', 0x49: 'INT',
  0x4a: 'BININT', 0x4b: 'BININT1', 0x4c: 'LONG', 0x4d: 'BININT2', 0x4e: 'NONE', 0x50: 'PERSID',
  0x51: 'BINPERSID', 0x52: 'REDUCE', 0x53: 'STRING', 0x54: 'BINSTRING', 0x55: 'SHORT_BINSTRING',
  0x56: 'UNICODE', 0x58: 'BINUNICODE', 0x61: 'APPEND', 0x62: 'BUILD', 0x63: 'GLOBAL', 0x64: 'DICT',
  0x7d: 'EMPTY_DICT', 0x65: 'APPENDS', 0x67: 'GET', 0x68: 'BINGET', 0x69: 'INST', 0x6a: 'LONG_BINGET',
  0x6c: 'LIST', 0x5d: 'EMPTY_LIST', 0x6f: 'OBJ', 0x70: 'PUT', 0x71: 'BINPUT', 0x72: 'LONG_BINPUT',
  0x73: 'SETITEM', 0x74: 'TUPLE', 0x29: 'EMPTY_TUPLE', 0x75: 'SETITEMS', 0x47: 'BINFLOAT', 0x80: 'PROTO',
  0x81: 'NEWOBJ', 0x82: 'EXT1', 0x83: 'EXT2', 0x84: 'EXT4', 0x85: 'TUPLE1', 0x86: 'TUPLE2', 0x87: 'TUPLE3',
  0x88: 'NEWTRUE', 0x89: 'NEWFALSE', 0x8a: 'LONG1', 0x8b: 'LONG4', 0x42: 'BINBYTES', 0x43: 'SHORT_BINBYTES',
  0x8c: 'SHORT_BINUNICODE', 0x8d: 'BINUNICODE8', 0x8e: 'BINBYTES8', 0x8f: 'EMPTY_SET', 0x90: 'ADDITEMS',
  0x91: 'FROZENSET', 0x92: 'NEWOBJ_EX', 0x93: 'STACK_GLOBAL', 0x94: 'MEMOIZE', 0x95: 'FRAME',
  0x96: 'BYTEARRAY8', 0x97: 'NEXT_BUFFER', 0x98: 'READONLY_BUFFER',
};

/** A short description of a value for messages (never its contents). */
export function describe(v: PValue): string {
  if (v === null) return 'None';
  if (typeof v === 'boolean') return 'a bool';
  if (typeof v === 'number') return Number.isInteger(v) ? 'an int' : 'a float';
  if (typeof v === 'bigint') return 'an int';
  if (typeof v === 'string') return 'a string';
  if (v instanceof PTuple) return 'a tuple';
  if (v instanceof PList) return 'a list';
  if (v instanceof PDict) return v.ordered ? 'an OrderedDict' : 'a dict';
  if (v instanceof PGlobal) return `the global ${v.name}`;
  return `a ${v.kind}`;
}

const MARK = Symbol('mark');
type Slot = PValue | typeof MARK;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Little-endian two's-complement integer of `b` (LONG1); a number when it is safe. */
function long(b: Uint8Array): number | bigint {
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
  if (b.length > 0 && b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

class Machine {
  pos = 0;
  stack: Slot[] = [];
  memo = new Map<number, PValue>();

  constructor(readonly b: Uint8Array, readonly hooks: PickleHooks, readonly source: string) {}

  err(at: number, problem: string): never {
    return fail(this.source, `data.pkl byte ${at}: ${problem}`);
  }
  take(n: number, at: number): Uint8Array {
    if (n > this.b.length - this.pos) this.err(at, 'truncated pickle (an argument runs past the end)');
    const out = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  u32(at: number): number {
    const t = this.take(4, at);
    return (t[0] | (t[1] << 8) | (t[2] << 16) | (t[3] << 24)) >>> 0;
  }
  str(n: number, at: number): string {
    try {
      return utf8.decode(this.take(n, at));
    } catch {
      return this.err(at, 'string is not valid UTF-8');
    }
  }
  line(at: number): string {
    const end = this.b.indexOf(0x0a, this.pos);
    if (end < 0 || end - this.pos > 256) this.err(at, 'GLOBAL name is not a short line');
    const s = this.str(end - this.pos, at);
    this.pos += 1;
    return s;
  }
  pop(at: number): PValue {
    const v = this.stack.pop();
    if (v === undefined || v === MARK) this.err(at, 'stack underflow (malformed pickle)');
    return v;
  }
  top(at: number): PValue {
    const v = this.stack[this.stack.length - 1];
    if (v === undefined || v === MARK) this.err(at, 'stack underflow (malformed pickle)');
    return v;
  }
  /** Everything above the topmost MARK, which is removed. */
  popMark(at: number): PValue[] {
    const i = this.stack.lastIndexOf(MARK);
    if (i < 0) this.err(at, 'no MARK to close (malformed pickle)');
    const items = this.stack.slice(i + 1) as PValue[];
    this.stack.length = i;
    return items;
  }
  put(key: number, at: number): void {
    this.memo.set(key, this.top(at));
  }
  get(key: number, at: number): void {
    const v = this.memo.get(key);
    if (v === undefined) this.err(at, `memo slot ${key} is empty`);
    this.stack.push(v);
  }
  setItems(dict: PValue, items: PValue[], at: number): void {
    if (!(dict instanceof PDict)) this.err(at, `SETITEM(S) on ${describe(dict)}`);
    if (items.length % 2 !== 0) this.err(at, 'SETITEMS with an odd number of items');
    for (let i = 0; i < items.length; i += 2) {
      const k = items[i];
      if (k !== null && typeof k !== 'string' && typeof k !== 'number' && typeof k !== 'boolean') {
        this.err(at, `dict key is ${describe(k)} (only strings and numbers are allowed)`);
      }
      dict.map.set(k, items[i + 1]);
    }
  }
  append(list: PValue, items: PValue[], at: number): void {
    if (!(list instanceof PList)) this.err(at, `APPEND(S) on ${describe(list)}`);
    for (const v of items) list.items.push(v);
  }
}

/** One opcode that pushes or reshapes data; false when `op` is none of those. */
function dataOp(m: Machine, op: number, at: number): boolean {
  const s = m.stack;
  switch (op) {
    case 0x28: s.push(MARK); return true; // MARK
    case 0x4e: s.push(null); return true; // NONE
    case 0x88: s.push(true); return true; // NEWTRUE
    case 0x89: s.push(false); return true; // NEWFALSE
    case 0x4a: s.push(m.u32(at) | 0); return true; // BININT
    case 0x4b: s.push(m.take(1, at)[0]); return true; // BININT1
    case 0x4d: { const t = m.take(2, at); s.push(t[0] | (t[1] << 8)); return true; } // BININT2
    case 0x8a: s.push(long(m.take(m.take(1, at)[0], at))); return true; // LONG1
    case 0x47: { const t = m.take(8, at); s.push(new DataView(t.buffer, t.byteOffset, 8).getFloat64(0, false)); return true; }
    case 0x58: s.push(m.str(m.u32(at), at)); return true; // BINUNICODE
    case 0x8c: s.push(m.str(m.take(1, at)[0], at)); return true; // SHORT_BINUNICODE
    case 0x29: s.push(new PTuple([])); return true; // EMPTY_TUPLE
    case 0x74: s.push(new PTuple(m.popMark(at))); return true; // TUPLE
    case 0x85: s.push(new PTuple([m.pop(at)])); return true; // TUPLE1
    case 0x86: { const b = m.pop(at); s.push(new PTuple([m.pop(at), b])); return true; } // TUPLE2
    case 0x87: { const c = m.pop(at); const b = m.pop(at); s.push(new PTuple([m.pop(at), b, c])); return true; }
    case 0x5d: s.push(new PList([])); return true; // EMPTY_LIST
    case 0x61: { const v = m.pop(at); m.append(m.top(at), [v], at); return true; } // APPEND
    case 0x65: { const items = m.popMark(at); m.append(m.top(at), items, at); return true; } // APPENDS
    case 0x7d: s.push(new PDict()); return true; // EMPTY_DICT
    case 0x73: { const v = m.pop(at); const k = m.pop(at); m.setItems(m.top(at), [k, v], at); return true; }
    case 0x75: { const items = m.popMark(at); m.setItems(m.top(at), items, at); return true; } // SETITEMS
    case 0x71: m.put(m.take(1, at)[0], at); return true; // BINPUT
    case 0x72: m.put(m.u32(at), at); return true; // LONG_BINPUT
    case 0x94: m.put(m.memo.size, at); return true; // MEMOIZE
    case 0x68: m.get(m.take(1, at)[0], at); return true; // BINGET
    case 0x6a: m.get(m.u32(at), at); return true; // LONG_BINGET
    default: return false;
  }
}

/** The opcodes that reach the hooks (globals, calls, persistent ids, BUILD). */
function hookOp(m: Machine, op: number, at: number): boolean {
  const { hooks, stack } = m;
  switch (op) {
    case 0x63: { const mod = m.line(at); stack.push(hooks.global(mod, m.line(at), at)); return true; } // GLOBAL
    case 0x93: { // STACK_GLOBAL
      const name = m.pop(at);
      const mod = m.pop(at);
      if (typeof mod !== 'string' || typeof name !== 'string') m.err(at, 'STACK_GLOBAL needs two strings');
      stack.push(hooks.global(mod, name, at));
      return true;
    }
    case 0x52: { const args = m.pop(at); stack.push(hooks.reduce(m.pop(at), args, at)); return true; } // REDUCE
    case 0x51: stack.push(hooks.persistent(m.pop(at), at)); return true; // BINPERSID
    case 0x62: { const state = m.pop(at); hooks.build(m.top(at), state, at); return true; } // BUILD
    default: return false;
  }
}

/** Runs data.pkl; the result is the value STOP returns. Trailing bytes are refused. */
export function unpickle(bytes: Uint8Array, hooks: PickleHooks, source: string): PValue {
  const m = new Machine(bytes, hooks, source);
  while (m.pos < bytes.length) {
    const at = m.pos;
    const op = bytes[m.pos++];
    if (dataOp(m, op, at) || hookOp(m, op, at)) continue;
    if (op === 0x80) { // PROTO
      const v = m.take(1, at)[0];
      if (v < 2 || v > 5) m.err(at, `pickle protocol ${v} (torch.save writes 2; 2 to 5 are read)`);
    } else if (op === 0x95) { // FRAME: a length hint only
      m.take(8, at);
    } else if (op === 0x2e) { // STOP
      const v = m.pop(at);
      if (m.stack.length !== 0) m.err(at, 'STOP with more than one value on the stack');
      if (m.pos !== bytes.length) m.err(at, `${bytes.length - m.pos} bytes after STOP`);
      return v;
    } else {
      const name = NAMES[op];
      m.err(at, name ? `opcode ${name} (0x${op.toString(16)}) is not allowed in a state dict`
        : `unknown opcode 0x${op.toString(16)}`);
    }
  }
  return fail(source, 'data.pkl ends without STOP (truncated pickle)');
}
