// Data: Brown tag stripping and spacing, the fixed split, deterministic seeded batches.
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  brownToText, decodeBytes, encodeBytes, loadCorpus, sampleBatch, splitDocuments, validationBatches,
} from '../../src/train/data.ts';
import { Rng } from '../../src/rng.ts';

describe('brownToText', () => {
  it('strips tags and fixes spacing around punctuation and quotes', () => {
    const tagged = "\n\n\tThe/at jury/nn said/vbd ``/`` no/at evidence/nn ''/'' ,/, (/( 1/2/cd )/) Jr./np ./.\n\n\n" +
      "\tHe/pps didn't/dod* go/vb ;/. '/' ok/uh '/' ?/.\n";
    expect(brownToText(tagged)).toBe('The jury said "no evidence", (1/2) Jr. He didn\'t go; \'ok\'?');
  });
});

describe('corpus', () => {
  it('loads Brown as plain English with a 5% validation split', () => {
    const c = loadCorpus();
    expect(c.train.length).toBeGreaterThan(5_000_000);
    const ratio = c.val.length / (c.train.length + c.val.length);
    expect(ratio).toBeGreaterThan(0.03);
    expect(ratio).toBeLessThan(0.08);
    const head = decodeBytes(c.train.subarray(0, 200));
    expect(head.startsWith('The Fulton County Grand Jury said Friday')).toBe(true);
    expect(head).not.toMatch(/\/[a-z]/); // no tags left
  });

  it('reads a user file (last 5% of bytes) and a folder', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tf-data-'));
    const text = 'abcdefghij'.repeat(100);
    writeFileSync(join(dir, 'one.txt'), text);
    const f = loadCorpus(join(dir, 'one.txt'));
    expect(f.train.length + f.val.length).toBe(1000);
    expect(f.val.length).toBe(50);
    expect(decodeBytes(f.val)).toBe(text.slice(950));
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'sub', 'two.txt'), 'xyz');
    const d = loadCorpus(dir);
    expect(d.source).toMatch(/2 files/);
    expect(() => loadCorpus(join(dir, 'missing'))).toThrow(/no such file/);
  });

  it('holds out every 20th document when there are at least 20', () => {
    const docs = Array.from({ length: 40 }, (_, i) => `d${i}`);
    const c = splitDocuments(docs, 'x');
    expect(decodeBytes(c.val)).toBe('d19\n\nd39');
  });
});

describe('batches', () => {
  const data = encodeBytes('The quick brown fox jumps over the lazy dog. '.repeat(20));

  it('are windows whose targets are the ids shifted by one', () => {
    const b = sampleBatch(data, 3, 8, new Rng(1));
    for (let r = 0; r < 3; r++) {
      for (let t = 0; t < 7; t++) expect(b.targets[r * 8 + t]).toBe(b.ids[r * 8 + t + 1]);
    }
  });

  it('are deterministic given the rng state (the data cursor)', () => {
    const rng = new Rng(7);
    sampleBatch(data, 2, 8, rng);
    const state = rng.getState();
    const a = sampleBatch(data, 2, 8, rng);
    const b = sampleBatch(data, 2, 8, Rng.fromState(state));
    expect(Array.from(b.ids)).toEqual(Array.from(a.ids));
    const c = sampleBatch(data, 2, 8, new Rng(8));
    expect(Array.from(c.ids)).not.toEqual(Array.from(a.ids));
  });

  it('validation batches are fixed and span the split', () => {
    const v1 = validationBatches(data, 2, 8, 3);
    const v2 = validationBatches(data, 2, 8, 3);
    expect(v1.map((b) => Array.from(b.ids))).toEqual(v2.map((b) => Array.from(b.ids)));
    const last = v1[2];
    expect(last.targets[2 * 8 - 1]).toBe(data[data.length - 1]);
    expect(() => validationBatches(data.subarray(0, 5), 1, 8, 1)).toThrow(/fewer than/);
  });
});
