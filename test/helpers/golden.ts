// Loads golden/manifest.json and its safetensors fixtures (format: golden/FORMAT.md).

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensors, type SafeTensors } from '../../src/safetensors.ts';
import type { GradTol, ValueTol } from './compare.ts';

export const GOLDEN_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'golden');

export interface OpFixture {
  name: string;
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
  tolerances: Record<'reference' | 'gpu_f32', { values: ValueTol; grads: GradTol }>;
  ops: OpFixture[];
  models: ModelFixture[];
  train: TrainFixture[];
}

export function loadManifest(): Manifest {
  return JSON.parse(readFileSync(join(GOLDEN_DIR, 'manifest.json'), 'utf8')) as Manifest;
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
