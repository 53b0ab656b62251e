// LayerNorm over the last dim, biased variance: LN₀ (no weight/bias) and affine LN.
// Omits: normalizing over more than one dim; RMSNorm.
//
// Dimension legend: R = rows (B·T), C = channels.
//   mean = Σx/C,  var = Σ(x − mean)²/C  (two-pass, float64),  rstd = 1/√(var + eps)
//   x̂ = (x − mean)·rstd,  y = x̂ [· w + b]
// Backward: dx̂ = dY [· w];  dX = rstd·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂));
//           dW = Σ_rows dY·x̂,  dB = Σ_rows dY.
// NOTE: mean and rstd are stored as float32 (the backend contract), so the backward's x̂
// is recomputed from rounded statistics: a relative error of ~1e-7, far inside tolerance.

export interface LayerNormCache {
  mean: Float32Array; // (R)
  rstd: Float32Array; // (R)
}

/** y (R, C) = LN(x (R, C)) [· w (C) + b (C)]. w, b null = LN₀. */
export function layerNormForward(
  y: Float32Array, x: Float32Array, w: Float32Array | null, b: Float32Array | null,
  rows: number, C: number, eps: number,
): LayerNormCache {
  const mean = new Float32Array(rows), rstd = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    const o = r * C;
    let m = 0;
    for (let c = 0; c < C; c++) m += x[o + c];
    m /= C;
    let v = 0;
    for (let c = 0; c < C; c++) v += (x[o + c] - m) * (x[o + c] - m);
    const rs = 1 / Math.sqrt(v / C + eps);
    for (let c = 0; c < C; c++) {
      const xh = (x[o + c] - m) * rs;
      y[o + c] = w ? xh * w[c] + (b ? b[c] : 0) : b ? xh + b[c] : xh;
    }
    mean[r] = m;
    rstd[r] = rs;
  }
  return { mean, rstd };
}

/** dX (R, C), and dW, dB (C) when w is given, from dY (R, C). */
export function layerNormBackward(
  dX: Float32Array, dW: Float32Array | null, dB: Float32Array | null,
  dY: Float32Array, x: Float32Array, cache: LayerNormCache, w: Float32Array | null,
  rows: number, C: number,
): void {
  const accW = new Float64Array(C), accB = new Float64Array(C); // (C)
  for (let r = 0; r < rows; r++) {
    const o = r * C, m = cache.mean[r], rs = cache.rstd[r];
    let sumD = 0, sumDX = 0; // Σ dx̂, Σ dx̂·x̂
    for (let c = 0; c < C; c++) {
      const xh = (x[o + c] - m) * rs;
      const dxh = w ? dY[o + c] * w[c] : dY[o + c];
      sumD += dxh;
      sumDX += dxh * xh;
      accW[c] += dY[o + c] * xh;
      accB[c] += dY[o + c];
    }
    sumD /= C;
    sumDX /= C;
    for (let c = 0; c < C; c++) {
      const xh = (x[o + c] - m) * rs;
      const dxh = w ? dY[o + c] * w[c] : dY[o + c];
      dX[o + c] = rs * (dxh - sumD - xh * sumDX);
    }
  }
  if (dW) for (let c = 0; c < C; c++) dW[c] = accW[c];
  if (dB) for (let c = 0; c < C; c++) dB[c] = accB[c];
}
