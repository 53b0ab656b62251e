// The one-line UserError a function throws, for in-process bad-input tests: fails the test when
// it throws anything else, a multi-line message, or nothing.

import { expect } from 'vitest';
import { UserError } from '../../src/errors.ts';

/** The one-line UserError message fn throws. */
export function userError(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e, String(e)).toBeInstanceOf(UserError);
    expect((e as Error).message).not.toMatch(/\n/);
    return (e as Error).message;
  }
  throw new Error('expected a UserError');
}
