import { readFile } from 'node:fs/promises';
import { ErrorCode, RelaycastError } from '@relaycast/protocol';

/** Settings of `relaycast-relay start`, from a JSON config file and flags (flags win). */
export interface RelayConfig {
  tracker: string;
  allowOrigin: string[];
  keypair: string;
  region?: string | undefined;
  capacity?: number | undefined;
  pricePerGib?: string | undefined;
  cacheMaxBytes?: number | undefined;
  bindAddress?: string | undefined;
  rtcPort?: number | undefined;
  maxUploadBytesPerSec?: number | undefined;
  logLevel?: string | undefined;
}

const INT_KEYS = ['capacity', 'cacheMaxBytes', 'rtcPort', 'maxUploadBytesPerSec'] as const;
const STRING_KEYS = ['tracker', 'keypair', 'region', 'pricePerGib', 'bindAddress', 'logLevel'] as const;
const KNOWN = new Set<string>([...INT_KEYS, ...STRING_KEYS, 'allowOrigin']);

function invalid(message: string): RelaycastError {
  return new RelaycastError(ErrorCode.CONFIG_INVALID, message);
}

/** Reads and validates a JSON config file (same names as the flags, in camelCase). */
export async function readConfigFile(path: string): Promise<Partial<RelayConfig>> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new RelaycastError(ErrorCode.CONFIG_INVALID, `cannot read config file ${path}: ${(err as Error).message}`, { cause: err });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw invalid('config file must hold a JSON object');
  const raw = parsed as Record<string, unknown>;
  for (const key of Object.keys(raw)) if (!KNOWN.has(key)) throw invalid(`unknown config key "${key}"`);
  const out: Partial<RelayConfig> = {};
  for (const key of STRING_KEYS) {
    if (raw[key] === undefined) continue;
    if (typeof raw[key] !== 'string') throw invalid(`${key} must be a string`);
    out[key] = raw[key];
  }
  for (const key of INT_KEYS) {
    if (raw[key] === undefined) continue;
    out[key] = checkInt(raw[key], key);
  }
  if (raw['allowOrigin'] !== undefined) {
    const v = raw['allowOrigin'];
    if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) throw invalid('allowOrigin must be an array of URL prefixes');
    out.allowOrigin = v as string[];
  }
  return out;
}

export function checkInt(value: unknown, name: string): number {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw invalid(`${name} must be a non-negative integer`);
  return n;
}

/** Merges file and flag settings and checks that the required ones are present. */
export function resolveConfig(file: Partial<RelayConfig>, flags: Partial<RelayConfig>): RelayConfig {
  const merged: Partial<RelayConfig> = { ...file };
  for (const [k, v] of Object.entries(flags)) {
    if (v !== undefined && !(Array.isArray(v) && v.length === 0)) (merged as Record<string, unknown>)[k] = v;
  }
  if (merged.tracker === undefined) throw invalid('--tracker is required');
  if (merged.keypair === undefined) throw invalid('--keypair is required');
  if (merged.allowOrigin === undefined || merged.allowOrigin.length === 0) {
    throw invalid('at least one --allow-origin is required (a relay only fetches from origins it is told to)');
  }
  if (merged.pricePerGib !== undefined && !/^(0|[1-9][0-9]{0,19})$/.test(merged.pricePerGib)) {
    throw invalid('price-per-gib must be a non-negative integer of token base units');
  }
  return merged as RelayConfig;
}
