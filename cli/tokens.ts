// Token-id JSON, (B, T): an array of B equal-length arrays of T integer ids in [0, vocab),
// parsed straight from the file's bytes into an Int32Array. No recursion (a file nested
// 200,000 deep is one error line, not a stack overflow) and no JS array per row, so memory is
// about 4 bytes a token. Accepts exactly what JSON.parse + the (B, T) checks accept (1.0 and
// 1e2 are the integers 1 and 100), plus a leading UTF-8 BOM.
// Omits: tokenizing raw text (the train command's --data does that).

import { UserError } from '../src/errors.ts';

export interface TokenBatch {
  data: Int32Array; // (B, T) row-major
  B: number;
  T: number;
}

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);
const NUMBER = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/;

class Parser {
  pos = 0;
  constructor(readonly bytes: Uint8Array, readonly source: string) {
    if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) this.pos = 3;
  }

  fail(problem: string): never {
    throw new UserError(`${this.source}: ${problem}`);
  }

  ws(): number {
    const b = this.bytes;
    while (this.pos < b.length && WS.has(b[this.pos])) this.pos++;
    return this.pos < b.length ? b[this.pos] : -1;
  }

  notJson(): never {
    const why = this.pos >= this.bytes.length ? 'the file ends early' : `unexpected character at byte ${this.pos}`;
    return this.fail(`not valid JSON (${why})`);
  }

  /** What the value at pos is, for messages (literals are checked, else it is not JSON). */
  what(): string {
    const c = this.ws();
    if (c === 0x22) return 'a string';
    if (c === 0x5b) return 'an array';
    if (c === 0x7b) return 'an object';
    for (const lit of ['true', 'false', 'null']) {
      if (Buffer.from(this.bytes.buffer, this.bytes.byteOffset + this.pos, Math.min(lit.length, this.bytes.length - this.pos)).toString('latin1') === lit) {
        return lit;
      }
    }
    return this.notJson();
  }

  /** A JSON number at pos, or null when the value there is not a number. */
  number(): { text: string; value: number } | null {
    const c = this.ws();
    if (c !== 0x2d && !(c >= 0x30 && c <= 0x39)) return null;
    const end = Math.min(this.bytes.length, this.pos + 400);
    const head = Buffer.from(this.bytes.buffer, this.bytes.byteOffset + this.pos, end - this.pos).toString('latin1');
    const m = NUMBER.exec(head);
    if (!m) return this.notJson();
    if (m[0].length === head.length && end < this.bytes.length) this.fail(`a number at byte ${this.pos} is over 400 characters long`);
    this.pos += m[0].length;
    return { text: m[0], value: Number(m[0]) };
  }

  /** After an element: `,` (true: more follow) or `]` (false: the array ends). */
  next(): boolean {
    const c = this.ws();
    this.pos++;
    if (c === 0x2c) return true;
    if (c === 0x5d) return false;
    this.pos--;
    return this.notJson();
  }
}

/** Growable Int32Array. */
class Ids {
  data = new Int32Array(1024);
  n = 0;
  push(v: number): void {
    if (this.n === this.data.length) {
      const d = new Int32Array(this.data.length * 2);
      d.set(this.data);
      this.data = d;
    }
    this.data[this.n++] = v;
  }
}

function parseRow(p: Parser, ids: Ids, b: number, T: number, vocab: number): number {
  if (p.ws() !== 0x5b) p.fail(`row ${b} is ${p.what()}, not an array of token ids`);
  p.pos++;
  if (p.ws() === 0x5d) p.fail(b === 0 ? 'row 0 must be a non-empty array of token ids' : `row ${b} has 0 ids, row 0 has ${T} (rows must be equal length)`);
  let t = 0;
  do {
    const num = p.number();
    if (num === null) p.fail(`[${b}][${t}] is ${p.what()}, not an integer token id`);
    const shown = num.text.length > 40 ? `${num.text.slice(0, 40)}…` : num.text;
    if (!Number.isInteger(num.value)) p.fail(`[${b}][${t}] = ${shown} is not an integer token id`);
    if (num.value < 0 || num.value >= vocab) p.fail(`[${b}][${t}] = ${shown} is outside the vocabulary [0, ${vocab})`);
    if (b > 0 && t >= T) p.fail(`row ${b} has more than ${T} ids, row 0 has ${T} (rows must be equal length)`);
    ids.push(num.value);
    t++;
  } while (p.next());
  if (b > 0 && t !== T) p.fail(`row ${b} has ${t} ids, row 0 has ${T} (rows must be equal length)`);
  return t;
}

/** Parses token-id JSON bytes; `source` (already quoted) names the file in messages. */
export function parseTokenJson(bytes: Uint8Array, source: string, vocab: number): TokenBatch {
  const p = new Parser(bytes, source);
  if (p.ws() !== 0x5b) p.fail(`expected a non-empty JSON array of arrays of token ids, found ${p.what()}`);
  p.pos++;
  if (p.ws() === 0x5d) p.fail('expected a non-empty JSON array of arrays of token ids, found []');
  const ids = new Ids();
  let B = 0;
  let T = 0;
  do {
    const t = parseRow(p, ids, B, T, vocab);
    if (B === 0) T = t;
    B++;
  } while (p.next());
  if (p.ws() !== -1) p.fail(`not valid JSON (unexpected data after the array at byte ${p.pos})`);
  return { data: ids.data.slice(0, ids.n), B, T };
}
