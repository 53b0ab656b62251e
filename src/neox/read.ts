// Reads the weights back out of a GPT-NeoX/DeepSpeed checkpoint folder: `DIR` (its `latest`
// names the tag) or `DIR/global_step<N>`. With per-layer files (pipeline parallel) each
// `layer_XX-model_00-model_states.pt` is a plain state dict, read by the safe .bin reader and
// prefixed `sequential.XX.`; otherwise `mp_rank_00_model_states.pt` holds {"module": state dict,
// …}: the rest of that dict (DeepSpeed's and GPT-NeoX's bookkeeping, numpy RNG state,
// torch.Size shapes) is parsed as inert data, never called, and only `module` is loaded.
// Omits: model_parallel_size > 1 (several mp_rank files), ZeRO-3 partitioned weights, and the
// fp32 master weights in zero_pp_rank_*_optim_states.pt (use DeepSpeed's zero_to_fp32.py: its
// pytorch_model.bin is a plain state dict, which `convert` reads directly).
//
// NOTE: the view checks and decoding below repeat, for a state dict one level down, what
// src/torch-bin/load.ts does at the top level (whose loader only takes a flat state dict). Only
// contiguous views are accepted here, which is what DeepSpeed writes.

import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import { quote } from '../fsguard.ts';
import { ITEMSIZE, decode } from '../safetensors-dtypes.ts';
import { SafeTensors } from '../safetensors.ts';
import { readTorchBin } from '../torch-bin.ts';
import { PDict, describe, unpickle, type PObject, type PValue, type PickleHooks } from '../torch-bin/pickle.ts';
import { fileSource } from '../torch-bin/source.ts';
import { STORAGE_DTYPES, TensorRef, torchHooks } from '../torch-bin/torch-globals.ts';
import { ZipArchive } from '../torch-bin/zip.ts';
import { MODEL_STATES } from './export.ts';

const LAYER_RE = /^layer_(\d+)-model_(\d+)-model_states\.pt$/;
const TORCH_OWN = new Set([...Object.keys(STORAGE_DTYPES), 'torch.DoubleStorage',
  'torch._utils._rebuild_tensor_v2', 'torch._utils._rebuild_parameter', 'collections.OrderedDict']);

/** A global that is not tensor data (numpy.*, torch.Size, _codecs.encode): kept as an inert name. */
class Inert implements PObject {
  readonly kind = 'non-tensor value';
  constructor(readonly name: string) {}
}

/** torch's allowlist for tensors; every other global, call and BUILD becomes inert data. */
function checkpointHooks(source: string): PickleHooks {
  const t = torchHooks(source);
  return {
    global: (mod, name, at) => (TORCH_OWN.has(`${mod}.${name}`) ? t.global(mod, name, at) : new Inert(`${mod}.${name}`)),
    reduce: (fn, args, at) => (fn instanceof Inert ? new Inert(`${fn.name}()`) : t.reduce(fn, args, at)),
    persistent: (pid, at) => t.persistent(pid, at),
    build: (obj, state, at) => (obj instanceof Inert ? undefined : t.build(obj, state, at)),
  };
}

/** Which folder holds the checkpoint files: `path` itself, or the tag its `latest` names. */
function checkpointFolder(path: string): string {
  let latest: string;
  try {
    latest = readFileSync(join(path, 'latest'), 'utf8').trim();
  } catch {
    return path;
  }
  if (!/^[A-Za-z0-9_.-]{1,200}$/.test(latest) || latest === '.' || latest === '..') {
    throw new UserError(`${quote(join(path, 'latest'))} names ${quote(latest)}, not a checkpoint tag`);
  }
  return join(path, latest);
}

function isRowMajor(t: TensorRef): boolean {
  let want = 1;
  for (let i = t.shape.length - 1; i >= 0; i--) {
    if (t.shape[i] !== 1 && t.stride[i] !== want) return false;
    want *= t.shape[i];
  }
  return true;
}

