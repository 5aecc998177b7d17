import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { dirname, join } from 'node:path';
import { ErrorCode, RelaycastError, decodePublicKey } from '@relaycast/protocol';
import { DEFAULT_RECEIPTS_DB_FILE } from '../constants.js';
import { parseSegmentFault } from '../testing/faulty-segment-source.js';

/**
 * Settings of `relaycast-relay start`, from three places; a later one wins for each setting:
 *   1. a JSON config file (`--config FILE`) with the flags' names in camelCase;
 *   2. environment variables `RELAYCAST_<NAME>` (`RELAYCAST_TRACKER`, `RELAYCAST_STATUS_PORT`, ...;
 *      list settings comma-separated: `RELAYCAST_ALLOW_ORIGIN=https://a/,https://b/`);
 *   3. the flags themselves.
 * Everything is validated here, before anything starts.
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
  /** `--log-format json|pretty`: JSON lines (for collectors) or coloured text (for terminals). Default: 'json'. */
  logFormat?: string | undefined;
  /** `--map-port`: map --rtc-port (UDP) on the home router over UPnP IGD or NAT-PMP and keep it mapped; needs --rtc-port. Flag only for now. Default: false. */
  mapPort?: boolean | undefined;
  /** `--map-port-ttl-ms N`: lease asked of the router; renewed at half. Flag only. Default: DEFAULT_PORT_MAPPING_TTL_MS (10 min). */
  mapPortTtlMs?: number | undefined;
  /** `--test-fault MODE[:N]`: TEST ONLY, serve corrupted segments (flip|truncate|extend, every N-th). Flag only, not read from config files. Default: none. */
  testFault?: string | undefined;
  /** `--accept-payer PAYER=SETTLER_URL` (repeatable): payers whose grants the relay accepts and where to redeem. Default: none (a free relay). */
  acceptPayer?: string[] | undefined;
  /** `--rpc-url URL`: Solana JSON-RPC URL for payouts. Default: none (receipts are kept, nothing is redeemed automatically). */
  rpcUrl?: string | undefined;
  /** `--db FILE`: receipt database. Default: DEFAULT_RECEIPTS_DB_FILE ('relay-receipts.sqlite') beside the keypair file. */
  db?: string | undefined;
  /** `--credit-limit-bytes N`: unreceipted bytes a paying session may owe. Default: DEFAULT_CREDIT_LIMIT_BYTES (32 MiB). */
  creditLimitBytes?: number | undefined;
  /** `--unbound-credit-bytes N`: bytes a channel may take before it binds to a paid session. Default: DEFAULT_UNBOUND_CREDIT_BYTES (4 MiB). */
  unboundCreditBytes?: number | undefined;
  /** `--trusted-tracker KEY` (repeatable): base58 tracker keys whose assignments bind sessions, besides the relay's own tracker's key (learned at registration). Default: none. */
  trustedTracker?: string[] | undefined;
  /** `--redeem-threshold N`: owed base units that trigger a redemption (a JSON string or integer). Default: DEFAULT_REDEEM_THRESHOLD (1,000,000). */
  redeemThreshold?: string | undefined;
  /** `--redeem-interval-ms N`: how often the threshold is checked. Default: DEFAULT_REDEEM_INTERVAL_MS (60 s). */
  redeemIntervalMs?: number | undefined;
  /**
   * `--cache-key-query ignore|keep`: whether a segment URL's query string is part of the cache key.
   * 'ignore' (default): one entry per path, fetched with the first requester's URL; 'keep': one per
   * full URL (UNSAFE: each new query pulls the segment from the origin again). Default: 'ignore'.
   */
  cacheKeyQuery?: string | undefined;
  /** `--origin-bytes-per-sec N`: relay-wide origin fetch rate; 0 = unlimited. Default: DEFAULT_ORIGIN_RELAY_BYTES_PER_SEC (32 MiB/s). */
  originBytesPerSec?: number | undefined;
  /** `--origin-burst-bytes N`: relay-wide origin burst. Default: DEFAULT_ORIGIN_RELAY_BURST_BYTES (128 MiB). */
  originBurstBytes?: number | undefined;
  /** `--channel-origin-bytes-per-sec N`: origin bytes one channel's cache misses may cause per second; 0 = unlimited. Default: DEFAULT_ORIGIN_CHANNEL_BYTES_PER_SEC (4 MiB/s). */
  channelOriginBytesPerSec?: number | undefined;
  /** `--channel-origin-burst-bytes N`: one channel's origin burst. Default: DEFAULT_ORIGIN_CHANNEL_BURST_BYTES (32 MiB). */
  channelOriginBurstBytes?: number | undefined;
  /** `--allow-private-candidates`: accept viewers' ICE candidates in private ranges (office LANs). Default: false. */
  allowPrivateCandidates?: boolean | undefined;
  /** `--max-pending-peers N`: viewers negotiating at once. Default: DEFAULT_MAX_PENDING_PEERS (64). */
  maxPendingPeers?: number | undefined;
  /** `--max-pending-peers-per-viewer N`: connections one viewer may have negotiating at once. Default: DEFAULT_MAX_PENDING_PEERS_PER_VIEWER (2). */
  maxPendingPeersPerViewer?: number | undefined;
}

