// Seeded, deterministic randomness whose whole state can be saved and restored (for training
// checkpoints): xoshiro128** seeded through splitmix32, plus uniform, normal, int, shuffle.
// Omits: cryptographic quality, jump()/long-jump() streams, and any global/default generator.
//
// Algorithms (written from the published descriptions):
// - xoshiro128** 1.1: D. Blackman and S. Vigna, "Scrambled Linear Pseudorandom Number
//   Generators", ACM TOMS 47(4), 2021; reference C at https://prng.di.unimi.it/xoshiro128starstar.c
// - splitmix32 for seeding: the 32-bit analogue of SplitMix64 (G. Steele, D. Lea, C. Flood,
//   "Fast Splittable Pseudorandom Number Generators", OOPSLA 2014): a Weyl sequence with the
//   golden-ratio increment 0x9e3779b9, finalized by the MurmurHash3 fmix32 mixer.
// - normal(): the Box–Muller transform (G. Box and M. Muller, 1958), both outputs used.

import { UserError } from './errors.ts';

const TWO_PI = 2 * Math.PI;
const TWO_POW_32 = 4294967296;
/** Saved-state layout version; bump if the layout below changes. */
const STATE_VERSION = 1;

/** One splitmix32 step on a Weyl counter; returns [next counter, output]. */
function splitmix32(counter: number): [number, number] {
  const c = (counter + 0x9e3779b9) >>> 0;
  let z = c;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  z = (z ^ (z >>> 16)) >>> 0;
  return [c, z];
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

export class Rng {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;
  /** Box–Muller produces pairs; the second one waits here (part of the saved state). */
  private spare: number | null = null;

  /** seed: any safe integer (negative allowed); both 32-bit halves feed the seeding. */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) {
      throw new UserError(`rng seed must be a safe integer, got ${seed}`);
    }
    const lo = seed >>> 0; // two's-complement low word (also for negatives)
    const hi = Math.floor(seed / TWO_POW_32) >>> 0;
    // Two splitmix32 streams: the low word makes s0, s1 and the high word s2, s3. splitmix32's
    // output is a bijection of its counter, so distinct safe-integer seeds give distinct states.
    const [cA, w0] = splitmix32(lo);
    const [, w1] = splitmix32(cA);
    const [cB, w2] = splitmix32((hi ^ 0x6a09e667) >>> 0);
    const [, w3] = splitmix32(cB);
    const words = [w0, w1, w2, w3];
    [this.s0, this.s1, this.s2, this.s3] = words;
    // NOTE: xoshiro's all-zero state is a fixed point; splitmix output makes it
    // astronomically unlikely, but guard anyway.
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** The next raw 32-bit output, an unsigned integer in [0, 2^32). */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits (two 32-bit outputs: 27 high + 26 low). */
  uniform(): number {
    const a = this.nextU32() >>> 5; // 27 bits
    const b = this.nextU32() >>> 6; // 26 bits
    return (a * 67108864 + b) / 9007199254740992; // (a·2^26 + b) / 2^53
  }

  /** Standard normal N(0, 1) by Box–Muller; every second call returns the cached spare. */
  normal(): number {
    if (this.spare !== null) {
      const z = this.spare;
      this.spare = null;
      return z;
    }
    const u1 = 1 - this.uniform(); // (0, 1]: log never sees 0
    const u2 = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    const theta = TWO_PI * u2;
    this.spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  /** Uniform integer in [0, n), 1 ≤ n ≤ 2^53, by rejection (no modulo bias). */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 9007199254740992) {
      throw new UserError(`rng.int: n must be an integer in [1, 2^53], got ${n}`);
    }
    if (n <= TWO_POW_32) {
      // Accept x < limit, the largest multiple of n that fits in 32 bits.
      const limit = TWO_POW_32 - (TWO_POW_32 % n);
      for (;;) {
        const x = this.nextU32();
        if (x < limit) return x % n;
      }
    }
    const span = 9007199254740992; // 2^53
    const limit = span - (span % n);
    for (;;) {
      const x = (this.nextU32() >>> 11) * TWO_POW_32 + this.nextU32(); // 21 + 32 = 53 bits
      if (x < limit) return x % n;
    }
  }

  /** In-place Fisher–Yates shuffle. */
  shuffle<T>(a: T[]): void {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
  }

  /** out[i] = std · N(0, 1), drawn in index order (consumes the cached spare first). */
  fillNormal(out: Float32Array, std: number): void {
    for (let i = 0; i < out.length; i++) out[i] = std * this.normal();
  }

  /**
   * The full state as plain JSON-safe numbers:
   * [version, s0, s1, s2, s3, hasSpare (0|1), spare (0 when absent)].
   */
  getState(): number[] {
    const has = this.spare !== null;
    return [
      STATE_VERSION, this.s0 >>> 0, this.s1 >>> 0, this.s2 >>> 0, this.s3 >>> 0,
      has ? 1 : 0, has ? (this.spare as number) : 0,
    ];
  }

  /** Rebuilds a generator from `getState()`; the continuation is identical. */
  static fromState(s: number[]): Rng {
    if (!Array.isArray(s) || s.length !== 7 || s[0] !== STATE_VERSION) {
      throw new UserError(`rng state must be [${STATE_VERSION}, s0, s1, s2, s3, hasSpare, spare]`);
    }
    const words = s.slice(1, 5);
    for (const w of words) {
      if (!Number.isInteger(w) || w < 0 || w >= TWO_POW_32) {
        throw new UserError(`rng state word ${w} is not a 32-bit unsigned integer`);
      }
    }
    if ((words[0] | words[1] | words[2] | words[3]) === 0) {
      throw new UserError('rng state is all zero (invalid for xoshiro128**)');
    }
    if ((s[5] !== 0 && s[5] !== 1) || typeof s[6] !== 'number' || !Number.isFinite(s[6])) {
      throw new UserError('rng state spare flag must be 0 or 1 and the spare a finite number');
    }
    const r = new Rng(0);
    [r.s0, r.s1, r.s2, r.s3] = words.map((w) => w | 0);
    r.spare = s[5] === 1 ? s[6] : null;
    return r;
  }
}
