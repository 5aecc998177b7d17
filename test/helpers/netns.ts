import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Bound for one `ip`/`nft` call: they are local and quick, a hang means a broken host. */
const COMMAND_TIMEOUT_MS = 15_000;

/**
 * A NAT test bed of network namespaces:
 *
 *   public (11.199.0.10) ── wan (11.199.0.1) router lan (10.199.1.1) ── home (10.199.1.10)
 *
 * The router forwards and masquerades home traffic out of `wan`, so the home namespace sees the
 * public one only through NAT, as a relay on a home network does. The namespaces have no link to
 * the host's network: their traffic stays between the namespaces built here.
 *
 * The "public" side uses 11.199.0.0/24 rather than a private or documentation range because
 * miniupnpd refuses to forward ports when its external address is in any reserved range (RFC1918,
 * CGNAT, TEST-NET...), logging "Port forwarding is impossible". Nothing leaves the namespaces, so
 * the borrowed range is never seen outside them.
 */
export interface TestBed {
  /** Namespace names, unique per bed so parallel runs and leftovers never collide. */
  readonly ns: { readonly public: string; readonly router: string; readonly home: string };
  readonly addr: {
    readonly public: string;
    readonly routerWan: string;
    readonly routerLan: string;
    readonly home: string;
  };
  /** Interface names inside the router namespace. */
  readonly routerIf: { readonly wan: string; readonly lan: string };
  /** Runs a command inside a namespace; rejects on a non-zero exit. */
  exec(ns: string, cmd: string, args: string[], signal?: AbortSignal): Promise<{ stdout: string; stderr: string }>;
  /** Prefix that runs a spawned command inside `ns` (for startProcess's `wrap`). */
  wrap(ns: string): string[];
  /** Deletes the namespaces (and with them every interface and rule); safe to call twice. */
  destroy(): Promise<void>;
}

export const ADDR = {
  public: '11.199.0.10',
  routerWan: '11.199.0.1',
  routerLan: '10.199.1.1',
  home: '10.199.1.10',
} as const;
const PREFIX_LEN = 24;

async function sh(cmd: string, args: string[], signal?: AbortSignal): Promise<{ stdout: string; stderr: string }> {
  return await run(cmd, args, { timeout: COMMAND_TIMEOUT_MS, signal, maxBuffer: 4 * 1024 * 1024 });
}

/**
 * Why the bed cannot be built here, or undefined when it can: not root, `ip` missing, or the
 * sandbox forbids namespaces. Probed by adding and deleting one namespace.
 */
export async function netnsUnavailableReason(): Promise<string | undefined> {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  const probe = `rcprobe-${randomBytes(3).toString('hex')}`;
  try {
    await sh('ip', ['netns', 'add', probe]);
  } catch (err) {
    return `ip netns add failed: ${(err as Error).message.trim()}`;
  }
  await sh('ip', ['netns', 'del', probe]).catch(() => undefined);
  return undefined;
}

/** Whether `cmd` is on PATH (for skipping a test whose daemon is not installed). */
export async function hasCommand(cmd: string): Promise<boolean> {
  try {
    await sh('sh', ['-c', `command -v ${cmd}`]);
    return true;
  } catch {
    return false;
  }
}

export async function createTestBed(signal?: AbortSignal): Promise<TestBed> {
  const id = randomBytes(3).toString('hex');
  const ns = { public: `rc-pub-${id}`, router: `rc-rtr-${id}`, home: `rc-home-${id}` };
  const routerIf = { wan: 'wan', lan: 'lan' };
  const created: string[] = [];
  const ipn = (n: string, ...args: string[]): Promise<unknown> => sh('ip', ['-n', n, ...args], signal);
  const exec = (n: string, cmd: string, args: string[], sig?: AbortSignal) => sh('ip', ['netns', 'exec', n, cmd, ...args], sig);
  let destroyed = false;
  const destroy = async (): Promise<void> => {
    if (destroyed) return;
    destroyed = true;
    // Deleting a namespace deletes its veth ends (and their peers) and its nftables rules.
    for (const n of created.reverse()) await sh('ip', ['netns', 'del', n]).catch(() => undefined);
  };

  try {
    for (const n of [ns.public, ns.router, ns.home]) {
      await sh('ip', ['netns', 'add', n], signal);
      created.push(n);
      await ipn(n, 'link', 'set', 'lo', 'up');
    }
    // Made inside the router namespace with the peer sent straight to its namespace: no interface
    // ever appears in the host's namespace, so names cannot clash with the host's or another bed's.
    await ipn(ns.router, 'link', 'add', routerIf.wan, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.public);
    await ipn(ns.router, 'link', 'add', routerIf.lan, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.home);
    await ipn(ns.public, 'addr', 'add', `${ADDR.public}/${PREFIX_LEN}`, 'dev', 'eth0');
    await ipn(ns.router, 'addr', 'add', `${ADDR.routerWan}/${PREFIX_LEN}`, 'dev', routerIf.wan);
    await ipn(ns.router, 'addr', 'add', `${ADDR.routerLan}/${PREFIX_LEN}`, 'dev', routerIf.lan);
    await ipn(ns.home, 'addr', 'add', `${ADDR.home}/${PREFIX_LEN}`, 'dev', 'eth0');
    for (const [n, dev] of [[ns.public, 'eth0'], [ns.router, routerIf.wan], [ns.router, routerIf.lan], [ns.home, 'eth0']] as const) {
      await ipn(n, 'link', 'set', dev, 'up');
    }
    // Home reaches the public side only through the router; the public side has no route back
    // into the home network, as on the internet.
    await ipn(ns.home, 'route', 'add', 'default', 'via', ADDR.routerLan);
    await exec(ns.router, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1'], signal);
    await exec(ns.router, 'nft', [
      `add table ip rcnat; add chain ip rcnat postrouting { type nat hook postrouting priority 100; policy accept; }; add rule ip rcnat postrouting oifname "${routerIf.wan}" masquerade`,
    ], signal);
  } catch (err) {
    await destroy();
    throw err;
  }
  return { ns, addr: ADDR, routerIf, exec, wrap: (n) => ['ip', 'netns', 'exec', n], destroy };
}