/** Settings of `relaycast-relay redeem` (flags only). */
export interface RedeemConfig {
  /** `--keypair FILE`: the relay's Solana CLI keypair file (must exist). Required. */
  keypair: string;
  /** `--accept-payer PAYER=SETTLER_URL` (repeatable), at least one. Required. */
  acceptPayer: string[];
  /** `--rpc-url URL`. Required. */
  rpcUrl: string;
  /** `--db FILE`. Default: DEFAULT_RECEIPTS_DB_FILE beside the keypair file. */
  db?: string | undefined;
  /** `--log-level L`. Default: 'warn' (stdout carries the JSON result). */
  logLevel?: string | undefined;
}

/** Settings of `relaycast-relay status`: flags, then RELAYCAST_* variables, then the config file. */
export interface StatusConfig {
  statusPort: number;
  rpcUrl?: string | undefined;
  acceptPayer?: string[] | undefined;
  /** Print the raw JSON instead of text. */
  json: boolean;
}

export type CliCommand =
  | { command: 'help' }
  | { command: 'start'; config: RelayConfig }
  | { command: 'redeem'; config: RedeemConfig }
  | { command: 'status'; config: StatusConfig };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const MAX_CAPACITY = 1_000_000;
const STRING_KEYS = ['tracker', 'keypair', 'region', 'pricePerGib', 'bindAddress', 'logLevel', 'logFormat', 'rpcUrl', 'db', 'redeemThreshold', 'cacheKeyQuery'] as const;
export const LOG_FORMATS = ['json', 'pretty'] as const;
const INT_KEYS = ['capacity', 'cacheMaxBytes', 'rtcPort', 'statusPort', 'maxUploadBytesPerSec', 'creditLimitBytes', 'redeemIntervalMs', 'unboundCreditBytes', 'originBytesPerSec', 'originBurstBytes', 'channelOriginBytesPerSec', 'channelOriginBurstBytes', 'maxPendingPeers', 'maxPendingPeersPerViewer'] as const;
const LIST_KEYS = ['allowOrigin', 'acceptPayer', 'trustedTracker'] as const;
const BOOL_KEYS = ['allowPrivateCandidates'] as const;
const KNOWN_KEYS = new Set<string>([...STRING_KEYS, ...INT_KEYS, ...LIST_KEYS, ...BOOL_KEYS]);
export const CACHE_KEY_QUERY_VALUES = ['ignore', 'keep'] as const;
const U64_RE = /^(0|[1-9][0-9]{0,19})$/;

/** The receipt database path: `db`, else the default file beside the keypair. */
export function receiptsDbPath(config: { db?: string | undefined; keypair: string }): string {
  return config.db ?? join(dirname(config.keypair), DEFAULT_RECEIPTS_DB_FILE);
}

