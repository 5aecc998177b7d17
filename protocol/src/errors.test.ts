import { describe, expect, it } from 'vitest';
import { ErrorCode, RelaycastError, isAbortError, isErrorCode, isRelaycastError, throwIfAborted, toRelaycastError } from './errors.js';

describe('ErrorCode', () => {
  it('codes are unique RC_ERR_ strings and isErrorCode knows exactly them', () => {
    const codes = Object.values(ErrorCode);
    expect(new Set(codes).size).toBe(codes.length);
    for (const code of codes) {
      expect(code).toMatch(/^RC_ERR_[A-Z0-9_]+$/);
      expect(code.length).toBeLessThanOrEqual(64);
      expect(isErrorCode(code)).toBe(true);
    }
    for (const [key, code] of Object.entries(ErrorCode)) expect(code).toBe(`RC_ERR_${key}`);
    expect(isErrorCode('RC_ERR_NOPE')).toBe(false);
    expect(isErrorCode('')).toBe(false);
  });
});

describe('RelaycastError', () => {
  it('carries code, message, details and cause, and serialises without the cause', () => {
    const cause = new Error('root');
    const e = new RelaycastError(ErrorCode.TIMEOUT, 'took too long', { cause, details: { ms: 5 } });
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('RelaycastError');
    expect(e.code).toBe('RC_ERR_TIMEOUT');
    expect(e.message).toBe('took too long');
    expect(e.cause).toBe(cause);
    expect(e.details).toEqual({ ms: 5 });
    expect(e.toJSON()).toEqual({ code: 'RC_ERR_TIMEOUT', message: 'took too long', details: { ms: 5 } });
    expect(JSON.parse(JSON.stringify(e))).toEqual({ code: 'RC_ERR_TIMEOUT', message: 'took too long', details: { ms: 5 } });
    const bare = new RelaycastError(ErrorCode.INTERNAL, 'x');
    expect('cause' in bare).toBe(false);
    expect(bare.details).toBeUndefined();
    expect(bare.toJSON()).toEqual({ code: 'RC_ERR_INTERNAL', message: 'x' });
  });
});

describe('isRelaycastError', () => {
  it('narrows by class and optionally by code', () => {
    const e = new RelaycastError(ErrorCode.NO_RELAY, 'none');
    expect(isRelaycastError(e)).toBe(true);
    expect(isRelaycastError(e, ErrorCode.NO_RELAY)).toBe(true);
    expect(isRelaycastError(e, ErrorCode.TIMEOUT)).toBe(false);
    for (const other of [new Error('x'), { code: ErrorCode.NO_RELAY, message: 'fake' }, 'RC_ERR_NO_RELAY', undefined, null]) {
      expect(isRelaycastError(other)).toBe(false);
      expect(isRelaycastError(other, ErrorCode.NO_RELAY)).toBe(false);
    }
  });
});

describe('toRelaycastError', () => {
  it('returns a RelaycastError unchanged', () => {
    const e = new RelaycastError(ErrorCode.RELAY_ERROR, 'x');
    expect(toRelaycastError(e)).toBe(e);
    expect(toRelaycastError(e, ErrorCode.TIMEOUT)).toBe(e);
  });

  it('wraps other errors and values with the fallback code, keeping the cause', () => {
    const err = new TypeError('bad thing');
    const wrapped = toRelaycastError(err);
    expect(wrapped.code).toBe(ErrorCode.INTERNAL);
    expect(wrapped.message).toBe('bad thing');
    expect(wrapped.cause).toBe(err);
    expect(toRelaycastError(err, ErrorCode.ORIGIN_UNREACHABLE).code).toBe(ErrorCode.ORIGIN_UNREACHABLE);
    const fromString = toRelaycastError('boom', ErrorCode.CHANNEL_CLOSED);
    expect(fromString.code).toBe(ErrorCode.CHANNEL_CLOSED);
    expect(fromString.message).toBe('boom');
    expect(toRelaycastError(undefined).message).toBe('undefined');
    expect(toRelaycastError(42).message).toBe('42');
    expect(toRelaycastError(null).code).toBe(ErrorCode.INTERNAL);
  });

  it('maps AbortError and TimeoutError to RC_ERR_ABORTED whatever the fallback', () => {
    const controller = new AbortController();
    controller.abort();
    const reason: unknown = controller.signal.reason;
    expect(reason).toBeInstanceOf(Error);
    expect(toRelaycastError(reason, ErrorCode.ORIGIN_HTTP).code).toBe(ErrorCode.ABORTED);
    const timeout = new DOMException('timed out', 'TimeoutError');
    expect(toRelaycastError(timeout).code).toBe(ErrorCode.ABORTED);
    const named = Object.assign(new Error('x'), { name: 'AbortError' });
    expect(toRelaycastError(named).code).toBe(ErrorCode.ABORTED);
    expect(toRelaycastError(named).cause).toBe(named);
  });
});

describe('isAbortError', () => {
  it('recognises AbortError, TimeoutError and RC_ERR_ABORTED only', () => {
    expect(isAbortError(new DOMException('a', 'AbortError'))).toBe(true);
    expect(isAbortError(new DOMException('t', 'TimeoutError'))).toBe(true);
    expect(isAbortError(new RelaycastError(ErrorCode.ABORTED, 'a'))).toBe(true);
    expect(isAbortError(new RelaycastError(ErrorCode.TIMEOUT, 't'))).toBe(false);
    expect(isAbortError(new Error('AbortError'))).toBe(false);
    expect(isAbortError({ name: 'AbortError' })).toBe(false);
    expect(isAbortError(undefined)).toBe(false);
  });
});

describe('throwIfAborted', () => {
  it('does nothing without a signal or with a live one', () => {
    expect(() => throwIfAborted(undefined)).not.toThrow();
    expect(() => throwIfAborted(new AbortController().signal)).not.toThrow();
  });

  it('throws RC_ERR_ABORTED with the abort reason as cause', () => {
    const controller = new AbortController();
    const reason = new Error('user left');
    controller.abort(reason);
    let thrown: unknown;
    try {
      throwIfAborted(controller.signal);
    } catch (err) {
      thrown = err;
    }
    expect(isRelaycastError(thrown, ErrorCode.ABORTED)).toBe(true);
    expect((thrown as RelaycastError).cause).toBe(reason);
    expect(() => throwIfAborted(AbortSignal.abort())).toThrow(RelaycastError);
  });
});
