import { configInvalid, quote } from './config-error.js';

/**
 * How one setting's value is read and checked. The same `parse` takes a flag or environment string,
 * a JSON value from a config file, or an already typed value passed to a `start*()` function, and
 * returns the typed value (so `parse(parse(x))` is `parse(x)`). Every failure is
 * RC_ERR_CONFIG_INVALID whose message starts with `name`.
 */
export interface ValueType<T> {
  /** node:util parseArgs kind: `boolean` flags take no value. */
  readonly kind: 'string' | 'boolean';
  /** The flag is repeatable and the value a list (comma-separated in the environment). */
  readonly multiple: boolean;
  /** Placeholder of the value in USAGE: N, MS, URL, FILE, `ignore|keep`. */
  readonly metavar: string;
  /** Accepted range shown in USAGE (`1..65535`), when narrower than the type says. */
  readonly accepts: string | undefined;
  /** Unit of the value (`ms`, `bytes`), shown with defaults in USAGE. */
  readonly unit: string | undefined;
  parse: (raw: unknown, name: string) => T;
  /** The value as USAGE shows it (defaults). */
  format(value: T): string;
}

/** Everything a custom value type needs; `valueType` fills the rest. */
export interface ValueTypeSpec<T> {
  kind?: 'string' | 'boolean';
  multiple?: boolean;
  metavar: string;
  accepts?: string | undefined;
  unit?: string | undefined;
  parse: (raw: unknown, name: string) => T;
  format?: (value: T) => string;
}

/** A value type of one's own (a key, a PAYER=URL pair), with the defaults of the common fields. */
export function valueType<T>(spec: ValueTypeSpec<T>): ValueType<T> {
  return {
    kind: spec.kind ?? 'string',
    multiple: spec.multiple ?? false,
    metavar: spec.metavar,
    accepts: spec.accepts,
    unit: spec.unit,
    parse: spec.parse,
    format: spec.format ?? ((v) => (typeof v === 'string' ? v : JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x)))),
  };
}

/** Parses a flag that may be absent: undefined stays undefined. For bins without a settings table. */
export function parseValue<T>(type: ValueType<T>, raw: unknown, name: string): T | undefined {
  return raw === undefined ? undefined : type.parse(raw, name);
}

function rangeText(min: number | bigint, max: number | bigint, top: number | bigint): string {
  return max === top ? `of at least ${min}` : `in ${min}..${max}`;
}

export interface IntOptions {
  /** Smallest accepted value. Default: 0. */
  min?: number;
  /** Largest accepted value. Default: Number.MAX_SAFE_INTEGER. */
  max?: number;
  unit?: string;
  metavar?: string;
}

/** A safe integer within bounds: `--port`, `--capacity`, byte counts. */
export function int(options: IntOptions = {}): ValueType<number> {
  const min = options.min ?? 0;
  const max = options.max ?? Number.MAX_SAFE_INTEGER;
  const bounded = min !== 0 || max !== Number.MAX_SAFE_INTEGER;
  return valueType({
    metavar: options.metavar ?? 'N',
    accepts: bounded && max !== Number.MAX_SAFE_INTEGER ? `${min}..${max}` : undefined,
    unit: options.unit,
    parse(raw, name) {
      const n = typeof raw === 'string' && /^\s*[+-]?[0-9]+\s*$/.test(raw) ? Number(raw) : typeof raw === 'bigint' ? Number(raw) : raw;
      if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min || n > max) {
        throw configInvalid(`${name} must be an integer ${rangeText(min, max, Number.MAX_SAFE_INTEGER)} (got ${quote(raw)})`, { setting: name });
      }
      return n;
    },
    format: String,
  });
}

export interface FloatOptions {
  min?: number;
  max?: number;
  unit?: string;
  metavar?: string;
}

/** A finite number within bounds: a fraction, a health threshold. */
export function float(options: FloatOptions = {}): ValueType<number> {
  const min = options.min ?? -Number.MAX_VALUE;
  const max = options.max ?? Number.MAX_VALUE;
  return valueType({
    metavar: options.metavar ?? 'X',
    accepts: options.min !== undefined && options.max !== undefined ? `${min}..${max}` : undefined,
    unit: options.unit,
    parse(raw, name) {
      const n = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
      if (typeof n !== 'number' || !Number.isFinite(n) || n < min || n > max) {
        throw configInvalid(`${name} must be a number in ${min}..${max} (got ${quote(raw)})`, { setting: name });
      }
      return n;
    },
    format: String,
  });
}

