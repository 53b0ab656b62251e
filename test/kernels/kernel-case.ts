// What a kernel case is and how one is judged: host inputs drawn once from a seed of the case's
// own (so adding a case changes no other case's data), a run written once against the backend
// contract (generic over the handle type: no casts, and no handle of one backend can reach
// another's kernels), and the comparison of every output with the CPU reference's, at a
// manifest tolerance class. Omits: golden fixtures (test/parity) and bad input (contract.ts).

import type { Backend, Handle, Shape } from '../../src/backend.ts';
import { Rng } from '../../src/rng.ts';
import { checkGrads, checkValues } from '../helpers/compare.ts';
import type { Tolerance } from '../helpers/golden.ts';

/** A host tensor: f32 data, or i32 ids. */
export interface HostTensor {
  data: Float32Array | Int32Array;
  shape: Shape;
}
export type Tensors<T> = Record<string, T>;
/** A case's outputs: `values` at the class's value tolerance, `grads` at its gradient one. */
export interface Outputs<T> {
  values?: Tensors<T>;
  grads?: Tensors<T>;
}

export interface KernelCase {
  name: string;
  inputs: Record<string, HostTensor>;
  /** Runs the kernels under test on the uploaded inputs. */
  run<T extends Handle>(be: Backend<T>, x: Tensors<T>): Outputs<T>;
}

function numel(shape: Shape): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Seeded input draws for one case. */
export class Gen {
  constructor(private readonly rng: Rng) {}
  randn(shape: Shape, std = 1): HostTensor {
    const data = new Float32Array(numel(shape));
    this.rng.fillNormal(data, std);
    return { data, shape };
  }
  /** i32 ids uniform in [0, hi). */
  ints(shape: Shape, hi: number): HostTensor {
    return { data: Int32Array.from({ length: numel(shape) }, () => this.rng.int(hi)), shape };
  }
  zeros(shape: Shape): HostTensor {
    return { data: new Float32Array(numel(shape)), shape };
  }
  /** f(x) of every element of t (a new tensor). */
  map(t: HostTensor, f: (x: number) => number): HostTensor {
    return { data: Float32Array.from(t.data, f), shape: t.shape };
  }
}

/** FNV-1a of the name: each case's own seed. */
function seedOf(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

export function kernelCase(
  name: string, inputs: (g: Gen) => Record<string, HostTensor>, run: KernelCase['run'],
): KernelCase {
  return { name, inputs: inputs(new Gen(new Rng(seedOf(name)))), run };
}

export function uploadAll<T extends Handle>(be: Backend<T>, inputs: Record<string, HostTensor>): Tensors<T> {
  const out: Tensors<T> = {};
  for (const [k, t] of Object.entries(inputs)) {
    out[k] = t.data instanceof Int32Array ? be.uploadInt(t.data, t.shape) : be.upload(t.data, t.shape);
  }
  return out;
}

/** Disposes every distinct handle once (adamw's outputs are its inputs). */
function freeAll<T extends Handle>(be: Backend<T>, ...groups: (Tensors<T> | undefined)[]): void {
  const seen = new Set<T>();
  for (const g of groups) for (const t of Object.values(g ?? {})) seen.add(t);
  for (const t of seen) if (!t.disposed) be.dispose(t);
}

const sameKeys = (a: object, b: object): boolean => Object.keys(a).sort().join() === Object.keys(b).sort().join();
const sameShape = (a: Shape, b: Shape): boolean => a.length === b.length && a.every((d, i) => d === b[i]);

/** The case on `be` and on the reference: every output present on both, the same shape, and
 *  within `tol`. Returns the violations (empty = pass). */
export async function caseMismatches<T extends Handle, R extends Handle>(
  be: Backend<T>, ref: Backend<R>, c: KernelCase, tol: Tolerance,
): Promise<string[]> {
  const xs = uploadAll(be, c.inputs), xr = uploadAll(ref, c.inputs);
  const got = c.run(be, xs), want = c.run(ref, xr);
  const errors: string[] = [];
  for (const kind of ['values', 'grads'] as const) {
    const g: Tensors<T> = got[kind] ?? {}, w: Tensors<R> = want[kind] ?? {};
    if (!sameKeys(g, w)) errors.push(`${kind}: got [${Object.keys(g)}], the reference gives [${Object.keys(w)}]`);
    for (const [name, wt] of Object.entries(w)) {
      const gt = g[name];
      if (!gt) continue;
      if (!sameShape(gt.shape, wt.shape)) {
        errors.push(`${name}: shape [${gt.shape}], the reference gives [${wt.shape}]`);
        continue;
      }
      const [gh, wh] = [await be.read(gt), await ref.read(wt)];
      const e = kind === 'grads' ? checkGrads(name, gh, wh, tol.grads) : checkValues(name, gh, wh, tol.values);
      if (e) errors.push(e);
    }
  }
  freeAll(be, xs, got.values, got.grads);
  freeAll(ref, xr, want.values, want.grads);
  return errors;
}

/** `be` with no fused kernels, so src/compose.ts composes Pattention and attention from the
 *  primitives (the path of a backend that lacks the fused pair). */
export function composedOnly<T extends Handle>(be: Backend<T>): Backend<T> {
  return {
    name: be.name,
    ops: be.ops,
    fused: {},
    upload: (data, shape) => be.upload(data, shape),
    uploadInt: (data, shape) => be.uploadInt(data, shape),
    zeros: (shape) => be.zeros(shape),
    reshape: (t, shape) => be.reshape(t, shape),
    read: (t) => be.read(t),
    dispose: (t) => be.dispose(t),
    destroy: () => be.destroy(),
  };
}
