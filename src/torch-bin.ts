// PyTorch checkpoints (`pytorch_model.bin`, torch.save of a state dict) read safely: the zip
// format torch ≥ 1.6 writes, through a restricted unpickler that only builds tensors from an
// explicit allowlist of globals (spec/checkpoint.md, "PyTorch .bin"). The result has the same
// type as readSafetensors: tensors by name, F32/F16/BF16 as Float32Array, integers as Int32Array.
// Omits: the legacy pre-1.6 format and bare pickles (recognised and refused with a re-save hint),
// TorchScript archives, nested checkpoints, float64, and writing .bin files.

import { fail } from './safetensors-dtypes.ts';
import type { SafeTensors } from './safetensors.ts';
import { loadTorchZip, type TorchBinOptions } from './torch-bin/load.ts';
import { bufferSource, fileSource, type ByteSource } from './torch-bin/source.ts';

export type { TorchBinOptions } from './torch-bin/load.ts';

/** Pickle PROTO 2 + LONG1 of torch's legacy magic number 0x1950a86a20f9469cfc6c. */
const LEGACY_MAGIC = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

/** True when the first bytes are a zip local header (PK\x03\x04) or an empty zip's end record. */
export function looksLikeZip(head: Uint8Array): boolean {
  return head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b &&
    ((head[2] === 3 && head[3] === 4) || (head[2] === 5 && head[3] === 6));
}

function load(src: ByteSource, source: string, opts?: TorchBinOptions): SafeTensors {
  const head = src.read(0, Math.min(src.size, LEGACY_MAGIC.length));
  if (head.length === LEGACY_MAGIC.length && LEGACY_MAGIC.every((b, i) => head[i] === b)) {
    fail(source, 'legacy torch.save format: re-save with torch >= 1.6 (torch.save(sd, path))');
  }
  if (head[0] === 0x80) fail(source, 'a bare pickle, not a torch.save zip checkpoint: re-save with torch.save(sd, path)');
  if (!looksLikeZip(head)) fail(source, 'not a torch.save checkpoint (no zip header)');
  return loadTorchZip(src, source, opts);
}

/** Parses a torch.save checkpoint held in memory; `source` names it in error messages. */
export function parseTorchBin(bytes: Uint8Array, source: string, opts?: TorchBinOptions): SafeTensors {
  return load(bufferSource(bytes, source), source, opts);
}

/** Reads a torch.save checkpoint by positioned reads (files over 2 GiB load too). */
export function readTorchBin(path: string, opts?: TorchBinOptions): SafeTensors {
  const src = fileSource(path);
  try {
    return load(src, path, opts);
  } finally {
    src.close();
  }
}
