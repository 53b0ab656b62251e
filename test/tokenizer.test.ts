// The tokenizer wrapper (src/tokenizer.ts) on GPT-NeoX-20B's tokenizer.json: ids against
// golden/tokenizer/cases.json (an independent byte-level BPE in Python, golden/gen_tokenizer.py,
// since Debian has no python3-tokenizers), two ids read straight from the file's vocabulary,
// decode(encode(s)) = NFC(s) on random Unicode text with whitespace runs, tabs and newlines,
// the size and EOS id, and one-line errors for files that are not a usable tokenizer.json.

import { mkdtempSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { UserError } from '../src/errors.ts';
import { parseTokenizer, readTokenizer, type TextTokenizer } from '../src/tokenizer.ts';

const ROOT = join(import.meta.dirname, '..');
const NEOX_TOKENIZER = join(ROOT, 'test/fixtures/tokenizer/gpt-neox-20b-tokenizer.json');

interface Case { text: string; ids: number[]; decoded: string }
const golden = JSON.parse(readFileSync(join(ROOT, 'golden/tokenizer/cases.json'), 'utf8')) as { cases: Case[] };
const raw = JSON.parse(readFileSync(NEOX_TOKENIZER, 'utf8')) as {
  model: { vocab: Record<string, number> };
  added_tokens: { id: number; content: string; special: boolean }[];
};

let tk: TextTokenizer;
beforeAll(() => { tk = readTokenizer(NEOX_TOKENIZER); });

describe('GPT-NeoX-20B tokenizer', () => {
  it('encodes every golden case to the independent Python BPE’s ids and decodes them back', () => {
    expect(golden.cases.length).toBeGreaterThanOrEqual(20);
    for (const c of golden.cases) {
      expect(tk.encode(c.text), JSON.stringify(c.text)).toEqual(c.ids);
      expect(tk.decode(c.ids), JSON.stringify(c.text)).toBe(c.decoded);
    }
  });

  it('"Hello" → 12092 and " world" → 1533, as the file’s own vocabulary lists them', () => {
    expect(raw.model.vocab.Hello).toBe(12092);
    expect(raw.model.vocab['Ġworld']).toBe(1533); // Ġ is the byte-level stand-in for a space
    expect(tk.encode('Hello world')).toEqual([raw.model.vocab.Hello, raw.model.vocab['Ġworld']]);
  });

  it('has 50277 ids (50254 BPE entries, then 23 added space runs) and EOS <|endoftext|> = 0', () => {
    const eos = raw.added_tokens.find((a) => a.content === '<|endoftext|>')!;
    const maxAdded = Math.max(...raw.added_tokens.map((a) => a.id));
    expect(tk.size).toBe(Math.max(maxAdded, ...Object.values(raw.model.vocab)) + 1);
    expect(tk.size).toBe(50277);
    expect(tk.eosId).toBe(eos.id);
    expect(eos.special).toBe(true);
  });

  it('decode(encode(s)) = NFC(s) for Unicode text with accents, CJK, emoji, space runs, tabs, newlines', () => {
    const pieces = fc.constantFrom(
      'a', 'Z', 'the', ' ', '  ', '     ', '\t', '\t\t', '\n', '\n\n', '\r\n', '\u00a0', 'é', 'e\u0301', 'Å', 'ñ',
      '日本', '語', '中文', '한국', '🤖', '👍🏽', '👨‍👩‍👧', '🇯🇵', '.', '!?', "'s", '0', '123', '#', '—', '\u200b',
    );
    const texts = fc.oneof(
      fc.array(pieces, { maxLength: 30 }).map((a) => a.join('')),
      fc.string({ unit: 'grapheme', maxLength: 40 }),
    );
    fc.assert(fc.property(texts, (s) => {
      expect(tk.decode(tk.encode(s))).toBe(s.normalize('NFC'));
    }), { numRuns: 300 });
  });

  it('a character split across tokens decodes to U+FFFD until its last byte arrives', () => {
    const ids = tk.encode('🤖');
    expect(ids.length).toBeGreaterThan(1);
    expect(tk.decode(ids.slice(0, 1))).toBe('\uFFFD');
    expect(tk.decode(ids)).toBe('🤖');
  });

  it('refuses an id out of range when decoding', () => {
    expect(() => tk.decode([tk.size])).toThrow(/out of range \[0, 50277\)/);
  });
});

describe('files that are not a usable tokenizer.json', () => {
  const src = '"t.json"';
  it.each([
    ['not JSON', '{"model": ', /not JSON/],
    ['a JSON list', '[1, 2]', /top level is not a JSON object/],
    ['no model', '{"added_tokens": []}', /no "model" object/],
    ['a model without a type', '{"model": {"vocab": {}}}', /no "type"/],
    ['an unknown model type', '{"model": {"type": "WordLevel", "vocab": {"a": 0}}}', /unknown model type "WordLevel"/],
    ['a model without a vocab', '{"model": {"type": "BPE"}}', /no "vocab"/],
    ['added_tokens not a list', '{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "added_tokens": 3}', /not a list/],
    ['an unknown normalizer', '{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "normalizer": {"type": "Nope"}}', /Unknown Normalizer type/],
  ])('%s: one-line UserError naming the file', (_n, text, re) => {
    let err: unknown;
    try {
      parseTokenizer(text, src);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(re);
    expect((err as Error).message).toMatch(/^"t\.json" is not a usable tokenizer\.json: /);
    expect((err as Error).message).not.toMatch(/\n/);
  });

  it('a folder or a missing path: a UserError from the bounded reader', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tok-'));
    mkdirSync(join(dir, 'sub'));
    expect(() => readTokenizer(join(dir, 'sub'))).toThrow(/not a regular file/);
    expect(() => readTokenizer(join(dir, 'missing.json'))).toThrow(/cannot read tokenizer/);
    writeFileSync(join(dir, 'empty.json'), '');
    expect(() => readTokenizer(join(dir, 'empty.json'))).toThrow(UserError);
  });

  it('a minimal BPE tokenizer.json built here loads, encodes and decodes', () => {
    const doc = {
      model: { type: 'BPE', vocab: { a: 0, b: 1, ab: 2 }, merges: ['a b'] },
      added_tokens: [{ id: 3, content: '<|endoftext|>', special: true, single_word: false, lstrip: false, rstrip: false, normalized: false }],
    };
    const t = parseTokenizer(JSON.stringify(doc), src);
    expect(t.size).toBe(4);
    expect(t.eosId).toBe(3);
    expect(t.encode('abab')).toEqual([2, 2]);
    expect(t.encode('ba<|endoftext|>')).toEqual([1, 0, 3]);
  });
});
