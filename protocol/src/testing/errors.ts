/** Helpers shared by the protocol package's tests (not exported from the package). */
import { afterAll, beforeAll, expect } from 'vitest';
import { RelaycastError } from '../errors.js';

/**
 * Runs `fn`, expects a RelaycastError, and checks its code: equal to `code` when it is a full code,
 * or starting with it when it is a prefix such as 'RC_ERR_FRAME_'.
 */
export function expectRelaycastError(fn: () => unknown, code: string): RelaycastError {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(RelaycastError);
  const e = thrown as RelaycastError;
  if (code.endsWith('_')) expect(e.code.startsWith(code)).toBe(true);
  else expect(e.code).toBe(code);
  return e;
}

/**
 * Fuzz suites reject millions of inputs: stack traces are most of the cost of a thrown error and
 * unused there. Call inside a describe block.
 */
export function withoutStackTraces(): void {
  let saved = Error.stackTraceLimit;
  beforeAll(() => {
    saved = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
  });
  afterAll(() => {
    Error.stackTraceLimit = saved;
  });
}