/** The `module` state dict of a DeepSpeed model-states file, checked and copied out. */
export function readModelStates(path: string): SafeTensors {
  const source = quote(path);
  const src = fileSource(path);
  try {
    const zip = new ZipArchive(src, source);
    const pkl = [...zip.entries.keys()].find((n) => /^[^/]+\/data\.pkl$/.test(n));
    if (pkl === undefined) throw new UserError(`${source}: no <folder>/data.pkl: not a torch.save checkpoint`);
    const prefix = pkl.slice(0, -'data.pkl'.length);
    let root: PValue;
    try {
      root = unpickle(zip.read(zip.entries.get(pkl)!), checkpointHooks(source), source);
    } catch (e) {
      const hint = 'for a DeepSpeed training checkpoint, run its zero_to_fp32.py and convert the pytorch_model.bin it writes';
      throw e instanceof UserError ? new UserError(`${e.message}; ${hint}`) : e;
    }
    const module = root instanceof PDict ? root.map.get('module') : undefined;
    if (module === null) throw new UserError(`${source}: "module" is None (a pipeline checkpoint) but there are no layer_XX files beside it`);
    if (!(module instanceof PDict)) throw new UserError(`${source}: no "module" state dict (found ${describe((module ?? root) as PValue)})`);
    return moduleTensors(zip, prefix, module, source);
  } finally {
    src.close();
  }
}

/** Records up to this size are read whole (CRC-checked) and shared by their views. */
const WHOLE_RECORD_BYTES = 1 << 30;

function moduleTensors(zip: ZipArchive, prefix: string, module: PDict, source: string): SafeTensors {
  const out = new SafeTensors();
  const stored = new Set<string>();
  let storedElements = 0;
  let total = 0;
  let cachedKey: string | null = null; // one record in memory at a time
  let cached: Uint8Array = new Uint8Array(0);
  for (const [name, t] of module.map) {
    if (typeof name !== 'string' || !(t instanceof TensorRef)) {
      throw new UserError(`${source}: module entry ${quote(String(name))} is ${describe(t as PValue)}, not a tensor`);
    }
    const s = t.storage;
    const rec = zip.entries.get(`${prefix}data/${s.key}`);
    const size = ITEMSIZE[s.dtype];
    if (!rec || rec.size !== s.numel * size) throw new UserError(`${source}: storage ${quote(s.key)} of ${quote(name)} has no record of ${s.numel * size} bytes`);
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (!isRowMajor(t) || t.offset + numel > s.numel) {
      throw new UserError(`${source}: ${quote(name)} is not a contiguous view inside its storage`);
    }
    if (!stored.has(s.key)) storedElements += s.numel;
    stored.add(s.key);
    total += numel;
    if (total > 4 * storedElements) throw new UserError(`${source}: the module's tensors hold over 4 × the elements of their storages`);
    let data: Float32Array | Int32Array;
    if (rec.size <= WHOLE_RECORD_BYTES) {
      if (cachedKey !== s.key) {
        cached = zip.read(rec);
        cachedKey = s.key;
      }
      data = decode(cached, t.offset * size, numel, s.dtype, source, name);
    } else {
      data = decode(zip.readRange(rec, t.offset * size, numel * size), 0, numel, s.dtype, source, name);
    }
    out.set(name, { dtype: s.dtype, shape: t.shape, data });
  }
  return out;
}

/** Every layer file of a pipeline checkpoint, names prefixed `sequential.<i>.`. */
function readLayerFiles(folder: string, names: string[]): SafeTensors {
  const out = new SafeTensors();
  for (const f of names.sort()) {
    const m = LAYER_RE.exec(f)!;
    if (m[2] !== '00') throw new UserError(`${quote(join(folder, f))}: model_parallel_size > 1 checkpoints are not read`);
    for (const [name, t] of readTorchBin(join(folder, f))) out.set(`sequential.${Number(m[1])}.${name}`, t);
  }
  return out;
}

/** True when `path` is a folder (a checkpoint folder for `convert`, not a weights file). */
export function isFolder(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** The weights of a GPT-NeoX checkpoint folder (DIR or DIR/global_step<N>), official names. */
export function readNeoxCheckpoint(path: string): { tensors: SafeTensors; folder: string; layout: 'module' | 'layers' } {
  const folder = checkpointFolder(path);
  let names: string[];
  try {
    names = readdirSync(folder);
  } catch (e) {
    throw new UserError(`cannot read checkpoint folder ${quote(folder)}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  const layers = names.filter((n) => LAYER_RE.test(n));
  if (layers.length > 0) return { tensors: readLayerFiles(folder, layers), folder, layout: 'layers' };
  const ranks = names.filter((n) => /^mp_rank_\d+_model_states\.pt$/.test(n));
  if (ranks.length > 1) throw new UserError(`${quote(folder)} holds ${ranks.length} mp_rank files: model_parallel_size > 1 checkpoints are not read`);
  if (!ranks.includes(MODEL_STATES)) {
    throw new UserError(`${quote(folder)} has no ${MODEL_STATES} (nor layer_XX files, nor a latest file naming a folder that has them)`);
  }
  return { tensors: readModelStates(join(folder, MODEL_STATES)), folder, layout: 'module' };
}