/** Parses `--accept-payer PAYER=URL` values into payer id → settler URL; RC_ERR_CONFIG_INVALID on anything else. */
export function parseAcceptedPayers(values: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const v of values) {
    const at = v.indexOf('=');
    const payer = at < 0 ? v : v.slice(0, at);
    const url = at < 0 ? '' : v.slice(at + 1);
    try {
      decodePublicKey(payer);
    } catch {
      throw invalid(`--accept-payer "${v}": the payer must be a base58 public key`);
    }
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw invalid(`--accept-payer "${v}": expected PAYER=SETTLER_URL`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw invalid(`--accept-payer "${v}": the settler URL must be http:// or https://`);
    if (out.has(payer)) throw invalid(`--accept-payer: payer ${payer} is given twice`);
    out.set(payer, url);
  }
  return out;
}

function checkRpcUrl(url: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw invalid(`--rpc-url "${url}" is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw invalid('--rpc-url must be an http:// or https:// URL');
}

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
    if ((key === 'pricePerGib' || key === 'redeemThreshold') && typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) out[key] = String(v);
    else if (typeof v === 'string') out[key] = v;
    else throw invalid(`${where}: ${key} must be a string`);
  }
  for (const key of INT_KEYS) {
    if (raw[key] === undefined) continue;
    if (typeof raw[key] !== 'number') throw invalid(`${where}: ${key} must be a number`);
    out[key] = toInt(raw[key], `${where}: ${key}`);
  }
  for (const key of LIST_KEYS) {
    const v = raw[key];
    if (v === undefined) continue;
    const list = typeof v === 'string' ? [v] : v;
    if (!Array.isArray(list) || !list.every((s) => typeof s === 'string')) throw invalid(`${where}: ${key} must be an array of strings`);
    out[key] = list as string[];
  }
  for (const key of BOOL_KEYS) {
    const v = raw[key];
    if (v === undefined) continue;
    if (typeof v !== 'boolean') throw invalid(`${where}: ${key} must be true or false`);
    out[key] = v;
  }
  return out;
}

/** `allowOrigin` → `RELAYCAST_ALLOW_ORIGIN`. */
function envName(key: string): string {
  return `RELAYCAST_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

/** Settings from `RELAYCAST_*` environment variables (unknown ones are ignored: the environment is shared). */
export function configFromEnv(env: NodeJS.ProcessEnv): Partial<RelayConfig> {
  const out: Partial<RelayConfig> = {};
  for (const key of STRING_KEYS) {
    const v = env[envName(key)];
    if (v !== undefined && v !== '') out[key] = v;
  }
  for (const key of INT_KEYS) {
    const v = env[envName(key)];
    if (v !== undefined && v !== '') out[key] = toInt(v, envName(key));
  }
  for (const key of LIST_KEYS) {
    const v = env[envName(key)];
    if (v !== undefined && v !== '') out[key] = v.split(',').map((x) => x.trim()).filter((x) => x !== '');
  }
  for (const key of BOOL_KEYS) {
    const v = env[envName(key)]?.trim().toLowerCase();
    if (v === undefined || v === '') continue;
    if (v === '1' || v === 'true') out[key] = true;
    else if (v === '0' || v === 'false') out[key] = false;
    else throw invalid(`${envName(key)} must be true, false, 1 or 0`);
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
  if (merged.logFormat !== undefined && !(LOG_FORMATS as readonly string[]).includes(merged.logFormat)) {
    throw invalid(`--log-format must be one of ${LOG_FORMATS.join(', ')}`);
  }
  if (merged.acceptPayer !== undefined) parseAcceptedPayers(merged.acceptPayer);
  if (merged.rpcUrl !== undefined) checkRpcUrl(merged.rpcUrl);
  if (merged.db !== undefined && merged.db.trim() === '') throw invalid('--db must be a file path');
  if (merged.creditLimitBytes !== undefined && merged.creditLimitBytes <= 0) throw invalid('--credit-limit-bytes must be a positive integer');
  if (merged.unboundCreditBytes !== undefined && merged.unboundCreditBytes <= 0) throw invalid('--unbound-credit-bytes must be a positive integer');
  for (const k of merged.trustedTracker ?? []) {
    try {
      decodePublicKey(k);
    } catch {
      throw invalid(`--trusted-tracker "${k}" is not a base58 public key`);
    }
  }
  if (merged.redeemThreshold !== undefined && !U64_RE.test(merged.redeemThreshold)) throw invalid('--redeem-threshold must be a non-negative integer of token base units');
  if (merged.redeemIntervalMs !== undefined && merged.redeemIntervalMs < 100) throw invalid('--redeem-interval-ms must be at least 100');
  if (merged.cacheKeyQuery !== undefined && !(CACHE_KEY_QUERY_VALUES as readonly string[]).includes(merged.cacheKeyQuery)) {
    throw invalid(`--cache-key-query must be one of ${CACHE_KEY_QUERY_VALUES.join(', ')}`);
  }
  if (merged.originBurstBytes === 0 && merged.originBytesPerSec !== 0) throw invalid('--origin-burst-bytes must be positive (or --origin-bytes-per-sec 0)');
  if (merged.channelOriginBurstBytes === 0 && merged.channelOriginBytesPerSec !== 0) {
    throw invalid('--channel-origin-burst-bytes must be positive (or --channel-origin-bytes-per-sec 0)');
  }
  if (merged.maxPendingPeers !== undefined && (merged.maxPendingPeers < 1 || merged.maxPendingPeers > 100_000)) throw invalid('--max-pending-peers must be 1-100000');
  if (merged.maxPendingPeersPerViewer !== undefined && merged.maxPendingPeersPerViewer < 1) throw invalid('--max-pending-peers-per-viewer must be at least 1');
  return merged as RelayConfig;
}

/** Parses `relaycast-relay` arguments (without node and script) into a command with a validated config. */
export async function parseCliArgs(argv: string[], signal?: AbortSignal, env: NodeJS.ProcessEnv = process.env): Promise<CliCommand> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') return { command: 'help' };
  if (command === 'redeem') return parseRedeemArgs(rest);
  if (command === 'status') return parseStatusArgs(rest, signal, env);
  if (command !== 'start') throw invalid(`unknown command "${command}" (expected "start", "status" or "redeem")`);
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
        'log-format': { type: 'string' },
        'test-fault': { type: 'string' },
        'map-port': { type: 'boolean' },
        'map-port-ttl-ms': { type: 'string' },
        'accept-payer': { type: 'string', multiple: true },
        'rpc-url': { type: 'string' },
        db: { type: 'string' },
        'credit-limit-bytes': { type: 'string' },
        'unbound-credit-bytes': { type: 'string' },
        'trusted-tracker': { type: 'string', multiple: true },
        'redeem-threshold': { type: 'string' },
        'redeem-interval-ms': { type: 'string' },
        'cache-key-query': { type: 'string' },
        'origin-bytes-per-sec': { type: 'string' },
        'origin-burst-bytes': { type: 'string' },
        'channel-origin-bytes-per-sec': { type: 'string' },
        'channel-origin-burst-bytes': { type: 'string' },
        'allow-private-candidates': { type: 'boolean' },
        'max-pending-peers': { type: 'string' },
        'max-pending-peers-per-viewer': { type: 'string' },
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
  const configPath = values.config ?? env['RELAYCAST_CONFIG'];
  const file = configPath === undefined || configPath === '' ? {} : await readConfigFile(configPath, signal);
  const config = resolveConfig({ ...file, ...configFromEnv(env) }, {
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
    logFormat: values['log-format'],
    acceptPayer: values['accept-payer'],
    rpcUrl: values['rpc-url'],
    db: values.db,
    creditLimitBytes: int(values['credit-limit-bytes'], 'credit-limit-bytes'),
    unboundCreditBytes: int(values['unbound-credit-bytes'], 'unbound-credit-bytes'),
    trustedTracker: values['trusted-tracker'],
    redeemThreshold: values['redeem-threshold'],
    redeemIntervalMs: int(values['redeem-interval-ms'], 'redeem-interval-ms'),
    cacheKeyQuery: values['cache-key-query'],
    originBytesPerSec: int(values['origin-bytes-per-sec'], 'origin-bytes-per-sec'),
    originBurstBytes: int(values['origin-burst-bytes'], 'origin-burst-bytes'),
    channelOriginBytesPerSec: int(values['channel-origin-bytes-per-sec'], 'channel-origin-bytes-per-sec'),
    channelOriginBurstBytes: int(values['channel-origin-burst-bytes'], 'channel-origin-burst-bytes'),
    allowPrivateCandidates: values['allow-private-candidates'],
    maxPendingPeers: int(values['max-pending-peers'], 'max-pending-peers'),
    maxPendingPeersPerViewer: int(values['max-pending-peers-per-viewer'], 'max-pending-peers-per-viewer'),
  });
  if (values['map-port'] === true) {
    if (config.rtcPort === undefined) throw new RelaycastError(ErrorCode.CONFIG_INVALID, '--map-port needs --rtc-port (the one UDP port to map)');
    config.mapPort = true;
  }
  const ttl = int(values['map-port-ttl-ms'], 'map-port-ttl-ms');
  if (ttl !== undefined) {
    if (config.mapPort !== true) throw new RelaycastError(ErrorCode.CONFIG_INVALID, '--map-port-ttl-ms needs --map-port');
    if (ttl < 2_000 || ttl > 7 * 86_400_000) throw new RelaycastError(ErrorCode.CONFIG_INVALID, '--map-port-ttl-ms must be 2000 to 604800000');
    config.mapPortTtlMs = ttl;
  }
  if (values['test-fault'] !== undefined) {
    parseSegmentFault(values['test-fault']); // refuse a bad value before anything starts
    config.testFault = values['test-fault'];
  }
  return { command: 'start', config };
}

function parseRedeemArgs(args: string[]): CliCommand {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        keypair: { type: 'string' },
        'accept-payer': { type: 'string', multiple: true },
        'rpc-url': { type: 'string' },
        db: { type: 'string' },
        'log-level': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new RelaycastError(ErrorCode.CONFIG_INVALID, (err as Error).message, { cause: err });
  }
  if (values.help === true) return { command: 'help' };
  if (values.keypair === undefined || values.keypair.trim() === '') throw invalid('--keypair is required');
  const acceptPayer = values['accept-payer'] ?? [];
  if (acceptPayer.length === 0) throw invalid('at least one --accept-payer PAYER=SETTLER_URL is required');
  parseAcceptedPayers(acceptPayer);
  const rpcUrl = values['rpc-url'];
  if (rpcUrl === undefined) throw invalid('--rpc-url is required');
  checkRpcUrl(rpcUrl);
  if (values.db !== undefined && values.db.trim() === '') throw invalid('--db must be a file path');
  const logLevel = values['log-level'];
  if (logLevel !== undefined && !(LOG_LEVELS as readonly string[]).includes(logLevel)) throw invalid(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
  const config: RedeemConfig = { keypair: values.keypair, acceptPayer, rpcUrl };
  if (values.db !== undefined) config.db = values.db;
  if (logLevel !== undefined) config.logLevel = logLevel;
  return { command: 'redeem', config };
}

async function parseStatusArgs(args: string[], signal: AbortSignal | undefined, env: NodeJS.ProcessEnv): Promise<CliCommand> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        'status-port': { type: 'string' },
        config: { type: 'string' },
        'rpc-url': { type: 'string' },
        'accept-payer': { type: 'string', multiple: true },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new RelaycastError(ErrorCode.CONFIG_INVALID, (err as Error).message, { cause: err });
  }
  if (values.help === true) return { command: 'help' };
  const configPath = values.config ?? env['RELAYCAST_CONFIG'];
  const merged = { ...(configPath === undefined || configPath === '' ? {} : await readConfigFile(configPath, signal)), ...configFromEnv(env) };
  const statusPort = values['status-port'] === undefined ? merged.statusPort : toInt(values['status-port'], '--status-port');
  if (statusPort === undefined || statusPort < 1 || statusPort > 65535) {
    throw invalid('status needs the running relay\'s status port: --status-port N (or statusPort in the config file, or RELAYCAST_STATUS_PORT)');
  }
  const rpcUrl = values['rpc-url'] ?? merged.rpcUrl;
  if (rpcUrl !== undefined) checkRpcUrl(rpcUrl);
  const acceptPayer = values['accept-payer'] ?? merged.acceptPayer;
  if (acceptPayer !== undefined) parseAcceptedPayers(acceptPayer);
  return { command: 'status', config: { statusPort, rpcUrl, acceptPayer, json: values.json === true } };
}
