// The CLI's stdout and stderr when the far end misbehaves (spec/files.md): a closed pipe
// (`| head`, EPIPE) stops the command quietly at its next write to stdout; a stdout that cannot
// take data (/dev/full: ENOSPC, EIO) becomes one `error:` line and exit code 2; stderr errors
// are swallowed (there is nowhere left to report them). No write error escapes as an uncaught
// 'error' event with a stack trace.
// Omits: retrying partial writes (Node's streams do that) and Windows console quirks.

import { UserError } from '../src/errors.ts';

/** Thrown by a stdout write after its reader went away: the command ends quietly. */
export class OutputClosed extends Error {
  override name = 'OutputClosed';
}

/** Thrown by a stdout write after stdout failed (ENOSPC, EIO, …). */
export class StdoutFailed extends UserError {
  override name = 'StdoutFailed';
}

interface StreamState {
  closed: boolean;
  failure: string | null;
}

const states = { stdout: { closed: false, failure: null }, stderr: { closed: false, failure: null } } as Record<'stdout' | 'stderr', StreamState>;
let lateReport: ((msg: string) => void) | null = null;

function record(name: 'stdout' | 'stderr', e: unknown): void {
  const st = states[name];
  const code = (e as NodeJS.ErrnoException | null)?.code ?? 'write error';
  if (code === 'EPIPE' || code === 'ECONNRESET' || code === 'ERR_STREAM_DESTROYED') {
    st.closed = true;
    return;
  }
  if (st.failure !== null) return;
  st.failure = `cannot write to ${name}: ${code}`;
  if (name === 'stdout' && lateReport) lateReport(st.failure);
}

type WriteFn = NodeJS.WriteStream['write'];

function guard(stream: NodeJS.WriteStream, name: 'stdout' | 'stderr'): void {
  const st = states[name];
  stream.on('error', (e) => record(name, e));
  const write = stream.write.bind(stream) as (...args: unknown[]) => boolean;
  stream.write = ((...args: unknown[]): boolean => {
    if (name === 'stdout' && st.failure !== null) throw new StdoutFailed(st.failure);
    if (name === 'stdout' && st.closed) throw new OutputClosed('stdout closed');
    if (st.closed || st.failure !== null) return true; // stderr: nowhere to report it
    try {
      return write(...args);
    } catch (e) {
      record(name, e);
      return true;
    }
  }) as WriteFn;
}

let installed = false;

/** Installs the guards once per process (the CLI entry calls it; in-process tests need not). */
export function installStdioGuards(): void {
  if (installed) return;
  installed = true;
  guard(process.stdout, 'stdout');
  guard(process.stderr, 'stderr');
}

/** The stdout failure seen so far, if any. */
export function stdoutFailure(): string | null {
  return states.stdout.failure;
}

/** Called with a stdout failure that arrives after the command finished. */
export function onLateStdoutFailure(f: (msg: string) => void): void {
  lateReport = f;
}

/** Lets pending stream 'error' events (emitted on a later tick) arrive. */
export function settle(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}
