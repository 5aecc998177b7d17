import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Bound for one `ip`/`nft` call: they are local and quick, a hang means a broken host. */
const COMMAND_TIMEOUT_MS = 15_000;

/**
 * How the home router picks the external source port of a new UDP/TCP flow:
 *
 * - `preserve-port`: Linux's default masquerade, like most home routers: the flow keeps its
 *   internal source port when that is free, so one internal socket shows the same external port to
 *   every destination ("endpoint-independent mapping") and ICE can hole-punch through it.
 * - `symmetric`: `masquerade random,fully-random`: every flow (distinct destination address or
 *   port) gets its own random external port ("address and port dependent mapping"), so a server
 *   reflexive candidate learnt from one destination is useless for another and only TURN works.
 */
export type NatMapping = 'preserve-port' | 'symmetric';

export interface TestBedOptions {
  /** Adds a second home network behind its own (port-preserving) NAT router, for a viewer. */
  viewerNat?: boolean;
  /** Mapping behaviour of the home (relay's) router; `preserve-port` by default. */
  homeNatMapping?: NatMapping;
  /** Aborts the set-up commands (the namespaces made so far are deleted). */
  signal?: AbortSignal;
}

/**
 * A NAT test bed of network namespaces:
 *
 *                       ┌─ wan 11.199.0.1 router lan 10.199.1.1 ── home 10.199.1.10
 *   public br0 ─────────┤
 *   11.199.0.10 (+ .20) └─ wan 11.199.0.2 viewerRouter lan 10.199.2.1 ── viewerHome 10.199.2.10
 *                          (only with `viewerNat: true`)
 *
 * The public namespace holds a bridge `br0` (a shared segment, like the internet side of several
 * ISPs' customers) with the routers' veth peers enslaved to it. br0 carries two addresses:
 * 11.199.0.10 for the tracker and other public servers, 11.199.0.20 for a TURN/STUN server, so
 * the latter's traffic can be told apart.
 *
 * Each router forwards and masquerades its home's traffic out of `wan`, and drops flows from `wan`
 * to `lan` that are neither replies nor port forwards (DNAT, e.g. made by miniupnpd): the homes see
 * the public side only through NAT, and the public side cannot open flows into them, as on a home
 * network. The public namespace has no route into the home networks either. The namespaces have
 * no link to the host's network: their traffic stays between the namespaces built here.
 *
 * The "public" side uses 11.199.0.0/24 rather than a private or documentation range because
 * miniupnpd refuses to forward ports when its external address is in any reserved range (RFC1918,
 * CGNAT, TEST-NET...), logging "Port forwarding is impossible". Nothing leaves the namespaces, so
 * the borrowed range is never seen outside them.
 */
export interface TestBed {
  /**
   * Namespace names, unique per bed so parallel runs and leftovers never collide. `viewerRouter`
   * and `viewerHome` exist only with `viewerNat: true`.
   */
  readonly ns: {
    readonly public: string;
    readonly router: string;
    readonly home: string;
    readonly viewerRouter?: string;
    readonly viewerHome?: string;
  };
  /** Addresses (always listed; the viewer ones are only in use with `viewerNat: true`). */
  readonly addr: typeof ADDR;
  /** Interface names inside the router namespaces (the same in `router` and `viewerRouter`). */
  readonly routerIf: { readonly wan: string; readonly lan: string };
  /** The home router's mapping behaviour. */
  readonly homeNatMapping: NatMapping;
  /** Runs a command inside a namespace; rejects on a non-zero exit. */
  exec(ns: string, cmd: string, args: string[], signal?: AbortSignal): Promise<{ stdout: string; stderr: string }>;
  /** Prefix that runs a spawned command inside `ns` (for startProcess's `wrap`). */
  wrap(ns: string): string[];
  /** Deletes the namespaces (and with them every interface and rule); safe to call twice. */
  destroy(): Promise<void>;
}

export const ADDR = {
  /** The public side's main address (br0), e.g. for the tracker. */
  public: '11.199.0.10',
  /** A second address on the public br0, for a TURN/STUN server. */
  turn: '11.199.0.20',
  routerWan: '11.199.0.1',
  routerLan: '10.199.1.1',
  home: '10.199.1.10',
  viewerRouterWan: '11.199.0.2',
  viewerRouterLan: '10.199.2.1',
  viewerHome: '10.199.2.10',
} as const;
const PREFIX_LEN = 24;
/** Next hop of the public side's default route into nowhere (see createTestBed). */
const VOID_NEXT_HOP = '11.199.255.1';

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

