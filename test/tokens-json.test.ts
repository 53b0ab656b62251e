// The token-id JSON reader (cli/tokens.ts) accepts exactly what JSON.parse plus the (B, T)
// checks accept, with the same ids, on random inputs: valid batches, ragged ones, other JSON,
// and truncations of all of those; and it never recurses (nesting 10⁶ deep is one error).

import { fc, test } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { UserError } from '../src/errors.ts';
import { parseTokenJson } from '../cli/tokens.ts';

const VOCAB = 10;

/** The definition: JSON.parse, then a non-empty array of equal-length non-empty integer rows in range. */
function reference(text: string): { data: number[]; B: number; T: number } | null {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  if (!Array.isArray(v) || v.length === 0 || !Array.isArray(v[0]) || v[0].length === 0) return null;
  const T = v[0].length;
  const data: number[] = [];
  for (const row of v) {
    if (!Array.isArray(row) || row.length !== T) return null;
    for (const id of row) {
      if (!Number.isInteger(id) || id < 0 || id >= VOCAB) return null;
      data.push(id);
    }
  }
  return { data, B: v.length, T };
}

function ours(text: string): { data: number[]; B: number; T: number } | null {
  try {
    const r = parseTokenJson(Buffer.from(text, 'utf8'), '"t.json"', VOCAB);
    return { data: Array.from(r.data), B: r.B, T: r.T };
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    expect(e.message).toMatch(/^"t\.json": [^\n]+$/);
    return null;
  }
}

const ws = fc.constantFrom('', ' ', '\n', '\t', '\r\n  ');
const id = fc.oneof(fc.integer({ min: -2, max: VOCAB + 1 }), fc.constantFrom(1.5, 2.0, 1e0, -0, 1e400));
const idText = fc.oneof(id.map((x) => (Object.is(x, 1e400) ? '1e400' : String(x))), fc.constantFrom('3.0', '2e0', '0.5e1', '"1"', 'null', 'true', '[]', '{}'));
const row = fc.array(fc.tuple(ws, idText), { maxLength: 5 }).map((xs) => `[${xs.map(([w, x]) => `${w}${x}`).join(',')}]`);
const batch = fc.tuple(fc.array(fc.tuple(ws, row), { maxLength: 4 }), ws).map(([rs, w]) => `${w}[${rs.map(([a, r]) => `${a}${r}`).join(',')}]${w}`);
const anyText = fc.oneof(batch, batch, fc.json({ maxDepth: 3 }));
const cut = fc.tuple(anyText, fc.nat()).map(([t, n]) => t.slice(0, n % (t.length + 1)));

describe('parseTokenJson', () => {
  test.prop([fc.oneof(anyText, cut)], { numRuns: 2000 })('agrees with JSON.parse + the (B, T) checks', (text) => {
    expect(ours(text)).toEqual(reference(text));
  });

  test('equal-length rows of valid ids, whitespace and 1.0/1e0 spellings', () => {
    expect(ours(' [ [1, 2.0 ,3e0],\n[0,9,\t4] ] ')).toEqual({ data: [1, 2, 3, 0, 9, 4], B: 2, T: 3 });
  });

  test('nesting a million deep is one error, not a stack overflow', () => {
    const deep = '['.repeat(1_000_000) + ']'.repeat(1_000_000);
    expect(() => parseTokenJson(Buffer.from(deep), '"d"', VOCAB)).toThrow(/^"d": \[0\]\[0\] is an array, not an integer token id$/);
  });

  test('messages name the position and the problem', () => {
    const msg = (t: string) => {
      try {
        parseTokenJson(Buffer.from(t), '"f"', VOCAB);
      } catch (e) {
        return (e as Error).message;
      }
      return 'accepted';
    };
    expect(msg('[[1,2],[3]]')).toBe('"f": row 1 has 1 ids, row 0 has 2 (rows must be equal length)');
    expect(msg('[[1,2],[3,4,5]]')).toBe('"f": row 1 has more than 2 ids, row 0 has 2 (rows must be equal length)');
    expect(msg('[[1, 10]]')).toBe('"f": [0][1] = 10 is outside the vocabulary [0, 10)');
    expect(msg('[[1, 2.5]]')).toBe('"f": [0][1] = 2.5 is not an integer token id');
    expect(msg('[[1, "a"]]')).toBe('"f": [0][1] is a string, not an integer token id');
    expect(msg('[[1, 2] x')).toBe('"f": not valid JSON (unexpected character at byte 8)');
    expect(msg('[]')).toBe('"f": expected a non-empty JSON array of arrays of token ids, found []');
    expect(msg('[[1]] [')).toBe('"f": not valid JSON (unexpected data after the array at byte 6)');
  });
});
