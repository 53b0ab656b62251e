// Errors a user caused (bad file, bad shape, bad id): the CLI prints one line and exits 2.

export class UserError extends Error {
  override name = 'UserError';
}

/** Thrown by a backend factory when its native module or adapter is missing (the loader then
 *  falls back, or a test suite skips that backend and prints this message). */
export class BackendUnavailable extends Error {
  override name = 'BackendUnavailable';
}

/** Throws a UserError unless cond holds. */
export function check(cond: unknown, message: string | (() => string)): asserts cond {
  if (!cond) throw new UserError(typeof message === 'string' ? message : message());
}
