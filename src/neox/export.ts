// A TokenFormer's weights as the checkpoint folder the official GPT-NeoX trainer (DeepSpeed)
// loads with `load:` (spec/checkpoint.md, "GPT-NeoX layout"):
//
//   DIR/latest                                  "global_step<N>" (DeepSpeed reads the tag here)
//   DIR/neox.yml                                the config to train with (src/neox/config.ts)
//   DIR/global_step<N>/mp_rank_00_model_states.pt   {"module": state dict, "dp_world_size": 1, …}
//   DIR/global_step<N>/layer_XX-model_00-model_states.pt   (pipe_parallel_size ≥ 2 only: each
//                                               layer's own state dict; "module" is then None)
//   DIR/tokenformer-export.json                 what we wrote (so a rerun may replace it)
//
// Omits: optimizer, LR-scheduler and RNG state (the trainer must start with finetune: true),
// model_parallel_size > 1, and the `args` entry (GPT-NeoX would compare it with its own
// arguments, e.g. tokenizer_type, which the weights do not determine).

import { join } from 'node:path';
import { commitStaged, discardStaged, stageFile, type StagedFile } from '../atomic.ts';
import type { ModelConfig } from '../config.ts';
import { UserError } from '../errors.ts';
import { quote } from '../fsguard.ts';
import { BUFFER_NAME, checkParams, paramSpecs } from '../params.ts';
import { PyDict, PyList, type PyValue } from '../torch-bin/pickle-write.ts';
import { TorchSave, stateDictValue, type TensorOut } from '../torch-bin/write.ts';
import { neoxTrainConfig, type NeoxConfig, type NeoxParallelism } from './config.ts';

export const MODEL_STATES = 'mp_rank_00_model_states.pt';
export const NEOX_CONFIG = 'neox.yml';
export const MARKER = 'tokenformer-export.json';

/** The per-layer file PipelineModule.ckpt_layer_path names for model-parallel rank 0. */
export function layerFile(index: number): string {
  return `layer_${String(index).padStart(2, '0')}-model_00-model_states.pt`;
}

/**
 * The top-level dict DeepSpeed's _save_checkpoint writes, with the values a module-only load
 * needs (module, dp_world_size) and honest empties for the rest; `iteration` is GPT-NeoX's own
 * client state (ignored under finetune).
 */
function modelStates(module: PyValue, iteration: number): PyDict {
  return new PyDict([
    ['module', module],
    ['buffer_names', new PyList([])], // TokenFormer registers no persistent buffers
    ['optimizer', null],
    ['param_shapes', null],
    ['frozen_param_shapes', null],
    ['shared_params', null],
    ['frozen_param_fragments', null],
    ['lr_scheduler', null],
    ['data_sampler', null],
    ['random_ltd', null],
    ['skipped_steps', 0],
    ['global_steps', iteration],
    ['global_samples', 0],
    ['dp_world_size', 1],
    ['mp_world_size', 1],
    ['ds_config', null],
    ['ds_version', null],
    ['iteration', iteration],
  ]);
}

/** The parameters in the official module's state_dict() order; buffers (recomputed) dropped. */
export function officialStateDict(c: ModelConfig, tensors: Map<string, TensorOut>, source: string) {
  checkParams(c, tensors, source);
  const sd = new Map<string, TensorOut>();
  for (const s of paramSpecs(c)) {
    const t = tensors.get(s.name)!;
    if (!(t.data instanceof Float32Array)) throw new UserError(`${source}: ${quote(s.name)} is ${t.dtype}; parameters must be floats`);
    sd.set(s.name, t);
  }
  const dropped = [...tensors.keys()].filter((n) => !sd.has(n) && BUFFER_NAME.test(n));
  return { sd, dropped };
}

/** Each layer's own state dict (names without `sequential.<i>.`), by layer index. */
function byLayer(sd: ReadonlyMap<string, TensorOut>): Map<number, Map<string, TensorOut>> {
  const out = new Map<number, Map<string, TensorOut>>();
  for (const [name, t] of sd) {
    const m = /^sequential\.(\d+)\.(.+)$/.exec(name);
    if (!m) throw new Error(`internal: parameter ${name} is not under sequential.<i>`);
    const i = Number(m[1]);
    if (!out.has(i)) out.set(i, new Map());
    out.get(i)!.set(m[2], t);
  }
  return out;
}

export interface NeoxExport {
  tag: string;
  layout: 'module' | 'layers';
  files: string[]; // relative to the folder
}

/**
 * Stages every file of the folder inside `tmp` (an empty folder of ours) and commits them
 * there; the caller then moves `tmp` into place. `dir` is the folder's final absolute path.
 */
export function writeNeoxFiles(
  tmp: string, dir: string, c: ModelConfig, sd: ReadonlyMap<string, TensorOut>,
  cfg: NeoxConfig, par: NeoxParallelism, iteration: number, mkdir: (p: string) => void,
): NeoxExport {
  if (!Number.isSafeInteger(iteration) || iteration < 0) throw new UserError(`--iteration must be a non-negative integer, got ${iteration}`);
  const tag = `global_step${iteration}`;
  const layout = par.pipeParallel >= 2 ? 'layers' : 'module';
  mkdir(join(tmp, tag));
  const staged: StagedFile[] = [];
  const files: string[] = [];
  const add = (rel: string, f: StagedFile) => {
    staged.push(f);
    files.push(rel);
  };
  try {
    const ts = new TorchSave();
    if (layout === 'module') {
      add(`${tag}/${MODEL_STATES}`, ts.stage(join(tmp, tag, MODEL_STATES), modelStates(stateDictValue(ts, sd), iteration)));
    } else {
      for (const [i, layer] of byLayer(sd)) {
        const lt = new TorchSave();
        add(`${tag}/${layerFile(i)}`, lt.stage(join(tmp, tag, layerFile(i)), stateDictValue(lt, layer)));
      }
      add(`${tag}/${MODEL_STATES}`, ts.stage(join(tmp, tag, MODEL_STATES), modelStates(null, iteration)));
    }
    add('latest', stageFile(join(tmp, 'latest'), tag)); // DeepSpeed writes the bare tag
    add(NEOX_CONFIG, stageFile(join(tmp, NEOX_CONFIG), neoxTrainConfig(cfg, c, dir)));
    const marker = { writer: 'tokenformer convert --to neox', tag, layout, files: [...files, MARKER] };
    add(MARKER, stageFile(join(tmp, MARKER), `${JSON.stringify(marker, null, 1)}\n`));
    commitStaged(staged);
  } catch (e) {
    discardStaged(staged); // the caller removes the whole temp folder too
    throw e;
  }
  return { tag, layout, files: [...files] };
}
