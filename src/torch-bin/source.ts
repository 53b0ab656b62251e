// Random-access bytes for the torch checkpoint reader: a file read by positioned reads (so a
// checkpoint over Node's 2 GiB readFileSync limit loads, and only the records asked for are
// ever in memory) or a buffer already in memory (tests, fuzzing).
// Omits: memory mapping and asynchronous reads (the CLI readers are synchronous).

import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { fail } from '../safetensors-dtypes.ts';

/** `read` returns exactly `len` bytes starting at `pos` (a fresh buffer or a view) or throws. */
export interface ByteSource {
  readonly size: number;
  read(pos: number, len: number): Uint8Array;
}

export function bufferSource(bytes: Uint8Array, source: string): ByteSource {
  return {
    size: bytes.length,
    read(pos, len) {
      if (pos < 0 || len < 0 || pos + len > bytes.length) {
        fail(source, `truncated: needs bytes [${pos}, ${pos + len}) of a ${bytes.length}-byte file`);
      }
      return bytes.subarray(pos, pos + len);
    },
  };
}

/** Largest single readSync (Node refuses lengths of 2 GiB and more). */
const CHUNK = 1 << 30;

/** A file source; call `close()` when done. FIFOs and devices are refused (they could hang). */
export function fileSource(path: string): ByteSource & { close(): void } {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (e) {
    return fail(path, `cannot read (${e instanceof Error ? e.message : String(e)})`);
  }
  const st = fstatSync(fd);
  if (!st.isFile()) {
    closeSync(fd);
    fail(path, 'not a regular file');
  }
  const size = st.size;
  return {
    size,
    read(pos, len) {
      if (pos < 0 || len < 0 || pos + len > size) {
        fail(path, `truncated: needs bytes [${pos}, ${pos + len}) of a ${size}-byte file`);
      }
      const out = new Uint8Array(len);
      let done = 0;
      while (done < len) {
        const n = readSync(fd, out, done, Math.min(CHUNK, len - done), pos + done);
        if (n === 0) fail(path, `truncated while reading: the file shrank below ${pos + len} bytes`);
        done += n;
      }
      return out;
    },
    close() {
      closeSync(fd);
    },
  };
}
