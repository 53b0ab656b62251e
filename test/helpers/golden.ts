// Loads golden/manifest.json and its safetensors fixtures (format: golden/FORMAT.md).

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensors, type SafeTensors } from '../../src/safetensors.ts';
import type { GradTol, ValueTol } from './compare.ts';

export const GOLDEN_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'golden');

/**
 * Every op the golden fixtures hold (golden/FORMAT.md). test/parity/op-runners.ts maps each
 * one to its runner: a name here without a runner fails to compile, and a fixture whose op is
 * not here fails the parity suite (`fixtureOp`).
 */
export const FIXTURE_OPS = [
  'matmul', 'gelu', 'norm_act', 'pattention', 'layernorm_nonparam', 'layernorm', 'rotary', 'attention',
  'embedding', 'cross_entropy', 'adamw',
] as const;
export type FixtureOp = (typeof FIXTURE_OPS)[number];

/** The manifest's tolerance classes: 'reference' for the CPU reference, 'gpu_f32' for every
 *  float32 accelerator (test/helpers/backends.ts `toleranceClass` picks one per backend). */
export type ToleranceClass = 'reference' | 'gpu_f32';
export interface Tolerance {
  values: ValueTol;
  grads: GradTol;
}

export interface OpFixture {
  name: string;
  /** As written in the manifest: check it with `fixtureOp` before trusting it. */
  op: string;
  file: string;
  attrs: Record<string, number | boolean | string>;
}
export interface ModelFixture {
  name: string;
  config: string;
  file: string;
  batch: number;
  seq: number;
}
export interface TrainFixture {
  name: string;
  model: string;
  lrs: number[];
  file: string;
}
export interface Manifest {
  format: number;
  regenerate: string;
  tolerances: Record<ToleranceClass, Tolerance>;
  ops: OpFixture[];
  models: ModelFixture[];
  train: TrainFixture[];
}

export function loadManifest(): Manifest {
  return JSON.parse(readFileSync(join(GOLDEN_DIR, 'manifest.json'), 'utf8')) as Manifest;
}

/** The tolerances of one class, as golden/manifest.json declares them. */
export function tolerance(c: ToleranceClass): Tolerance {
  const t = loadManifest().tolerances[c];
  if (!t) throw new Error(`golden/manifest.json has no tolerance class '${c}'`);
  return t;
}

/** The fixture's op as a FixtureOp; throws, naming the fixture, for an op FIXTURE_OPS lacks. */
export function fixtureOp(o: OpFixture): FixtureOp {
  const op = o.op;
  if (!isFixtureOp(op)) {
    throw new Error(`golden fixture ${o.name} has op '${op}', which FIXTURE_OPS (test/helpers/golden.ts) does not know: add it there and its runner in test/parity/op-runners.ts`);
  }
  return op;
}

function isFixtureOp(op: string): op is FixtureOp {
  return FIXTURE_OPS.some((k) => k === op);
}

export function loadFixture(file: string): SafeTensors {
  return readSafetensors(join(GOLDEN_DIR, file));
}

export function goldenPath(file: string): string {
  return join(GOLDEN_DIR, file);
}

/** A fixture tensor that must exist. */
export function need(t: SafeTensors, name: string) {
  const v = t.get(name);
  if (!v) throw new Error(`golden fixture lacks tensor '${name}'`);
  return v;
}

/** A fixture tensor that must exist and hold i32 ids (input_ids, targets). */
export function needIds(t: SafeTensors, name: string): { data: Int32Array; shape: number[] } {
  const v = need(t, name);
  if (!(v.data instanceof Int32Array)) throw new Error(`golden fixture tensor '${name}' is not I32`);
  return { data: v.data, shape: v.shape };
}