/** Largest unsigned 64-bit integer: token amounts on Solana are u64. */
export const U64_MAX = 2n ** 64n - 1n;

export interface U64Options {
  min?: bigint;
  max?: bigint;
  unit?: string;
  metavar?: string;
}

/** An unsigned 64-bit integer as a bigint (token base units); a JSON file may give it as a string or a safe integer. */
export function u64(options: U64Options = {}): ValueType<bigint> {
  const min = options.min ?? 0n;
  const max = options.max ?? U64_MAX;
  return valueType({
    metavar: options.metavar ?? 'N',
    accepts: max !== U64_MAX ? `${min}..${max}` : undefined,
    unit: options.unit,
    parse(raw, name) {
      let n: bigint | undefined;
      if (typeof raw === 'bigint') n = raw;
      else if (typeof raw === 'string' && /^\s*[0-9]{1,20}\s*$/.test(raw)) n = BigInt(raw.trim());
      else if (typeof raw === 'number' && Number.isSafeInteger(raw)) n = BigInt(raw);
      if (n === undefined || n < min || n > max) {
        throw configInvalid(`${name} must be an integer ${rangeText(min, max, U64_MAX)} (got ${quote(raw)})`, { setting: name });
      }
      return n;
    },
    format: (v) => v.toString(),
  });
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

export interface DurationOptions {
  /** Shortest accepted duration in ms. Default: 0. */
  min?: number;
  /** Longest accepted duration in ms. Default: Number.MAX_SAFE_INTEGER. */
  max?: number;
  metavar?: string;
}

/**
 * A duration in milliseconds: an integer of ms (`1500`, a JSON number), or with a unit
 * (`500ms`, `10s`, `5m`, `1h`).
 */
export function durationMs(options: DurationOptions = {}): ValueType<number> {
  const min = options.min ?? 0;
  const max = options.max ?? Number.MAX_SAFE_INTEGER;
  return valueType({
    metavar: options.metavar ?? 'MS',
    accepts: max !== Number.MAX_SAFE_INTEGER ? `${min}..${max}` : undefined,
    unit: 'ms',
    parse(raw, name) {
      let ms: number | undefined;
      if (typeof raw === 'number') ms = raw;
      else if (typeof raw === 'string') {
        const m = /^\s*([0-9]+)\s*(ms|s|m|h)?\s*$/.exec(raw);
        if (m !== null) ms = Number(m[1]) * (DURATION_UNITS[m[2] ?? 'ms'] ?? 1);
      }
      if (ms === undefined || !Number.isSafeInteger(ms) || ms < min || ms > max) {
        throw configInvalid(
          `${name} must be a duration in ms ${rangeText(min, max, Number.MAX_SAFE_INTEGER)} (got ${quote(raw)}; units ms, s, m, h are accepted)`,
          {
            setting: name,
          },
        );
      }
      return ms;
    },
    format: String,
  });
}

const HIERARCHICAL = new Set(['http:', 'https:', 'ws:', 'wss:', 'ftp:', 'file:']);

export interface UrlOptions {
  /** Accepted schemes with their colon: `['ws:', 'wss:']`. */
  protocols: readonly string[];
  metavar?: string;
}

/** An absolute URL with one of the allowed protocols; the value stays the string given. */
export function url(options: UrlOptions): ValueType<string> {
  const names = options.protocols.map((p) => (HIERARCHICAL.has(p) ? `${p}//` : p));
  const list = names.length === 1 ? `${names[0]}` : `${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}`;
  // Read aloud, letters such as h (aitch), f (eff) and s (ess) start with a vowel: "an http:// URL".
  const expected = `${/^[aefhilmnorsx]/.test(list) ? 'an' : 'a'} ${list} URL`;
  return valueType({
    metavar: options.metavar ?? 'URL',
    accepts: undefined,
    parse(raw, name) {
      let u: URL | undefined;
      if (typeof raw === 'string') {
        try {
          u = new URL(raw.trim());
        } catch {
          u = undefined;
        }
      }
      if (u === undefined || !options.protocols.includes(u.protocol)) throw configInvalid(`${name} must be ${expected} (got ${quote(raw)})`, { setting: name });
      return (raw as string).trim();
    },
  });
}

/** One of a fixed list of words: `--cache-key-query ignore|keep`, `--log-level`. */
export function enumOf<const V extends readonly string[]>(values: V): ValueType<V[number]> {
  return valueType({
    metavar: values.join('|'),
    parse(raw, name) {
      if (typeof raw !== 'string' || !values.includes(raw.trim()))
        throw configInvalid(`${name} must be one of ${values.join(', ')} (got ${quote(raw)})`, { setting: name });
      return raw.trim() as V[number];
    },
  });
}

export interface TextOptions {
  metavar?: string;
  /** The whole value must match. */
  pattern?: RegExp;
  /** Another check, for what a pattern cannot say (an IP address, a base58 key). */
  check?: (value: string) => boolean;
  /** What is expected, for the error: `at most 32 characters of [a-z0-9-]`. */
  expected?: string;
  /** Accept '' (which otherwise means "not given" in the environment and is refused elsewhere). Default: false. */
  allowEmpty?: boolean;
  /** Never quote the value in errors (tokens, secrets). Default: false. */
  secret?: boolean;
}

/** A string: a path, a label, a token. Surrounding spaces are trimmed. */
export function text(options: TextOptions = {}): ValueType<string> {
  return valueType({
    metavar: options.metavar ?? 'TEXT',
    parse(raw, name) {
      const s = typeof raw === 'string' ? raw.trim() : undefined;
      const ok = s !== undefined && (s !== '' || options.allowEmpty === true) && (options.pattern?.test(s) ?? true) && (options.check?.(s) ?? true);
      if (!ok) {
        const got = options.secret === true ? '' : ` (got ${quote(raw)})`;
        throw configInvalid(`${name} must be ${options.expected ?? (typeof raw === 'string' ? 'a non-empty string' : 'a string')}${got}`, { setting: name });
      }
      return s;
    },
  });
}

/** An on/off switch: a flag without value, `true`/`false`/`1`/`0` in the environment, a JSON boolean. */
export function bool(): ValueType<boolean> {
  return valueType({
    kind: 'boolean',
    metavar: '',
    parse(raw, name) {
      if (typeof raw === 'boolean') return raw;
      const s = typeof raw === 'string' ? raw.trim().toLowerCase() : undefined;
      if (s === 'true' || s === '1') return true;
      if (s === 'false' || s === '0') return false;
      throw configInvalid(`${name} must be true or false (got ${quote(raw)})`, { setting: name });
    },
    format: (v) => (v ? 'on' : 'off'),
  });
}

/** A list given as an array (flags, JSON) or one comma-separated string (environment). */
export function toList(raw: unknown, name: string): unknown[] {
  if (Array.isArray(raw)) return raw;
  if (typeof raw === 'string')
    return raw
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
  throw configInvalid(`${name} must be a list (got ${quote(raw)})`, { setting: name });
}

export interface ListOptions {
  /** Fewest items. Default: 0. */
  min?: number;
  /** Most items. Default: unbounded. */
  max?: number;
}

/** A repeatable flag: each item checked by `item`. */
export function listOf<T>(item: ValueType<T>, options: ListOptions = {}): ValueType<T[]> {
  const min = options.min ?? 0;
  const max = options.max ?? Number.MAX_SAFE_INTEGER;
  return valueType({
    multiple: true,
    metavar: item.metavar,
    unit: item.unit,
    parse(raw, name) {
      const list = toList(raw, name);
      if (list.length < min) throw configInvalid(min === 1 ? `${name} is required (at least one)` : `${name} needs at least ${min} values`, { setting: name });
      if (list.length > max) throw configInvalid(`${name} takes at most ${max} values`, { setting: name });
      return list.map((v) => item.parse(v, name));
    },
    format: (v) => (v.length === 0 ? 'none' : v.map((x) => item.format(x)).join(', ')),
  });
}
