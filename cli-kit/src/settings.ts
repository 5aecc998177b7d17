import { readFile } from 'node:fs/promises';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { configInvalid, quote } from './config-error.js';
import type { ValueType } from './values.js';

/**
 * One setting, declared once: where it is read from (flag, environment variable, config-file key),
 * how it is checked, its default and its help. Everything else (the parseArgs table, the readers,
 * USAGE, the validation of `start*()` options) is generated from these entries.
 */
export interface Setting<T> {
  /** Parser and bounds (values.ts): `int({ min: 1, max: 65_535 })`, `url({ protocols: ['wss:'] })`. */
  readonly type: ValueType<T>;
  /** Flag name without the dashes: `rtc-port`. */
  readonly flag: string;
  /** One-letter alias: `h`. Default: none. */
  readonly short?: string;
  /** Environment variable. Default: the table's prefix and the flag in upper snake case (`RELAYCAST_RTC_PORT`); false: none. */
  readonly env?: string | false;
  /** Read from the config file under the table key. Default: true. */
  readonly file?: boolean;
  /** Value when the setting is not given. Default: none (the setting stays undefined). */
  readonly default?: T;
  /** USAGE text for a default that is not a value (`ephemeral ports`, `beside the keypair`). */
  readonly defaultText?: string;
  /** Refused when missing. Default: false. */
  readonly required?: boolean;
  /** Unit shown with the default (`bytes`, `ms`). Default: the type's. */
  readonly unit?: string;
  /** One line or two of help; bounds, default and unit are added from the fields above. */
  readonly help: string;
  /** USAGE section. Default: the first, untitled one. */
  readonly group?: string;
  /** Placeholder in USAGE. Default: the type's (`N`, `URL`). */
  readonly metavar?: string;
}

// The table's entries have different value types; `any` here is narrowed back per key by SettingValue.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type SettingsSpec = Readonly<Record<string, Setting<any>>>;

/** The value type of one entry. */
export type SettingValue<E> = E extends { readonly type: ValueType<infer T> } ? T : never;
type AlwaysSet<E> = E extends { readonly required: true } ? true : E extends { readonly default: unknown } ? true : false;
type Simplify<T> = { [K in keyof T]: T[K] } & {};

/** What a caller may give: any subset of the settings (a CLI's layers, a `start*()` options object). */
export type SettingsInput<S extends SettingsSpec> = { [K in keyof S]?: SettingValue<S[K]> | undefined };
/** After `resolve`: required settings and settings with a default are always set. */
export type SettingsValues<S extends SettingsSpec> = Simplify<
  { [K in keyof S as AlwaysSet<S[K]> extends true ? K : never]: SettingValue<S[K]> } & {
    [K in keyof S as AlwaysSet<S[K]> extends true ? never : K]?: SettingValue<S[K]> | undefined;
  }
>;

type Required_<E> = E extends { readonly required: true } ? true : false;
/** What a `start*()` function takes: required settings required, the others optional. */
export type SettingsOptions<S extends SettingsSpec> = Simplify<
  { [K in keyof S as Required_<S[K]> extends true ? K : never]: SettingValue<S[K]> } & {
    [K in keyof S as Required_<S[K]> extends true ? never : K]?: SettingValue<S[K]> | undefined;
  }
>;

/** Entries of `S` with some fields replaced (a subcommand needs a setting that is optional elsewhere). */
export type Overridden<S extends SettingsSpec, K extends keyof S, O> = {
  [P in K]: P extends keyof O ? Omit<S[P], keyof O[P]> & O[P] & Setting<SettingValue<S[P]>> : S[P];
};

/** How errors name settings: `--rtc-port` for a CLI, `rtcPort` for a `start*()` options object. */
export type NameStyle = 'flags' | 'keys';

/**
 * A rule between settings (a burst needs a rate, a mapping needs a port). `name` gives the
 * setting's name in the caller's style, for the message.
 */
export type SettingsCheck<S extends SettingsSpec> = (values: SettingsInput<S>, name: (key: keyof S & string) => string) => void;

export interface SettingsTableOptions<S extends SettingsSpec> {
  /** Prefix of the derived environment variable names: `RELAYCAST_`. */
  envPrefix: string;
  /** Rules between settings, run by `check` after each value is checked on its own. */
  checks?: readonly SettingsCheck<S>[] | undefined;
  /** The flag (and variable) naming a JSON config file. Default: no config file. */
  configFile?: { flag: string; env?: string | false | undefined } | undefined;
  /** Order of the USAGE sections; sections not listed follow in order of appearance. */
  groups?: readonly string[] | undefined;
}

