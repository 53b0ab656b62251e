// Partial rotary position embedding, GPT-NeoX convention (rotate_half), with its backward.
// Omits: interleaved (GPT-J) layout.
//
// Dimension legend: B = batch, T = time, H = heads, D = head dim, rd = rotaryDim, half = rd/2.
// Row t of x sits at position pos = off + t, off = p.offset (default 0; the KV-cache decode
// path passes the cache length, spec/decode.md).
//   inv_freq[i] = 1 / base^(2i/rd),  θ(pos, i) = pos·inv_freq[i],  i = 0…half−1
//   for j < half:  y[j]      = x[j]·cos θ_j − x[j+half]·sin θ_j
//                  y[j+half] = x[j+half]·cos θ_j + x[j]·sin θ_j
//   dims rd…D−1 pass through. The map is a rotation, so its backward is the inverse
//   rotation (θ → −θ): rotary(dY, inverse = true).
// NOTE: inv_freq and the angles are computed in float64; GPT-NeoX computes inv_freq in
// float32, which differs by ~1e-7 relative in the angle (invisible at the tolerances).

import type { RotaryParams, RotarySizes } from '../backend.ts';
export type { RotarySizes };


/** cos and sin of θ(off + t, i) for t = 0…T−1, each (T, half). */
export function rotaryTables(T: number, p: RotaryParams, off = 0): { cos: Float64Array; sin: Float64Array } {
  const half = p.rotaryDim / 2;
  const cos = new Float64Array(T * half), sin = new Float64Array(T * half);
  for (let i = 0; i < half; i++) {
    const invFreq = 1 / Math.pow(p.base, (2 * i) / p.rotaryDim);
    for (let t = 0; t < T; t++) {
      cos[t * half + i] = Math.cos((off + t) * invFreq);
      sin[t * half + i] = Math.sin((off + t) * invFreq);
    }
  }
  return { cos, sin };
}

/** y (B, T, H, D) = rotate x (B, T, H, D) by +θ, or by −θ when inverse. */
export function rotaryForward(
  y: Float32Array, x: Float32Array, z: RotarySizes, p: RotaryParams, inverse: boolean,
): void {
  const { B, T, H, D } = z;
  const half = p.rotaryDim / 2;
  const sign = inverse ? -1 : 1;
  const { cos, sin } = rotaryTables(T, p, z.offset);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      for (let h = 0; h < H; h++) {
        const o = ((b * T + t) * H + h) * D;
        for (let j = 0; j < half; j++) {
          const c = cos[t * half + j], s = sign * sin[t * half + j];
          const x1 = x[o + j], x2 = x[o + j + half];
          y[o + j] = x1 * c - x2 * s;
          y[o + j + half] = x2 * c + x1 * s;
        }
        for (let j = p.rotaryDim; j < D; j++) y[o + j] = x[o + j];
      }
    }
  }
}

/** dX (B, T, H, D) from dY: the inverse rotation. */
export function rotaryBackward(dX: Float32Array, dY: Float32Array, z: RotarySizes, p: RotaryParams): void {
  rotaryForward(dX, dY, z, p, true);
}
