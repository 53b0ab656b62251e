// Elementwise sum of two equal-length float32 buffers (the residual connection).
// Omits: broadcasting. Its backward is the identity: dA = dB = dOut.

/** out = a + b, elementwise. out, a, b: (len) */
export function addForward(out: Float32Array, a: Float32Array, b: Float32Array): void {
  for (let i = 0; i < out.length; i++) out[i] = a[i] + b[i];
}

/** dA = dB = dOut (copies). */
export function addBackward(dA: Float32Array, dB: Float32Array, dOut: Float32Array): void {
  dA.set(dOut);
  dB.set(dOut);
}
