// Backend.memory's count, checked the same way on every backend that keeps one: uploads and
// op outputs add their bytes, reshape views add none, the last dispose subtracts, and a fused
// Pattention's saved state counts from its forward until its backward frees it.

import { expect } from 'vitest';
import type { Backend, Handle } from '../../src/backend.ts';
import { pattention } from '../../src/compose.ts';

export function expectMemoryCounts<T extends Handle>(be: Backend<T>): void {
  const m = be.memory?.();
  expect(m, `${be.name} counts its memory`).toBeDefined();
  if (!m) return;
  const start = m.liveBytes;
  const x = be.upload(new Float32Array(6).fill(0.5), [3, 2]); // 24 bytes
  expect(m.liveBytes - start).toBe(24);
  const view = be.reshape(x, [6]);
  expect(m.liveBytes - start).toBe(24); // a view shares the storage
  be.dispose(x);
  expect(m.liveBytes - start).toBe(24); // the view still holds it
  be.dispose(view);
  expect(m.liveBytes - start).toBe(0);

  m.resetPeak();
  const [N, dIn, n, dOut] = [3, 2, 5, 4];
  const xs = be.upload(new Float32Array(N * dIn).fill(0.25), [N, dIn]);
  const k = be.upload(new Float32Array(n * dIn).fill(0.5), [n, dIn]);
  const v = be.upload(new Float32Array(n * dOut).fill(1), [n, dOut]);
  const inputs = m.liveBytes - start;
  const f = pattention(be, xs, k, v, { variant: 'l2_norm_gelu', normN: n });
  // out (N·dOut floats) plus the saved state: at least the scores S (N·n floats)
  expect(m.liveBytes - start - inputs).toBeGreaterThanOrEqual(4 * (N * dOut + N * n));
  const dOutT = be.upload(new Float32Array(N * dOut).fill(1), [N, dOut]);
  const g = f.saved.backward(dOutT);
  // after the backward: out, dOut and the three gradients; the saved state is gone
  const grads = 4 * (N * dIn + n * dIn + n * dOut);
  expect(m.liveBytes - start - inputs).toBe(4 * 2 * N * dOut + grads);
  expect(m.peakBytes - start).toBeGreaterThanOrEqual(inputs + 4 * (N * dOut + N * n)); // the forward's peak
  for (const t of [xs, k, v, f.out, dOutT, g.dX, g.dK, g.dV]) be.dispose(t);
  expect(m.liveBytes - start).toBe(0);
}
