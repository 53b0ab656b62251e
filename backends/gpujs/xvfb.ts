// A private X server for gpujs-headlessgl when the process has no DISPLAY: starts `Xvfb`
// on a display number it picks itself (-displayfd), waits until it accepts connections,
// and stops it when the last backend using it is destroyed, at exit, and on SIGINT/SIGTERM/
// SIGHUP, so no Xvfb outlives the process. Omits: X authentication (the server listens only
// on its local socket, as `xvfb-run -a` without xauth does) and Windows/macOS (no Xvfb there).

import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Milliseconds to wait for Xvfb to report its display, and then for it to exit. */
const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 3_000;
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

export interface PrivateDisplay {
  /** ':N', already in process.env.DISPLAY. */
  display: string;
  pid: number;
}

/** The first executable `name` on PATH, or null. */
export function findOnPath(name: string, path = process.env.PATH ?? ''): string | null {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return null;
}

interface Server { child: ChildProcess; info: PrivateDisplay; users: number; exited: Promise<void> }
let server: Server | null = null;
let starting: Promise<Server> | null = null;
/** The Xvfb process while it starts or runs: what the exit and signal hooks kill. */
let current: ChildProcess | null = null;
/** Set once a private server has been stopped: a process gets one (see acquireXvfb). */
let stoppedOne = false;

/**
 * Starts (or reuses) this process's private Xvfb and points DISPLAY at it; every call must
 * be paired with one `releaseXvfb()`. Throws an Error saying why when Xvfb does not start.
 * NOTE: one server per process. GPU.js keeps its first GL probe context (and `gl` its X
 * connection) for the process's life; on a second server that stale connection makes Xlib
 * end the process ("XIO: fatal IO error"), skipping every exit hook. So after the first
 * server stops, this refuses instead of starting another.
 */
export async function acquireXvfb(exe: string): Promise<PrivateDisplay> {
  if (!server && stoppedOne) {
    throw new Error("this process's private Xvfb was already stopped, and GPU.js cannot move to a new X server");
  }
  if (!server) {
    starting ??= startServer(exe).finally(() => { starting = null; });
    server = await starting;
  }
  server.users++;
  return server.info;
}

/** Drops one user; the last one stops the server and waits for it to exit. */
export async function releaseXvfb(): Promise<void> {
  const s = server;
  if (!s || --s.users > 0) return;
  server = null;
  await stop(s);
}

async function startServer(exe: string): Promise<Server> {
  // fd 3 is the -displayfd pipe: Xvfb writes "N\n" there once it accepts connections.
  // -terminate: the server also exits when its last client (this process's GL connection)
  // goes, so even a SIGKILLed process leaves no Xvfb behind.
  const args = ['-displayfd', '3', '-screen', '0', '1024x768x24', '-nolisten', 'tcp', '-terminate'];
  const child = spawn(exe, args, { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
  current = child;
  installExitHooks();
  // 'error' alone (no 'exit') when the spawn itself fails.
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.on('error', () => resolve());
  });
  let log = '';
  child.stderr!.on('data', (b: Buffer) => { log = (log + b.toString()).slice(-2000); });
  try {
    const n = await readDisplayNumber(child, () => log);
    const s: Server = { child, info: { display: `:${n}`, pid: child.pid! }, users: 0, exited };
    process.env.DISPLAY = s.info.display;
    // The server must not keep the event loop (and so the process) alive.
    child.unref();
    for (const st of [child.stderr, child.stdio[3]]) (st as unknown as { unref?: () => void } | null)?.unref?.();
    return s;
  } catch (e) {
    if (running(child)) child.kill('SIGKILL');
    await exited;
    current = null;
    removeExitHooks();
    throw e;
  }
}

function readDisplayNumber(child: ChildProcess, log: () => string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let out = '';
    const fail = (why: string) => {
      clearTimeout(timer);
      const tail = log().trim().split('\n').slice(-3).join(' | ');
      reject(new Error(`Xvfb ${why}${tail ? `: ${tail}` : ''}`));
    };
    const timer = setTimeout(() => fail(`reported no display within ${START_TIMEOUT_MS / 1000} s`), START_TIMEOUT_MS);
    const early = (code: number | null, sig: string | null) => fail(`exited before it was ready (${sig ?? `code ${code}`})`);
    child.once('error', (e) => fail(`did not start (${e.message})`));
    child.once('exit', early);
    (child.stdio[3] as NodeJS.ReadableStream).on('data', (b: Buffer) => {
      out += b.toString();
      const m = /^(\d+)\n/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      child.off('exit', early);
      resolve(Number(m[1]));
    });
  });
}

function running(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

async function stop(s: Server): Promise<void> {
  stoppedOne = true;
  if (process.env.DISPLAY === s.info.display) delete process.env.DISPLAY;
  if (running(s.child)) {
    s.child.ref();
    s.child.kill('SIGTERM');
    const late = setTimeout(() => s.child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await s.exited;
    clearTimeout(late);
  }
  current = null;
  removeExitHooks();
}

/** Synchronous last resort (exit, signals): no promise runs any more, so just signal it. */
function killNow(): void {
  const child = current;
  current = null;
  server = null;
  stoppedOne = true;
  if (child && running(child)) child.kill('SIGTERM');
}

function onSignal(sig: NodeJS.Signals): void {
  killNow();
  removeExitHooks();
  // With our handler gone and no other listener, the signal's default action ends the
  // process as it would have without us (exit status 128 + signal number).
  if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
}

let hooked = false;
function installExitHooks(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', killNow);
  for (const sig of SIGNALS) process.on(sig, onSignal);
}

function removeExitHooks(): void {
  if (!hooked) return;
  hooked = false;
  process.off('exit', killNow);
  for (const sig of SIGNALS) process.off(sig, onSignal);
}
