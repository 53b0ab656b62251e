// Tests for src/rng.ts: reference outputs, determinism, state save/restore, statistics.

import { describe, expect, it } from 'vitest';
import { fc, test } from '@fast-check/vitest';
import { Rng } from '../src/rng.ts';
import { UserError } from '../src/errors.ts';

describe('Rng', () => {
  it('xoshiro128** core matches the reference C for a hand-set state', () => {
    // Reference: state {1, 2, 3, 4} → first outputs of xoshiro128starstar.c
    // (values from an independent Python transcription of the reference C).
    const r = Rng.fromState([1, 1, 2, 3, 4, 0, 0]);
    expect([r.nextU32(), r.nextU32(), r.nextU32(), r.nextU32()]).toEqual([
      11520, 0, 5927040, 70819200,
    ]);
  });

  test.prop([fc.integer({ min: -(2 ** 40), max: 2 ** 40 })])('same seed, same stream', (seed) => {
    const a = new Rng(seed);
    const b = new Rng(seed);
    for (let i = 0; i < 20; i++) expect(a.nextU32()).toBe(b.nextU32());
    expect(a.normal()).toBe(b.normal());
    expect(a.uniform()).toBe(b.uniform());
  });

  it('different seeds give different states, including seeds that differ only above bit 31', () => {
    const seeds = [0, 1, 2, 2 ** 32, 2 ** 32 + 1, -1, 2 ** 52];
    const firsts = seeds.map((s) => new Rng(s).getState().slice(1, 5).join());
    expect(new Set(firsts).size).toBe(seeds.length);
  });

  test.prop([
    fc.integer({ min: 0, max: 2 ** 31 }),
    fc.array(fc.constantFrom('u32', 'uniform', 'normal', 'int', 'shuffle'), { maxLength: 30 }),
  ])('state restored mid-stream continues identically (spare included)', (seed, ops) => {
    const a = new Rng(seed);
    for (const op of ops) {
      if (op === 'u32') a.nextU32();
      else if (op === 'uniform') a.uniform();
      else if (op === 'normal') a.normal();
      else if (op === 'int') a.int(1000);
      else a.shuffle([1, 2, 3, 4, 5]);
    }
    const saved = JSON.parse(JSON.stringify(a.getState())) as number[];
    const b = Rng.fromState(saved);
    const fa = new Float32Array(7);
    const fb = new Float32Array(7);
    a.fillNormal(fa, 0.02);
    b.fillNormal(fb, 0.02);
    expect(Array.from(fb)).toEqual(Array.from(fa));
    for (let i = 0; i < 5; i++) {
      expect(b.normal()).toBe(a.normal());
      expect(b.uniform()).toBe(a.uniform());
      expect(b.int(7)).toBe(a.int(7));
    }
  });

  it('an odd number of normal() calls leaves a spare that the state carries', () => {
    const a = new Rng(5);
    a.normal();
    const st = a.getState();
    expect(st[5]).toBe(1);
    const expected = a.normal();
    expect(Rng.fromState(st).normal()).toBe(expected);
  });

  it('uniform() lies in [0, 1) with mean ≈ 1/2', () => {
    const r = new Rng(123);
    const n = 100_000;
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const u = r.uniform();
      expect(u >= 0 && u < 1).toBe(true);
      sum += u;
    }
    // sd of the mean = sqrt(1/12 / n) ≈ 0.00091; 5 sd bound.
    expect(Math.abs(sum / n - 0.5)).toBeLessThan(0.0046);
  });

  it('normal() has mean ≈ 0, variance ≈ 1, and sane tails', () => {
    const r = new Rng(2024);
    const n = 200_000;
    let s1 = 0;
    let s2 = 0;
    let beyond2 = 0;
    for (let i = 0; i < n; i++) {
      const z = r.normal();
      s1 += z;
      s2 += z * z;
      if (Math.abs(z) > 2) beyond2++;
    }
    const mean = s1 / n;
    const variance = s2 / n - mean * mean;
    // sd(mean) = 1/sqrt(n) ≈ 0.0022; sd(var) ≈ sqrt(2/n) ≈ 0.0032; 5 sd bounds.
    expect(Math.abs(mean)).toBeLessThan(0.012);
    expect(Math.abs(variance - 1)).toBeLessThan(0.016);
    // P(|z| > 2) = 0.0455; sd ≈ 0.00047.
    expect(Math.abs(beyond2 / n - 0.0455)).toBeLessThan(0.0025);
  });

  it('fillNormal scales by std', () => {
    const r = new Rng(9);
    const out = new Float32Array(50_000);
    r.fillNormal(out, 0.02);
    let s2 = 0;
    for (const x of out) s2 += x * x;
    expect(Math.abs(Math.sqrt(s2 / out.length) - 0.02)).toBeLessThan(0.0005);
  });

  test.prop([fc.integer({ min: 1, max: 2 ** 53 }), fc.integer()])('int(n) lies in [0, n)', (n, seed) => {
    const r = new Rng(seed);
    for (let i = 0; i < 20; i++) {
      const x = r.int(n);
      expect(Number.isInteger(x) && x >= 0 && x < n).toBe(true);
    }
  });

  it('int(n) is unbiased: chi-square over 6 buckets and over a non-power-of-two large n', () => {
    const r = new Rng(77);
    const counts = new Array(6).fill(0);
    const n = 60_000;
    for (let i = 0; i < n; i++) counts[r.int(6)]++;
    const chi = counts.reduce((acc, c) => acc + (c - n / 6) ** 2 / (n / 6), 0);
    expect(chi).toBeLessThan(25); // df 5; p ≈ 1e-4
    // n = 3·2^31: a modulo reduction of 32 bits would favour the lowest 2^31 values (1/2 vs 1/3).
    const big = 3 * 2 ** 31;
    let low = 0;
    for (let i = 0; i < 30_000; i++) if (r.int(big) < 2 ** 31) low++;
    expect(Math.abs(low / 30_000 - 1 / 3)).toBeLessThan(0.015);
  });

  it('shuffle is a permutation and is seeded', () => {
    const a = Array.from({ length: 50 }, (_, i) => i);
    const b = a.slice();
    new Rng(3).shuffle(a);
    new Rng(3).shuffle(b);
    expect(a).toEqual(b);
    expect(a.slice().sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(a).not.toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it('rejects bad seeds, bad n and bad states with UserError', () => {
    expect(() => new Rng(1.5)).toThrow(UserError);
    expect(() => new Rng(Number.NaN)).toThrow(UserError);
    expect(() => new Rng(0).int(0)).toThrow(UserError);
    expect(() => new Rng(0).int(2.5)).toThrow(UserError);
    expect(() => Rng.fromState([1, 2, 3])).toThrow(UserError);
    expect(() => Rng.fromState([1, 0, 0, 0, 0, 0, 0])).toThrow(/all zero/);
    expect(() => Rng.fromState([1, -1, 0, 0, 1, 0, 0])).toThrow(UserError);
    expect(() => Rng.fromState([1, 1, 0, 0, 0, 2, 0])).toThrow(UserError);
    expect(() => Rng.fromState([1, 1, 0, 0, 0, 1, Number.NaN])).toThrow(UserError);
  });
});
