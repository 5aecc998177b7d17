import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { ErrorCode, RelaycastError } from '@relaycast/protocol';
import { parseSegmentFault } from './faulty-segment-source.js';

/**
 * Settings of `relaycast-relay start`: a JSON config file with the flags' names in camelCase,
 * overridden by the flags themselves. Everything is validated here, before anything starts.
 */
export interface RelayConfig {
  /** `--tracker URL`: tracker WebSocket URL (ws:// or wss://). Required. */
  tracker: string;
  /** `--allow-origin PREFIX` (repeatable): origin URL prefixes the relay may fetch from. Required, at least one. */
  allowOrigin: string[];
  /** `--keypair FILE`: Solana CLI keypair file, created (0600) when missing. Required. */
  keypair: string;
  /** `--region R`: region label advertised to the tracker. Default: DEFAULT_REGION (''). */
  region?: string | undefined;
  /** `--capacity N`: concurrent viewers advertised. Default: DEFAULT_CAPACITY (100). */
  capacity?: number | undefined;
  /** `--price-per-gib N`: advertised price in token base units per GiB (a JSON string or integer). Default: DEFAULT_PRICE_PER_GIB ('0'). */
  pricePerGib?: string | undefined;
  /** `--cache-max-bytes N`: segment cache size. Default: DEFAULT_CACHE_MAX_BYTES (256 MiB). */
  cacheMaxBytes?: number | undefined;
  /** `--bind-address ADDR`: IP address WebRTC binds to. Default: all interfaces. */
  bindAddress?: string | undefined;
  /** `--rtc-port N`: one UDP port for every viewer. Default: ephemeral ports. */
  rtcPort?: number | undefined;
  /** `--status-port N`: local HTTP status interface on 127.0.0.1 (0 = any free port). Default: none. */
  statusPort?: number | undefined;
  /** `--max-upload-bytes-per-sec N`: relay-wide upload cap; 0 = unlimited. Default: 0. */
  maxUploadBytesPerSec?: number | undefined;
  /** `--log-level L`: pino level. Default: DEFAULT_LOG_LEVEL ('info'). */
  logLevel?: string | undefined;
  /** `--test-fault MODE[:N]`: TEST ONLY, serve corrupted segments (flip|truncate|extend, every N-th). Flag only, not read from config files. Default: none. */
  testFault?: string | undefined;
}

export type CliCommand = { command: 'help' } | { command: 'start'; config: RelayConfig };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const MAX_CAPACITY = 1_000_000;
const STRING_KEYS = ['tracker', 'keypair', 'region', 'pricePerGib', 'bindAddress', 'logLevel'] as const;
const INT_KEYS = ['capacity', 'cacheMaxBytes', 'rtcPort', 'statusPort', 'maxUploadBytesPerSec'] as const;
const KNOWN_KEYS = new Set<string>([...STRING_KEYS, ...INT_KEYS, 'allowOrigin']);

function invalid(message: string): RelaycastError {
  return new RelaycastError(ErrorCode.CONFIG_INVALID, message);
}

/** Parses a non-negative integer given as a flag string or a JSON number. */
function toInt(value: unknown, name: string): number {
  const n = typeof value === 'string' && /^[0-9]+$/.test(value.trim()) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw invalid(`${name} must be a non-negative integer`);
  return n;
}