export interface ParseCommandLineOptions {
  /** Default: process.env. */
  env?: NodeJS.ProcessEnv | undefined;
  /** Aborts reading the config file. */
  signal?: AbortSignal | undefined;
  /** Accept positional arguments (returned as `positionals`). Default: false. */
  allowPositionals?: boolean | undefined;
  /** Flags that are not settings (`--json`): parsed, returned in `extra`, never read from elsewhere. */
  extraFlags?: ParseArgsConfig['options'] | undefined;
}

export type CommandLine<S extends SettingsSpec> =
  | { help: true }
  | {
      help: false;
      /** Every setting, defaults applied. */
      values: SettingsValues<S>;
      /** Only what the operator gave (flags, environment, config file), checked: required settings are there. */
      given: SettingsOptions<S>;
      positionals: string[];
      extra: Record<string, string | boolean | (string | boolean)[] | undefined>;
    };

/** `rtcPort` → `rtc-port`, for suggestions. */
function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** `rtc-port` → `rtcPort`. */
function camel(flag: string): string {
  return flag.replace(/-([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

const KIB = 1024;
/** `33554432` bytes → `32 MiB`; `60000` ms → `1 min`: what an operator reads faster. */
function humanize(value: unknown, unit: string | undefined): string | undefined {
  if (typeof value !== 'number' || value <= 0) return undefined;
  if (unit === 'bytes' || unit === 'bytes/s') {
    const suffix = unit === 'bytes/s' ? '/s' : '';
    for (const [size, name] of [
      [KIB ** 3, 'GiB'],
      [KIB ** 2, 'MiB'],
      [KIB, 'KiB'],
    ] as const) {
      if (value >= size && value % size === 0) return `${value / size} ${name}${suffix}`;
    }
  }
  if (unit === 'ms') {
    for (const [size, name] of [
      [3_600_000, 'h'],
      [60_000, 'min'],
      [1_000, 's'],
    ] as const) {
      if (value >= size && value % size === 0) return `${value / size} ${name}`;
    }
  }
  return undefined;
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter((w) => w !== '')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(line);
  return lines;
}

/** A settings table: build it once per bin (or per library) with `defineSettings`. */
export class SettingsTable<S extends SettingsSpec> {
  readonly spec: S;
  readonly options: SettingsTableOptions<S>;
  /** The table this one was picked from: its config file holds the other settings too. */
  readonly #root: SettingsTable<SettingsSpec> | undefined;

  constructor(spec: S, options: SettingsTableOptions<S>, root?: SettingsTable<SettingsSpec>) {
    this.spec = spec;
    this.options = options;
    this.#root = root;
    const flags = new Set<string>();
    for (const key of this.keys()) {
      const e = this.entry(key);
      if (flags.has(e.flag) || e.flag === 'help' || e.flag === options.configFile?.flag) throw new Error(`settings table: flag --${e.flag} declared twice`);
      flags.add(e.flag);
      // A default that its own type refuses is a defect of the table: fail at import, not at a user.
      if (e.default !== undefined) e.type.parse(e.default, `default of ${key}`);
    }
  }

  keys(): (keyof S & string)[] {
    return Object.keys(this.spec);
  }

  private entry(key: keyof S & string): Setting<unknown> {
    return this.spec[key] as Setting<unknown>;
  }

  /** `--rtc-port`. */
  flagOf(key: keyof S & string): string {
    return `--${this.entry(key).flag}`;
  }

  /** `RELAYCAST_RTC_PORT`, or undefined when the setting is not read from the environment. */
  envOf(key: keyof S & string): string | undefined {
    const env = this.entry(key).env;
    if (env === false) return undefined;
    return env ?? `${this.options.envPrefix}${this.entry(key).flag.toUpperCase().replace(/-/g, '_')}`;
  }

  private nameOf(style: NameStyle): (key: keyof S & string) => string {
    return (key) => (style === 'flags' ? this.flagOf(key) : key);
  }

  /**
   * A table with more settings: a CLI's table is its library's plus the CLI's own (a key file,
   * logs) and a config file. Rules are kept, `o.checks` added; `o.configFile` and `o.groups` replace.
   */
  extend<const X extends SettingsSpec>(
    more: X & { [K in keyof X]: Setting<SettingValue<X[K]>> },
    o: { checks?: readonly SettingsCheck<S & X>[]; configFile?: SettingsTableOptions<S>['configFile']; groups?: readonly string[] } = {},
  ): SettingsTable<S & X> {
    const spec = { ...this.spec, ...more } as S & X;
    const inherited = (this.options.checks ?? []) as unknown as readonly SettingsCheck<S & X>[];
    return new SettingsTable<S & X>(spec, {
      envPrefix: this.options.envPrefix,
      checks: [...inherited, ...(o.checks ?? [])],
      configFile: o.configFile ?? this.options.configFile,
      groups: o.groups ?? this.options.groups,
    });
  }

  /**
   * A table of some of the settings (a subcommand's), some fields replaced (`{ rpcUrl: { required:
   * true } }`), without the rules between settings. It reads the same config file: keys of the
   * other settings are accepted there (and checked), not returned.
   */
  pick<K extends keyof S & string, const O extends { [P in K]?: Partial<Setting<SettingValue<S[P]>>> } = Record<never, never>>(
    keys: readonly K[],
    overrides?: O,
  ): SettingsTable<Overridden<S, K, O>> {
    const spec = Object.fromEntries(keys.map((k) => [k, { ...this.spec[k], ...(overrides as Record<string, object> | undefined)?.[k] }])) as Overridden<
      S,
      K,
      O
    >;
    const options = { envPrefix: this.options.envPrefix, configFile: this.options.configFile, groups: this.options.groups };
    return new SettingsTable(spec, options, this.#root ?? (this as unknown as SettingsTable<SettingsSpec>));
  }

  /** The node:util parseArgs `options` of every setting, the config-file flag and `--help`. */
  parseArgsOptions(): NonNullable<ParseArgsConfig['options']> {
    const out: NonNullable<ParseArgsConfig['options']> = {};
    for (const key of this.keys()) {
      const e = this.entry(key);
      out[e.flag] = { type: e.type.kind, ...(e.type.multiple ? { multiple: true } : {}), ...(e.short === undefined ? {} : { short: e.short }) };
    }
    if (this.options.configFile !== undefined) out[this.options.configFile.flag] = { type: 'string' };
    out['help'] = { type: 'boolean', short: 'h' };
    return out;
  }

  /** Settings from parseArgs `values` (flags not given are absent). */
  fromFlags(values: Record<string, unknown>): SettingsInput<S> {
    const out: Record<string, unknown> = {};
    for (const key of this.keys()) {
      const raw = values[this.entry(key).flag];
      if (raw !== undefined) out[key] = this.entry(key).type.parse(raw, this.flagOf(key));
    }
    return out as SettingsInput<S>;
  }

  /** Settings from the environment; empty variables count as unset, lists are comma-separated. */
  fromEnv(env: NodeJS.ProcessEnv): SettingsInput<S> {
    const out: Record<string, unknown> = {};
    for (const key of this.keys()) {
      const name = this.envOf(key);
      const raw = name === undefined ? undefined : env[name];
      if (name !== undefined && raw !== undefined && raw.trim() !== '') out[key] = this.entry(key).type.parse(raw, name);
    }
    return out as SettingsInput<S>;
  }

  /** Settings from a parsed JSON object. Unknown keys are refused, so a typo never falls back to a default silently. */
  fromJson(json: unknown, where = 'config file'): SettingsInput<S> {
    if (this.#root !== undefined) {
      const all = this.#root.fromJson(json, where) as Record<string, unknown>;
      const own: Record<string, unknown> = {};
      for (const key of this.keys()) if (all[key] !== undefined) own[key] = this.entry(key).type.parse(all[key], `${where}: ${key}`);
      return own as SettingsInput<S>;
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw configInvalid(`${where} must hold a JSON object`);
    const out: Record<string, unknown> = {};
    for (const [key, raw] of Object.entries(json as Record<string, unknown>)) {
      const e = Object.hasOwn(this.spec, key) ? this.entry(key) : undefined;
      if (e === undefined || e.file === false) throw configInvalid(`${where}: ${this.unknownKey(key, e)}`, { key });
      out[key] = e.type.parse(raw, `${where}: ${key}`);
    }
    return out as SettingsInput<S>;
  }

  private unknownKey(key: string, e: Setting<unknown> | undefined): string {
    if (e !== undefined) return `"${key}" is not read from a config file (give ${this.flagOf(key)})`;
    const lower = key.toLowerCase();
    const near = this.keys().find((k) => k.toLowerCase() === lower || this.entry(k).flag === kebab(key) || this.entry(k).flag === key);
    const hint = near === undefined ? '' : ` (did you mean "${near}", the key of ${this.flagOf(near)}?)`;
    return `unknown key "${key}"${hint}`;
  }

  /** Reads and checks a JSON config file. */
  async readConfigFile(path: string, signal?: AbortSignal): Promise<SettingsInput<S>> {
    let text: string;
    try {
      text = await readFile(path, { encoding: 'utf8', signal });
    } catch (err) {
      if (signal?.aborted === true) throw err;
      throw configInvalid(`cannot read config file ${path}: ${(err as Error).message}`, { path });
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw configInvalid(`config file ${path} is not valid JSON: ${(err as Error).message}`, { path });
    }
    return this.fromJson(parsed, path);
  }

  /**
   * Checks the settings present in `input` (other properties are ignored, so a `start*()` options
   * object can be passed whole) and the rules between them; throws RC_ERR_CONFIG_INVALID naming
   * the setting. Returns the settings given, each as its type returns it.
   */
  check(input: SettingsInput<S> | Readonly<Record<string, unknown>>, style: NameStyle = 'keys'): SettingsInput<S> {
    const name = this.nameOf(style);
    const out: Record<string, unknown> = {};
    const given = input as Record<string, unknown>;
    for (const key of this.keys()) {
      const e = this.entry(key);
      const raw = given[key];
      if (raw !== undefined) out[key] = e.type.parse(raw, name(key));
      else if (e.required === true) throw configInvalid(`${name(key)} is required (${e.help})`, { setting: name(key) });
    }
    for (const rule of this.options.checks ?? []) rule(out as SettingsInput<S>, name);
    return out as SettingsInput<S>;
  }

  /** `check`, then every missing setting takes its default. */
  resolve(input: SettingsInput<S> | Readonly<Record<string, unknown>>, style: NameStyle = 'keys'): SettingsValues<S> {
    const out: Record<string, unknown> = this.check(input, style);
    for (const key of this.keys()) {
      const d = this.entry(key).default;
      if (out[key] === undefined && d !== undefined) out[key] = d;
    }
    return out as SettingsValues<S>;
  }

  /**
   * A CLI's whole reading: flags (strict: unknown flags refused), then where a flag is not given
   * the environment, then the config file, then the default. `--help` returns `{ help: true }`.
   */
  async parseCommandLine(argv: readonly string[], o: ParseCommandLineOptions = {}): Promise<CommandLine<S>> {
    const env = o.env ?? process.env;
    let parsed;
    try {
      parsed = parseArgs({
        args: [...argv],
        options: { ...this.parseArgsOptions(), ...o.extraFlags },
        strict: true,
        allowPositionals: o.allowPositionals ?? false,
      });
    } catch (err) {
      throw configInvalid((err as Error).message);
    }
    const values = parsed.values as Record<string, string | boolean | (string | boolean)[] | undefined>;
    if (values['help'] === true) return { help: true };
    const cf = this.options.configFile;
    let file: SettingsInput<S> = {};
    if (cf !== undefined) {
      const envName = cf.env === false ? undefined : (cf.env ?? `${this.options.envPrefix}${cf.flag.toUpperCase().replace(/-/g, '_')}`);
      const fromFlag = values[cf.flag];
      const path = typeof fromFlag === 'string' ? fromFlag : envName === undefined ? undefined : env[envName];
      if (path !== undefined && path.trim() !== '') file = await this.readConfigFile(path, o.signal);
    }
    const layers = [file, this.fromEnv(env), this.fromFlags(values)];
    const merged: Record<string, unknown> = {};
    for (const layer of layers) for (const [k, v] of Object.entries(layer)) if (v !== undefined) merged[k] = v;
    const given = this.check(merged, 'flags');
    const extra = Object.fromEntries(Object.keys(o.extraFlags ?? {}).map((f) => [f, values[f]]));
    return { help: false, values: this.resolve(given, 'flags'), given: given as SettingsOptions<S>, positionals: parsed.positionals, extra };
  }

  /**
   * The options part of USAGE, grouped, each line's bounds, default and unit taken from the
   * table, followed by where else settings are read from.
   */
  usage(o: { width?: number; column?: number } = {}): string {
    const width = o.width ?? 100;
    const column = o.column ?? 34;
    const groups = new Map<string, string[]>();
    for (const g of this.options.groups ?? []) groups.set(g, []);
    const push = (group: string, lines: string[]): void => {
      const list = groups.get(group) ?? [];
      list.push(...lines);
      groups.set(group, list);
    };
    for (const key of this.keys()) {
      const e = this.entry(key);
      const metavar = e.metavar ?? e.type.metavar;
      const left = `  ${e.short === undefined ? '' : `-${e.short}, `}--${e.flag}${metavar === '' ? '' : ` ${metavar}`}`;
      push(e.group ?? '', this.line(left, `${e.help}${this.facts(key)}`, column, width));
    }
    if (this.options.configFile !== undefined) {
      push('', this.line(`  --${this.options.configFile.flag} FILE`, 'JSON file of settings, keyed as below', column, width));
    }
    push('', this.line('  -h, --help', 'show this text', column, width));
    const out: string[] = [];
    for (const [group, lines] of groups) {
      if (lines.length === 0) continue;
      if (out.length > 0) out.push('');
      if (group !== '') out.push(`${group}:`);
      out.push(...lines);
    }
    const sources = this.sources(width);
    return `${out.join('\n')}\n${sources.length === 0 ? '' : `\n${sources.join('\n')}\n`}`;
  }

  private line(left: string, right: string, column: number, width: number): string[] {
    const body = wrap(right, width - column);
    const pad = ' '.repeat(column);
    if (left.length + 2 > column) return [left, ...body.map((l) => pad + l)];
    return body.map((l, i) => (i === 0 ? left.padEnd(column) + l : pad + l));
  }

  /** ` (1..65535; default 100)`, the facts the table knows about one setting. */
  private facts(key: keyof S & string): string {
    const e = this.entry(key);
    const parts: string[] = [];
    if (e.required === true) parts.push('required');
    if (e.type.multiple) parts.push('repeatable');
    if (e.type.accepts !== undefined) parts.push(e.type.accepts);
    const unit = e.unit ?? e.type.unit;
    if (e.defaultText !== undefined) parts.push(`default ${e.defaultText}`);
    else if (e.default !== undefined) {
      const shown = e.type.format(e.default);
      const human = humanize(e.default, unit);
      parts.push(`default ${shown}${unit === undefined || e.type.kind === 'boolean' ? '' : ` ${unit}`}${human === undefined ? '' : ` = ${human}`}`);
    }
    const env = this.envOf(key);
    const derivedEnv = `${this.options.envPrefix}${e.flag.toUpperCase().replace(/-/g, '_')}`;
    if (env === undefined) parts.push('no environment variable');
    else if (env !== derivedEnv) parts.push(`env ${env}`);
    if (this.options.configFile !== undefined) {
      if (e.file === false) parts.push('not in the config file');
      else if (key !== camel(e.flag)) parts.push(`config key ${key}`);
    }
    return parts.length === 0 ? '' : ` (${parts.join('; ')})`;
  }

  private sources(width: number): string[] {
    const cf = this.options.configFile;
    const p = this.options.envPrefix;
    // The example is a setting that has a variable (an `env: false` one would read "( for --flag"),
    // preferably a two-word flag, which shows the upper snake case.
    const withEnv = this.keys().filter((k) => this.envOf(k) !== undefined);
    const sample = withEnv.find((k) => this.entry(k).flag.includes('-')) ?? withEnv[0];
    const fileText = (lead: string): string =>
      cf === undefined
        ? ''
        : `${lead} the JSON file named by --${cf.flag}${cf.env === false ? '' : ` or ${cf.env ?? `${p}${cf.flag.toUpperCase()}`}`}, keyed by the flag in camelCase unless noted (lists as arrays)`;
    const text =
      sample === undefined
        ? cf === undefined
          ? ''
          : `${fileText('Settings may also be given in')}. Flags win over the file.`
        : `Each setting may also be given as an environment variable, ${p}<FLAG> in upper snake case (${this.envOf(sample) ?? ''} for ${this.flagOf(sample)}; lists comma-separated)` +
          (cf === undefined ? '. Flags win over the environment.' : `${fileText(', or in')}. Flags win over the environment, the environment over the file.`);
    return wrap(text, width);
  }
}

/**
 * Declares a settings table. Keys are the settings' names in code and in the config file; each
 * entry's default is checked against its type at compile time and at import.
 *
 * ```ts
 * const SETTINGS = defineSettings({
 *   port: { type: int({ max: 65_535 }), flag: 'port', default: 8000, help: 'TCP port; 0 = any free port' },
 * }, { envPrefix: 'RELAYCAST_' });
 * ```
 */
export function defineSettings<const S extends SettingsSpec>(
  spec: S & { [K in keyof S]: Setting<SettingValue<S[K]>> },
  options: SettingsTableOptions<S>,
): SettingsTable<S> {
  return new SettingsTable<S>(spec, options);
}

/** For a rule's message: the value quoted like every other setting error. */
export { quote };
