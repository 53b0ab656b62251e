// One entry point for every `--weights` file: a PyTorch checkpoint (`pytorch_model.bin`,
// torch.save: a zip, or the legacy pickle format, which gets a re-save hint) or safetensors,
// told apart by content, not by file name. Both give the same SafeTensors map.
// Omits: sharded checkpoints (an index JSON over several files) and writing.

import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { fail } from './safetensors-dtypes.ts';
import { readSafetensors, type SafeTensors } from './safetensors.ts';
import { looksLikeZip, readTorchBin } from './torch-bin.ts';

/** The first `n` bytes (fewer if the file is shorter); refuses what is not a regular file. */
function head(path: string, n: number): Uint8Array {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (e) {
    return fail(path, `cannot read (${e instanceof Error ? e.message : String(e)})`);
  }
  try {
    if (!fstatSync(fd).isFile()) fail(path, 'not a regular file');
    const buf = new Uint8Array(n);
    const got = readSync(fd, buf, 0, n, 0);
    return buf.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

/**
 * Which reader a weights file needs. Safetensors is recognised first: its u64 little-endian
 * header length has zero high bytes (bytes 4-7) for any header under 4 GiB, and byte 8 is "{"
 * (so a header length of 128, first byte 0x80, is still safetensors). Otherwise a zip header
 * (torch >= 1.6) or a pickle's 0x80 (legacy torch.save) means torch; anything else goes to the
 * safetensors reader, whose errors describe what is wrong.
 */
export function weightsFormat(first: Uint8Array): 'torch' | 'safetensors' {
  const safetensorsLike = first.length >= 9 && first[4] === 0 && first[5] === 0 && first[6] === 0 &&
    first[7] === 0 && first[8] === 0x7b;
  if (safetensorsLike) return 'safetensors';
  return looksLikeZip(first) || first[0] === 0x80 ? 'torch' : 'safetensors';
}

/**
 * Reads model weights from a `.bin` (torch.save) or `.safetensors` file, whatever its name:
 * tensors by official state-dict name, floats as Float32Array, integers as Int32Array. Every
 * problem is a one-line UserError naming the file.
 */
export function readWeightsFile(path: string, what = 'weights'): SafeTensors {
  return weightsFormat(head(path, 9)) === 'torch' ? readTorchBin(path) : readSafetensors(path, what);
}
