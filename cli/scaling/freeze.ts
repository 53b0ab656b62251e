// Holding the pre-growth rows of grown parameters fixed (the `frozen` growth variant): a row
// mask on their gradients before the optimizer, and the old rows written back after it.
// Written against the backend contract only: with no elementwise multiply in it, a mask is a
// product with a diagonal 0/1 matrix, which is exact (each row is 1·x plus exact zeros).
// Omits: freezing arbitrary index sets (only a prefix of rows: the tokens that existed).

import type { Backend, Handle } from '../../src/backend.ts';

interface FrozenParam<T> {
  /** (n, n) diag(0 … 0, 1 … 1): keeps the rows appended at growth. */
  keepNew: T;
  /** (n, d): the old rows' values, zeros in the new rows. */
  oldRows: T;
}

/**
 * For each grown parameter, name → rows that existed before growth (a prefix). Parameters
 * not listed are trained normally; the caller leaves fully frozen ones out of the optimizer.
 */
export class RowFreeze<T extends Handle> {
  private readonly frozen = new Map<string, FrozenParam<T>>();

  private constructor(private readonly be: Backend<T>) {}

  /** host: the grown parameters' values at growth; oldRows: name → frozen prefix length. */
  static create<T extends Handle>(
    be: Backend<T>, host: ReadonlyMap<string, Float32Array>, shapes: ReadonlyMap<string, readonly number[]>,
    oldRows: ReadonlyMap<string, number>,
  ): RowFreeze<T> {
    const f = new RowFreeze(be);
    for (const [name, nOld] of oldRows) {
      const [n, d] = shapes.get(name)!;
      const data = host.get(name)!;
      const mask = new Float32Array(n * n); // (n, n)
      for (let i = nOld; i < n; i++) mask[i * n + i] = 1;
      const old = new Float32Array(n * d); // (n, d)
      old.set(data.subarray(0, nOld * d));
      f.frozen.set(name, { keepNew: be.upload(mask, [n, n]), oldRows: be.upload(old, [n, d]) });
    }
    return f;
  }

  get names(): string[] {
    return [...this.frozen.keys()];
  }

  /** Replaces each listed gradient by its new rows only (old rows exactly 0). */
  maskGrads(grads: Map<string, T>): void {
    for (const [name, f] of this.frozen) {
      const g = grads.get(name)!;
      grads.set(name, this.be.ops.matmul(f.keepNew, g, false, false));
      this.be.dispose(g);
    }
  }

  /** Writes the frozen rows back (the optimizer's weight decay moved them). */
  restore(params: Map<string, T>): void {
    for (const [name, f] of this.frozen) {
      const p = params.get(name)!;
      const kept = this.be.ops.matmul(f.keepNew, p, false, false);
      params.set(name, this.be.ops.add(kept, f.oldRows));
      this.be.dispose(kept);
      this.be.dispose(p);
    }
  }

  dispose(): void {
    for (const f of this.frozen.values()) {
      this.be.dispose(f.keepNew);
      this.be.dispose(f.oldRows);
    }
    this.frozen.clear();
  }
}
