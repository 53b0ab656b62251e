// The rotary position offset, checked against the reference's rotation from position 0: rows
// at positions off…off+T−1 rotated with `offset: off` must equal rows off…off+T−1 of the same
// rows rotated inside a sequence that starts at 0 (forward and inverse).

import type { Backend, Handle, RotaryParams } from '../../src/backend.ts';
import type { Rng } from '../../src/rng.ts';
import { checkValues, type ValueTol } from './compare.ts';

const B = 2, H = 2, D = 8;

/** null when `be` agrees with `ref` (bit for bit when tol is null, else within tol), else why not. */
export async function rotaryOffsetMismatch<T extends Handle, R extends Handle>(
  be: Backend<T>, ref: Backend<R>, off: number, T: number, pct: number, rng: Rng, tol: ValueTol | null,
): Promise<string | null> {
  const full = off + T;
  const x = new Float32Array(B * full * H * D);
  rng.fillNormal(x, 1);
  const rows = new Float32Array(B * T * H * D); // (B, T, H, D): positions off… of x
  for (let b = 0; b < B; b++) rows.set(x.subarray((b * full + off) * H * D, (b * full + full) * H * D), b * T * H * D);
  const p: RotaryParams = { rotaryDim: Math.floor(D * pct), base: 10000 };
  for (const inverse of [false, true]) {
    const xr = ref.upload(x, [B, full, H, D]);
    const yr = ref.ops.rotary(xr, p, inverse);
    const all = await ref.read(yr);
    const want = new Float32Array(rows.length);
    for (let b = 0; b < B; b++) want.set(all.subarray((b * full + off) * H * D, (b * full + full) * H * D), b * T * H * D);
    ref.dispose(xr);
    ref.dispose(yr);
    const xb = be.upload(rows, [B, T, H, D]);
    const yb = be.ops.rotary(xb, { ...p, offset: off }, inverse);
    const got = await be.read(yb);
    be.dispose(xb);
    be.dispose(yb);
    const what = `rotary off ${off} T ${T} rd ${p.rotaryDim} inverse ${inverse}`;
    if (tol) {
      const e = checkValues(what, got, want, tol);
      if (e) return e;
    } else {
      const i = got.findIndex((g, j) => !(g === want[j]));
      if (i >= 0) return `${what}: [${i}] is ${got[i]}, want ${want[i]}`;
    }
  }
  return null;
}
