import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The repository root (this file is test/helpers/tarballs.ts). */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The published packages, by workspace name. */
export type PublishedPackage =
  | '@relaycast/protocol'
  | '@relaycast/cli-kit'
  | '@relaycast/origin-tools'
  | '@relaycast/tracker'
  | '@relaycast/relay'
  | '@relaycast/player-sdk'
  | '@relaycast/contracts-client';

/**
 * The environment of a process that plays a platform's or an operator's machine: this process's
 * environment without what the repository adds. NODE_OPTIONS carries --conditions=relaycast-source
 * (which would make installed bins look for src/), and npm's npm_config_* variables, among them
 * npm_config_local_prefix, would make an npm started in a temp dir act on this repository.
 */
export function outsideEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k === 'NODE_OPTIONS' || k === 'INIT_CWD' || /^npm_/i.test(k)) continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

let built: Promise<void> | undefined;

/**
 * Builds the packages (`npm run build:packages`: tsc -b and the SDK's browser build) once per test
 * file. Incremental: when `npm test` has built already it only checks that dist/ is current.
 */
export function ensureBuilt(): Promise<void> {
  built ??= run('npm', ['run', '-s', 'build:packages'], { cwd: REPO_ROOT, maxBuffer: 64 << 20 }).then(() => undefined);
  return built;
}

export interface PackedPackages {
  dir: string;
  /** Absolute tarball path per package name. */
  tarballs: Map<PublishedPackage, string>;
  remove(): Promise<void>;
}

/** `npm pack`s `names` into a new temp dir, as `npm publish` would pack them (files, bin, README). */
export async function packPackages(names: readonly PublishedPackage[]): Promise<PackedPackages> {
  await ensureBuilt();
  const dir = await mkdtemp(join(tmpdir(), 'relaycast-pack-'));
  const args = ['pack', '--json', '--pack-destination', dir, ...names.flatMap((n) => ['--workspace', n])];
  const { stdout } = await run('npm', args, { cwd: REPO_ROOT, maxBuffer: 64 << 20 });
  const packed = JSON.parse(stdout) as { name: PublishedPackage; filename: string }[];
  const tarballs = new Map(packed.map((p) => [p.name, join(dir, p.filename)] as const));
  for (const n of names) if (!tarballs.has(n)) throw new Error(`npm pack wrote no tarball for ${n}`);
  return { dir, tarballs, remove: () => rm(dir, { recursive: true, force: true }) };
}
