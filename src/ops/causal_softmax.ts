// Causal softmax over the last dim of (…, T, T) scores, with its backward.
// Omits: padding masks, dropout, a key length different from the query length.
//
// Dimension legend: G = groups (B·H), T = time. Row i may attend to columns j ≤ i.
//   P[i, j] = exp(scale·s_ij − m_i) / Σ_{j'≤i} exp(scale·s_ij' − m_i)  for j ≤ i, else 0,
//   with m_i = max_{j≤i} scale·s_ij (stability).
// Backward (w.r.t. the unscaled s): dS[i, j] = scale·P_ij·(dP_ij − Σ_{j'≤i} P_ij'·dP_ij').
// Masked entries get dS = 0 (they never influenced P).

/** p (G, T, T) = causal softmax of scale·s (G, T, T). */
export function causalSoftmaxForward(
  p: Float32Array, s: Float32Array, G: number, T: number, scale: number,
): void {
  const e = new Float64Array(T); // (T) exp of one row
  for (let g = 0; g < G; g++) {
    for (let i = 0; i < T; i++) {
      const o = (g * T + i) * T;
      let m = -Infinity;
      for (let j = 0; j <= i; j++) m = Math.max(m, scale * s[o + j]);
      let z = 0;
      for (let j = 0; j <= i; j++) z += e[j] = Math.exp(scale * s[o + j] - m);
      for (let j = 0; j <= i; j++) p[o + j] = e[j] / z;
      for (let j = i + 1; j < T; j++) p[o + j] = 0;
    }
  }
}

/** dS (G, T, T) from the forward output p and dP (G, T, T). */
export function causalSoftmaxBackward(
  dS: Float32Array, dP: Float32Array, p: Float32Array, G: number, T: number, scale: number,
): void {
  for (let g = 0; g < G; g++) {
    for (let i = 0; i < T; i++) {
      const o = (g * T + i) * T;
      let dot = 0; // Σ_j P·dP
      for (let j = 0; j <= i; j++) dot += p[o + j] * dP[o + j];
      for (let j = 0; j <= i; j++) dS[o + j] = scale * p[o + j] * (dP[o + j] - dot);
      for (let j = i + 1; j < T; j++) dS[o + j] = 0;
    }
  }
}
