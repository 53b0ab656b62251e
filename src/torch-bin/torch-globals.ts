// The allowlist for torch's data.pkl: the few globals a state dict needs, what calling each
// builds (a tensor view of a storage, an empty OrderedDict), and torch's persistent ids for
// storages. Anything else is refused with one line naming it.
// Omits: the checks that need the zip (record sizes) and tensor names (bounds, budget); see
// src/torch-bin/load.ts. Also omits _rebuild_from_type_v2, quantized and sparse tensors,
// _rebuild_parameter_with_state and float64/complex storages (all refused).

import { fail, q } from '../safetensors-dtypes.ts';
import { PDict, PGlobal, PTuple, describe, type PObject, type PValue, type PickleHooks } from './pickle.ts';

/** torch storage classes → safetensors dtype tags (src/safetensors-dtypes.ts decodes them). */
export const STORAGE_DTYPES: Record<string, string> = {
  'torch.FloatStorage': 'F32', 'torch.HalfStorage': 'F16', 'torch.BFloat16Storage': 'BF16',
  'torch.LongStorage': 'I64', 'torch.IntStorage': 'I32', 'torch.ShortStorage': 'I16',
  'torch.CharStorage': 'I8', 'torch.ByteStorage': 'U8', 'torch.BoolStorage': 'BOOL',
};
const REBUILD_TENSOR = 'torch._utils._rebuild_tensor_v2';
const REBUILD_PARAMETER = 'torch._utils._rebuild_parameter';
const ORDERED_DICT = 'collections.OrderedDict';
const CALLABLES = new Set([REBUILD_TENSOR, REBUILD_PARAMETER, ORDERED_DICT]);

/** A storage as its persistent id declares it: `numel` elements of `dtype` in record data/<key>. */
export class StorageRef implements PObject {
  readonly kind = 'storage';
  constructor(readonly key: string, readonly dtype: string, readonly numel: number) {}
}
/** A strided view of a storage (torch's size, stride and storage offset, in elements). */
export class TensorRef implements PObject {
  readonly kind = 'tensor';
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}
}

/** torch allows 64 dims; more is a malformed file, not a tensor. */
const MAX_DIMS = 64;

function isCount(v: PValue): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

export function torchHooks(source: string): PickleHooks {
  const err: (at: number, problem: string) => never = (at, problem) => fail(source, `data.pkl byte ${at}: ${problem}`);
  const storages = new Map<string, StorageRef>();

  const ints = (v: PValue, what: string, at: number): number[] => {
    if (!(v instanceof PTuple) || v.items.length > MAX_DIMS || !v.items.every(isCount)) {
      err(at, `tensor ${what} must be a tuple of at most ${MAX_DIMS} non-negative integers, got ${describe(v)}`);
    }
    return v.items as number[];
  };

  const rebuildTensor = (args: PValue[], at: number): TensorRef => {
    const [storage, offset, size, stride, requiresGrad, hooks, metadata] = args;
    if (args.length !== 6 && args.length !== 7) err(at, `_rebuild_tensor_v2 takes 6 or 7 arguments, got ${args.length}`);
    if (!(storage instanceof StorageRef)) err(at, `_rebuild_tensor_v2's storage is ${describe(storage)}`);
    if (!isCount(offset)) err(at, `tensor storage offset is ${describe(offset)}, not a non-negative integer`);
    const shape = ints(size, 'size', at);
    const strides = ints(stride, 'stride', at);
    if (shape.length !== strides.length) err(at, `tensor size has ${shape.length} dims but stride ${strides.length}`);
    if (typeof requiresGrad !== 'boolean') err(at, `requires_grad is ${describe(requiresGrad)}, not a bool`);
    if (!(hooks instanceof PDict) || hooks.map.size !== 0) err(at, 'tensor backward hooks must be an empty OrderedDict');
    if (metadata !== undefined && !(metadata instanceof PDict && metadata.map.size === 0)) {
      err(at, 'tensor metadata (the 7th argument) is not empty: not a plain tensor');
    }
    return new TensorRef(storage, offset, shape.slice(), strides.slice());
  };

  const call = (fn: PGlobal, args: PValue[], at: number): PValue => {
    if (fn.name === ORDERED_DICT) {
      if (args.length !== 0) err(at, 'OrderedDict(...) with arguments is not allowed (torch pickles it empty)');
      return new PDict(true);
    }
    if (fn.name === REBUILD_TENSOR) return rebuildTensor(args, at);
    const [data, requiresGrad, hooks] = args;
    if (args.length !== 3 || !(data instanceof TensorRef) || typeof requiresGrad !== 'boolean' || !(hooks instanceof PDict)) {
      err(at, '_rebuild_parameter takes (tensor, requires_grad, hooks)');
    }
    return data;
  };

  return {
    global(module, name, at) {
      const full = `${module}.${name}`;
      if (STORAGE_DTYPES[full] !== undefined || CALLABLES.has(full)) return new PGlobal(full);
      if (full === 'torch.DoubleStorage') err(at, 'float64 tensors (torch.DoubleStorage) are not supported: save as float32');
      return fail(source, `refuses to load global ${q(full)} (only tensor data is allowed)`);
    },
    reduce(fn, args, at) {
      if (!(fn instanceof PGlobal) || !CALLABLES.has(fn.name)) {
        return err(at, `REDUCE calls ${describe(fn)}, which is not an allowed callable`);
      }
      if (!(args instanceof PTuple)) return err(at, `REDUCE arguments are ${describe(args)}, not a tuple`);
      return call(fn, args.items, at);
    },
    persistent(pid, at) {
      const items = pid instanceof PTuple ? pid.items : [];
      const [tag, cls, key, location, numel] = items;
      if (items.length !== 5 || tag !== 'storage') err(at, "persistent id is not ('storage', type, key, location, numel)");
      const dtype = cls instanceof PGlobal ? STORAGE_DTYPES[cls.name] : undefined;
      if (dtype === undefined) err(at, `persistent id names ${describe(cls)}, not a storage class`);
      if (typeof key !== 'string' || !/^[0-9A-Za-z_]{1,64}$/.test(key)) err(at, 'storage key is not a short name of letters and digits');
      if (typeof location !== 'string') err(at, `storage location is ${describe(location)}, not a string`);
      if (!isCount(numel)) err(at, `storage size is ${describe(numel)}, not a non-negative integer`);
      const seen = storages.get(key);
      if (seen && (seen.dtype !== dtype || seen.numel !== numel)) err(at, `storage ${q(key)} is declared twice, differently`);
      const ref = seen ?? new StorageRef(key, dtype, numel);
      storages.set(key, ref);
      return ref;
    },
    build(obj, state, at) {
      // state_dict()'s `_metadata` attribute: kept by torch, not needed for the tensors.
      if (!(obj instanceof PDict && obj.ordered) || !(state === null || state instanceof PDict)) {
        err(at, `BUILD of ${describe(obj)} with ${describe(state)} is not allowed (only an OrderedDict's attributes)`);
      }
    },
  };
}
