import { parseArgs } from 'node:util';
import { ErrorCode, RelaycastError } from '@relaycast/protocol';

export type FlagSpec = Record<string, { default: number | string | boolean | number[]; help: string }>;
export type FlagValues<S extends FlagSpec> = {
  [K in keyof S]: S[K]['default'] extends number[] ? number[] : S[K]['default'] extends number ? number : S[K]['default'] extends boolean ? boolean : string;
};

/**
 * Parses `--name value` flags for a bench from a spec of defaults (which also give each flag its
 * type: number, comma-separated number list, boolean or string). `--help` prints the spec.
 */
export function parseFlags<S extends FlagSpec>(bench: string, spec: S, argv: string[] = process.argv.slice(2)): FlagValues<S> {
  const options: Record<string, { type: 'string' | 'boolean' }> = { help: { type: 'boolean' } };
  for (const [name, s] of Object.entries(spec)) options[name] = { type: typeof s.default === 'boolean' ? 'boolean' : 'string' };
  const { values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false });
  if (values['help'] === true) {
    process.stderr.write(`usage: tsx bench/src/${bench}.ts [flags]\n`);
    for (const [name, s] of Object.entries(spec)) process.stderr.write(`  --${name} (default ${String(s.default)}): ${s.help}\n`);
    process.exit(0);
  }
  const out: Record<string, unknown> = {};
  for (const [name, s] of Object.entries(spec)) {
    const raw = values[name];
    if (raw === undefined) {
      out[name] = s.default;
    } else if (typeof s.default === 'boolean') {
      out[name] = raw;
    } else if (typeof s.default === 'number' || Array.isArray(s.default)) {
      const nums = String(raw).split(',').map(Number);
      if (nums.some((n) => !Number.isFinite(n) || n < 0))
        throw new RelaycastError(ErrorCode.CONFIG_INVALID, `--${name} must be ${Array.isArray(s.default) ? 'a comma-separated list of numbers' : 'a number'}`);
      out[name] = Array.isArray(s.default) ? nums : nums[0];
    } else {
      out[name] = raw;
    }
  }
  return out as FlagValues<S>;
}