/** Reads a JSON config file; unknown keys are refused so a typo never silently falls back to a default. */
export async function readConfigFile(path: string, signal?: AbortSignal): Promise<Partial<RelayConfig>> {
  let text: string;
  try {
    text = await readFile(path, { encoding: 'utf8', signal });
  } catch (err) {
    throw new RelaycastError(ErrorCode.CONFIG_INVALID, `cannot read config file ${path}: ${(err as Error).message}`, { cause: err });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new RelaycastError(ErrorCode.CONFIG_INVALID, `config file ${path} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  return configFromJson(parsed, path);
}

/** Checks the shape of a parsed config file (values are validated with the flags in resolveConfig). */
export function configFromJson(parsed: unknown, where = 'config file'): Partial<RelayConfig> {
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw invalid(`${where} must hold a JSON object`);
  const raw = parsed as Record<string, unknown>;
  for (const key of Object.keys(raw)) {
    if (!KNOWN_KEYS.has(key)) throw invalid(`${where}: unknown key "${key}" (known: ${[...KNOWN_KEYS].join(', ')})`);
  }
  const out: Partial<RelayConfig> = {};
  for (const key of STRING_KEYS) {
    const v = raw[key];
    if (v === undefined) continue;
    if (key === 'pricePerGib' && typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) out.pricePerGib = String(v);
    else if (typeof v === 'string') out[key] = v;
    else throw invalid(`${where}: ${key} must be a string`);
  }
  for (const key of INT_KEYS) {
    if (raw[key] === undefined) continue;
    if (typeof raw[key] !== 'number') throw invalid(`${where}: ${key} must be a number`);
    out[key] = toInt(raw[key], `${where}: ${key}`);
  }
  if (raw['allowOrigin'] !== undefined) {
    const v = raw['allowOrigin'];
    const list = typeof v === 'string' ? [v] : v;
    if (!Array.isArray(list) || !list.every((s) => typeof s === 'string')) throw invalid(`${where}: allowOrigin must be an array of URL prefixes`);
    out.allowOrigin = list as string[];
  }
  return out;
}

/** Merges file and flag settings (flags win; repeated --allow-origin replaces the file's list) and validates the result. */
export function resolveConfig(file: Partial<RelayConfig>, flags: Partial<RelayConfig>): RelayConfig {
  const merged: Partial<RelayConfig> = { ...file };
  for (const [k, v] of Object.entries(flags)) {
    if (v !== undefined && !(Array.isArray(v) && v.length === 0)) (merged as Record<string, unknown>)[k] = v;
  }
  if (merged.tracker === undefined) throw invalid('--tracker is required');
  let trackerUrl: URL;
  try {
    trackerUrl = new URL(merged.tracker);
  } catch {
    throw invalid(`--tracker "${merged.tracker}" is not a URL`);
  }
  if (trackerUrl.protocol !== 'ws:' && trackerUrl.protocol !== 'wss:') throw invalid('--tracker must be a ws:// or wss:// URL');

  if (merged.allowOrigin === undefined || merged.allowOrigin.length === 0) {
    throw invalid('at least one --allow-origin is required (a relay only fetches from origins it is told to)');
  }
  for (const prefix of merged.allowOrigin) {
    let u: URL;
    try {
      u = new URL(prefix);
    } catch {
      throw invalid(`--allow-origin "${prefix}" is not a URL`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw invalid(`--allow-origin "${prefix}" must be an http:// or https:// URL`);
  }

  if (merged.keypair === undefined || merged.keypair.trim() === '') throw invalid('--keypair is required');
  if (merged.region !== undefined && !/^[a-z0-9-]{0,32}$/.test(merged.region)) throw invalid('--region must be at most 32 characters of [a-z0-9-]');
  if (merged.capacity !== undefined && merged.capacity > MAX_CAPACITY) throw invalid(`--capacity must be at most ${MAX_CAPACITY}`);
  if (merged.pricePerGib !== undefined && !/^(0|[1-9][0-9]{0,19})$/.test(merged.pricePerGib)) {
    throw invalid('--price-per-gib must be a non-negative integer of token base units');
  }
  if (merged.bindAddress !== undefined && isIP(merged.bindAddress) === 0) throw invalid(`--bind-address "${merged.bindAddress}" is not an IP address`);
  if (merged.rtcPort !== undefined && (merged.rtcPort < 1 || merged.rtcPort > 65535)) throw invalid('--rtc-port must be 1-65535');
  if (merged.statusPort !== undefined && merged.statusPort > 65535) throw invalid('--status-port must be 0-65535');
  if (merged.logLevel !== undefined && !(LOG_LEVELS as readonly string[]).includes(merged.logLevel)) {
    throw invalid(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
  }
  return merged as RelayConfig;
}

/** Parses `relaycast-relay` arguments (without node and script) into a command with a validated config. */
export async function parseCliArgs(argv: string[], signal?: AbortSignal): Promise<CliCommand> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') return { command: 'help' };
  if (command !== 'start') throw invalid(`unknown command "${command}" (expected "start")`);
  let values;
  try {
    ({ values } = parseArgs({
      args: rest,
      options: {
        tracker: { type: 'string' },
        'allow-origin': { type: 'string', multiple: true },
        keypair: { type: 'string' },
        config: { type: 'string' },
        region: { type: 'string' },
        capacity: { type: 'string' },
        'price-per-gib': { type: 'string' },
        'cache-max-bytes': { type: 'string' },
        'bind-address': { type: 'string' },
        'rtc-port': { type: 'string' },
        'status-port': { type: 'string' },
        'max-upload-bytes-per-sec': { type: 'string' },
        'log-level': { type: 'string' },
        'test-fault': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new RelaycastError(ErrorCode.CONFIG_INVALID, (err as Error).message, { cause: err });
  }
  if (values.help === true) return { command: 'help' };
  const int = (v: string | undefined, flag: string): number | undefined => (v === undefined ? undefined : toInt(v, `--${flag}`));
  const file = values.config === undefined ? {} : await readConfigFile(values.config, signal);
  const config = resolveConfig(file, {
    tracker: values.tracker,
    allowOrigin: values['allow-origin'],
    keypair: values.keypair,
    region: values.region,
    capacity: int(values.capacity, 'capacity'),
    pricePerGib: values['price-per-gib'],
    cacheMaxBytes: int(values['cache-max-bytes'], 'cache-max-bytes'),
    bindAddress: values['bind-address'],
    rtcPort: int(values['rtc-port'], 'rtc-port'),
    statusPort: int(values['status-port'], 'status-port'),
    maxUploadBytesPerSec: int(values['max-upload-bytes-per-sec'], 'max-upload-bytes-per-sec'),
    logLevel: values['log-level'],
  });
  if (values['test-fault'] !== undefined) {
    parseSegmentFault(values['test-fault']); // refuse a bad value before anything starts
    config.testFault = values['test-fault'];
  }
  return { command: 'start', config };
}
