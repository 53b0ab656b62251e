// Errors a user caused (bad file, bad shape, bad id): the CLI prints one line and exits 2.

export class UserError extends Error {
  override name = 'UserError';
}

/** Throws a UserError unless cond holds. */
export function check(cond: unknown, message: string | (() => string)): asserts cond {
  if (!cond) throw new UserError(typeof message === 'string' ? message : message());
}
