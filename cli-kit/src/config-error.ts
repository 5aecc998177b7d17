import { ErrorCode, RelaycastError } from '@relaycast/protocol';

/**
 * The error of every bad flag, environment variable, config-file key or option:
 * RC_ERR_CONFIG_INVALID, whose message starts with the setting's name (`--port`,
 * `RELAYCAST_PORT`, `relay.json: capacity`, `capacity`), so the operator knows what to fix.
 */
export function configInvalid(message: string, details?: Record<string, unknown>): RelaycastError {
  return new RelaycastError(ErrorCode.CONFIG_INVALID, message, details === undefined ? {} : { details });
}

/** A value quoted for an error message: bounded, so a pasted blob does not flood the terminal. */
export function quote(value: unknown): string {
  const text = typeof value === 'string' ? value : typeof value === 'bigint' ? value.toString() : (JSON.stringify(value) ?? String(value));
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 57)}...` : text);
}
