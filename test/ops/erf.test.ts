// erf/erfc and the exact GELU against known values, symmetry and a double-precision FD.
// Omits: timing. Reference values: Python's math.erf/math.erfc (C99 libm), and
// gelu(x) = x·½·erfc(−x/√2) computed from them.

import { describe, expect, it } from 'vitest';
import { fc, test } from '@fast-check/vitest';
import { erf, erfc, erfcExact, erfExact } from '../../src/ops/erf.ts';
import { gelu, geluGrad } from '../../src/ops/gelu.ts';

const rel = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);

describe('erf', () => {
  it('matches known values to near double precision', () => {
    const known: [number, number][] = [
      [0.1, 0.1124629160182849], [0.5, 0.5204998778130465], [1, 0.8427007929497149],
      [2, 0.9953222650189527], [2.5, 0.999593047982555], [3, 0.9999779095030014],
      [4, 0.9999999845827421],
    ];
    for (const [x, want] of known) {
      expect(rel(erf(x), want), `erf(${x})`).toBeLessThan(1e-14);
      expect(rel(erf(-x), -want), `erf(${-x})`).toBeLessThan(1e-14);
    }
    expect(erf(0)).toBe(0);
    expect(erf(Infinity)).toBe(1);
    expect(erf(-Infinity)).toBe(-1);
    expect(erf(NaN)).toBeNaN();
  });

  it('erfc keeps relative accuracy in the tail', () => {
    const known: [number, number][] = [
      [3, 2.2090496998585438e-5], [5, 1.5374597944280351e-12], [10, 2.088487583762545e-45],
      [26, 5.663192408856143e-296],
    ];
    for (const [x, want] of known) expect(rel(erfc(x), want), `erfc(${x})`).toBeLessThan(1e-13);
    expect(erfc(40)).toBe(0);
    expect(erfc(-40)).toBe(2);
  });

  test.prop([fc.double({ min: -8, max: 8, noNaN: true })])('is odd, bounded, and erf + erfc = 1', (x) => {
    expect(erf(-x)).toBe(-erf(x));
    expect(Math.abs(erf(x))).toBeLessThanOrEqual(1);
    expect(Math.abs(erf(x) + erfc(x) - 1)).toBeLessThan(2e-16 * 4);
  });

  test.prop([fc.double({ min: 0, max: 6, noNaN: true }), fc.double({ min: 1e-6, max: 0.5, noNaN: true })])(
    'is increasing (also across the series / continued-fraction switch at 2.5)',
    (x, d) => { expect(erf(x + d)).toBeGreaterThanOrEqual(erf(x)); },
  );

  it('is continuous where the definition and the table switch method (2.5, 6)', () => {
    for (const f of [erf, erfExact]) expect(Math.abs(f(2.5 - 1e-13) - f(2.5))).toBeLessThan(1e-15);
    for (const f of [erfc, erfcExact]) expect(rel(f(2.5 - 1e-13), f(2.5))).toBeLessThan(1e-11);
    expect(rel(erfc(6 - 1e-13), erfc(6))).toBeLessThan(1e-11);
    expect(erf(6 - 1e-13)).toBeLessThanOrEqual(erf(6));
  });

  test.prop([fc.double({ min: -6.5, max: 6.5, noNaN: true })])('the Taylor table agrees with the definition', (x) => {
    if (x !== 0) expect(rel(erf(x), erfExact(x))).toBeLessThan(4e-15);
    expect(rel(erfc(x), erfcExact(x))).toBeLessThan(1e-12);
  });
});

describe('gelu (exact erf form)', () => {
  it('matches known values', () => {
    const known: [number, number][] = [
      [1, 0.8413447460685429], [-1, -0.15865525393145707], [0.5, 0.34573123063700656],
      [3, 2.99595030590511], [-6, -5.919525870226207e-9],
    ];
    for (const [x, want] of known) expect(rel(gelu(x), want), `gelu(${x})`).toBeLessThan(1e-13);
    expect(gelu(0)).toBe(0);
  });

  test.prop([fc.double({ min: -8, max: 8, noNaN: true })])('gelu\' matches a double-precision central difference', (x) => {
    const h = 1e-5;
    const fd = (gelu(x + h) - gelu(x - h)) / (2 * h);
    expect(Math.abs(fd - geluGrad(x))).toBeLessThan(1e-8);
  });
});