export async function createTestBed(o: TestBedOptions = {}): Promise<TestBed> {
  const signal = o.signal;
  const homeNatMapping = o.homeNatMapping ?? 'preserve-port';
  const id = randomBytes(3).toString('hex');
  const ns = {
    public: `rc-pub-${id}`,
    router: `rc-rtr-${id}`,
    home: `rc-home-${id}`,
    ...(o.viewerNat === true ? { viewerRouter: `rc-vrtr-${id}`, viewerHome: `rc-vhome-${id}` } : {}),
  };
  const routerIf = { wan: 'wan', lan: 'lan' };
  const created: string[] = [];
  const ipn = (n: string, ...args: string[]): Promise<unknown> => sh('ip', ['-n', n, ...args], signal);
  const exec = (n: string, cmd: string, args: string[], sig?: AbortSignal) => sh('ip', ['netns', 'exec', n, cmd, ...args], sig);
  let destroyed = false;
  const destroy = async (): Promise<void> => {
    if (destroyed) return;
    destroyed = true;
    // Deleting a namespace deletes its veth ends (and their peers), its bridge and its nftables
    // rules. Each deletion on its own: one failing (or never made) must not keep the others.
    for (const n of [...created].reverse()) await sh('ip', ['netns', 'del', n]).catch(() => undefined);
  };

  const addNs = async (n: string): Promise<void> => {
    // Recorded before the command: an abort can land after `ip` made the namespace but before we
    // saw it succeed, and deleting a namespace that does not exist is harmless.
    created.push(n);
    await sh('ip', ['netns', 'add', n], signal);
    await ipn(n, 'link', 'set', 'lo', 'up');
  };

  /**
   * A NAT router between the public br0 (as `wanAddr`) and a home namespace (as `homeAddr`, its
   * router at `lanAddr`). `brPort` is the name of the router's veth peer on br0.
   */
  const addRouter = async (
    router: string,
    home: string,
    brPort: string,
    wanAddr: string,
    lanAddr: string,
    homeAddr: string,
    mapping: NatMapping,
  ): Promise<void> => {
    // Made inside the router namespace with the peer sent straight to its namespace: no interface
    // ever appears in the host's namespace, so names cannot clash with the host's or another bed's.
    await ipn(router, 'link', 'add', routerIf.wan, 'type', 'veth', 'peer', 'name', brPort, 'netns', ns.public);
    await ipn(router, 'link', 'add', routerIf.lan, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', home);
    await ipn(ns.public, 'link', 'set', brPort, 'master', 'br0');
    await ipn(router, 'addr', 'add', `${wanAddr}/${PREFIX_LEN}`, 'dev', routerIf.wan);
    await ipn(router, 'addr', 'add', `${lanAddr}/${PREFIX_LEN}`, 'dev', routerIf.lan);
    await ipn(home, 'addr', 'add', `${homeAddr}/${PREFIX_LEN}`, 'dev', 'eth0');
    for (const [n, dev] of [
      [ns.public, brPort],
      [router, routerIf.wan],
      [router, routerIf.lan],
      [home, 'eth0'],
    ] as const) {
      await ipn(n, 'link', 'set', dev, 'up');
    }
    // The home reaches the public side only through its router; the public side has no route back
    // into the home network, as on the internet.
    await ipn(home, 'route', 'add', 'default', 'via', lanAddr);
    await exec(router, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1'], signal);
    // `random,fully-random`: the kernel skips its "keep the original port if free" step and draws
    // a port per new conntrack entry, i.e. per (source, destination) flow.
    const masquerade = mapping === 'symmetric' ? 'masquerade random,fully-random' : 'masquerade';
    await exec(
      router,
      'nft',
      [
        'add table ip rcnat;' +
          ' add chain ip rcnat postrouting { type nat hook postrouting priority 100; policy accept; };' +
          ` add rule ip rcnat postrouting oifname "${routerIf.wan}" ${masquerade};` +
          // A home router's firewall: from the internet only replies and port forwards get in.
          ' add chain ip rcnat forward { type filter hook forward priority 10; policy accept; };' +
          ` add rule ip rcnat forward iifname "${routerIf.wan}" ct state established,related accept;` +
          ` add rule ip rcnat forward iifname "${routerIf.wan}" ct status dnat accept;` +
          ` add rule ip rcnat forward iifname "${routerIf.wan}" drop`,
      ],
      signal,
    );
  };

  try {
    for (const n of Object.values(ns)) await addNs(n);
    await ipn(ns.public, 'link', 'add', 'br0', 'type', 'bridge');
    await ipn(ns.public, 'addr', 'add', `${ADDR.public}/${PREFIX_LEN}`, 'dev', 'br0');
    await ipn(ns.public, 'addr', 'add', `${ADDR.turn}/${PREFIX_LEN}`, 'dev', 'br0');
    await ipn(ns.public, 'link', 'set', 'br0', 'up');
    // The internet has a default route: packets to addresses nobody announces (a home's private
    // host candidate, say) leave and vanish instead of failing at once with "network unreachable",
    // which coturn takes as fatal for the whole allocation. They go to a veth whose other end has
    // no address, through a next hop with a fixed MAC (no ARP to fail), and are dropped there.
    await ipn(ns.public, 'link', 'add', 'void0', 'type', 'veth', 'peer', 'name', 'void1');
    await ipn(ns.public, 'link', 'set', 'void0', 'up');
    await ipn(ns.public, 'link', 'set', 'void1', 'up');
    await ipn(ns.public, 'route', 'add', 'default', 'via', VOID_NEXT_HOP, 'dev', 'void0', 'onlink');
    await ipn(ns.public, 'neigh', 'add', VOID_NEXT_HOP, 'lladdr', '02:00:00:00:00:01', 'dev', 'void0', 'nud', 'permanent');
    await addRouter(ns.router, ns.home, 'rtr-home', ADDR.routerWan, ADDR.routerLan, ADDR.home, homeNatMapping);
    if (ns.viewerRouter !== undefined && ns.viewerHome !== undefined) {
      await addRouter(ns.viewerRouter, ns.viewerHome, 'rtr-viewer', ADDR.viewerRouterWan, ADDR.viewerRouterLan, ADDR.viewerHome, 'preserve-port');
    }
  } catch (err) {
    await destroy();
    throw err;
  }
  return { ns, addr: ADDR, routerIf, homeNatMapping, exec, wrap: (n) => ['ip', 'netns', 'exec', n], destroy };
}
