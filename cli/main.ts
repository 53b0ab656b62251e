// The `tokenformer` CLI: the program (forward and grad from ./forward.ts, plus the commands
// other modules register), and the one place errors are printed. Bad input: one `error: …`
// line on stderr (first line of the message, capped), exit code 2, no output file; real bugs:
// `error: internal: …`, exit 1, the stack only with TOKENFORMER_DEBUG. `run` (the entry's)
// adds the stdio guards (./stdio.ts) and turns stray exceptions into one line too.
// Omits: the commands themselves (./forward.ts, ./grow.ts, ./train.ts, ./demo.ts).

import { Command, CommanderError } from 'commander';
import { BackendUnavailable } from '../backends/index.ts';
import { UserError } from '../src/errors.ts';
import { registerForwardGrad } from './forward.ts';
import { OutputClosed, installStdioGuards, onLateStdoutFailure, settle, stdoutFailure } from './stdio.ts';

/** The longest error line printed; a message echoing a 10⁶-dim shape stops here. */
export const MAX_ERROR_CHARS = 500;

let errorPrinted = false;

/** One line: the first line of `msg`, capped at MAX_ERROR_CHARS. */
export function errorLine(msg: string): string {
  const first = msg.split(/\r\n|\r|\n/, 1)[0] ?? '';
  return first.length > MAX_ERROR_CHARS ? `${first.slice(0, MAX_ERROR_CHARS)}…` : first;
}

function printError(msg: string): void {
  errorPrinted = true;
  process.stderr.write(`error: ${errorLine(msg)}\n`);
}

/** commander's own messages (unknown option, missing flag) on one line, "(Did you mean …)" kept. */
function commanderErr(s: string): void {
  if (!s.startsWith('error:')) {
    process.stderr.write(s);
    return;
  }
  errorPrinted = true;
  const one = s.trim().replace(/\s*[\r\n]+\s*/g, ' ');
  process.stderr.write(`${one.length > MAX_ERROR_CHARS + 7 ? `${one.slice(0, MAX_ERROR_CHARS + 7)}…` : one}\n`);
}

/**
 * The program. With `command` forward, grad or grow only those modules load: the others
 * (demo pulls in the plotting stack) cost most of a second of startup per run.
 */
export async function buildProgram(command?: string): Promise<Command> {
  const program = new Command('tokenformer')
    .description('TokenFormer: Pattention transformers, a reference oracle and trainer')
    .exitOverride()
    .configureOutput({ writeErr: commanderErr });
  registerForwardGrad(program);
  if (command === 'grow') (await import('./grow.ts')).registerGrow(program);
  else if (command !== 'forward' && command !== 'grad') {
    for (const register of (await import('./commands.ts')).extraCommands) register(program);
  }
  for (const c of program.commands) c.exitOverride();
  return program;
}

function reportFailure(e: unknown): number {
  if (e instanceof CommanderError) {
    // commander already printed its message; help and version exit 0
    return e.exitCode === 0 ? 0 : 2;
  }
  if (e instanceof OutputClosed) return 0; // the reader of stdout went away: end quietly
  if (e instanceof UserError || e instanceof BackendUnavailable) {
    printError(e.message);
    return 2;
  }
  const msg = e instanceof Error ? e.message : String(e);
  printError(`internal: ${msg}`);
  if (process.env.TOKENFORMER_DEBUG) console.error(e);
  return 1;
}

/** Runs the CLI; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  try {
    await (await buildProgram(argv[2])).parseAsync(argv);
    return 0;
  } catch (e) {
    return reportFailure(e);
  }
}

/**
 * The entry's run (bin/tokenformer.mjs): stdio guards on, stray exceptions as one line, and a
 * stdout that failed makes the exit code 2 even when the command itself finished.
 */
export async function run(argv: string[]): Promise<number> {
  installStdioGuards();
  const stray = (e: unknown) => {
    const code = reportFailure(e instanceof UserError || e instanceof OutputClosed ? e : new Error(e instanceof Error ? e.message : String(e)));
    if (process.env.TOKENFORMER_DEBUG) console.error(e);
    process.exit(code);
  };
  process.on('uncaughtException', stray);
  process.on('unhandledRejection', stray);
  let code = await main(argv);
  await settle();
  const failed = stdoutFailure();
  if (failed !== null) {
    if (!errorPrinted) printError(failed);
    code = Math.max(code, 2);
  }
  onLateStdoutFailure((msg) => {
    if (!errorPrinted) printError(msg);
    process.exitCode = Math.max(Number(process.exitCode ?? 0), 2);
  });
  return code;
}
