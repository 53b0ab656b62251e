// Tolerance checks shared by every parity test; they report the worst element on failure.

export interface ValueTol { rtol: number; atol: number }
export interface GradTol { rel: number; maxRel: number }

function fmt(name: string, i: number, got: number, want: number, bound: number): string {
  return `${name}: worst at [${i}]: got ${got}, want ${want}, |diff| ${Math.abs(got - want)} > ${bound}`;
}

/** |x − ref| ≤ atol + rtol·|ref| everywhere; returns an error message or null. */
export function checkValues(name: string, got: ArrayLike<number>, want: ArrayLike<number>, t: ValueTol): string | null {
  if (got.length !== want.length) return `${name}: length ${got.length} ≠ ${want.length}`;
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < want.length; i++) {
    const bound = t.atol + t.rtol * Math.abs(want[i]);
    const d = Math.abs(got[i] - want[i]);
    const excess = Number.isNaN(d) ? Infinity : d - bound;
    if (excess > worstExcess || (Number.isNaN(d) && worst < 0)) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst < 0) return null;
  return fmt(name, worst, got[worst], want[worst], t.atol + t.rtol * Math.abs(want[worst]));
}

/** |g − ref| ≤ rel·|ref| + maxRel·max|ref| everywhere; returns an error message or null. */
export function checkGrads(name: string, got: ArrayLike<number>, want: ArrayLike<number>, t: GradTol): string | null {
  if (got.length !== want.length) return `${name}: length ${got.length} ≠ ${want.length}`;
  let maxRef = 0;
  for (let i = 0; i < want.length; i++) maxRef = Math.max(maxRef, Math.abs(want[i]));
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < want.length; i++) {
    const bound = t.rel * Math.abs(want[i]) + t.maxRel * maxRef;
    const d = Math.abs(got[i] - want[i]);
    const excess = Number.isNaN(d) ? Infinity : d - bound;
    if (excess > worstExcess) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst < 0) return null;
  return fmt(name, worst, got[worst], want[worst], t.rel * Math.abs(want[worst]) + t.maxRel * maxRef);
}
