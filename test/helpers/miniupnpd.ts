import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestBed } from './netns.js';
import { GiveUp, waitFor } from './processes.js';

/** nftables table and chains miniupnpd writes its port forwards into (made by us, not by it). */
const TABLE = 'rcupnp';
const PREROUTING_CHAIN = 'prerouting_upnp';

/** One port forward miniupnpd has put on the router. */
export interface RouterMapping {
  protocol: 'tcp' | 'udp';
  externalPort: number;
  internalHost: string;
  internalPort: number;
}

/**
 * One line of miniupnpd's lease file: what miniupnpd believes it has granted, and until when.
 * The file holds one line per mapping, `PROTO:EXTPORT:INTERNALIP:INTERNALPORT:TIMESTAMP:DESCRIPTION`,
 * e.g. `UDP:40000:10.199.1.10:40000:1796090894:NAT-PMP 40000 udp`, where TIMESTAMP is the expiry
 * in Unix seconds. miniupnpd 2.3.1 rewrites it at once on every change: a new mapping adds its
 * line, a renewal (the same mapping asked again) replaces the line with the new expiry, a removal
 * (NAT-PMP lifetime 0, UPnP DeletePortMapping) drops it. The file does not exist until the first
 * mapping.
 */
export interface RouterLease extends RouterMapping {
  /** Unix seconds at which the mapping expires; 0 for a mapping without expiry (UPnP lease 0). */
  expiresAtUnixSec: number;
  /** The client's description (UPnP NewPortMappingDescription; `NAT-PMP <port> <proto>` for NAT-PMP). */
  description: string;
}

export interface Miniupnpd {
  /** The forwards now in the router's nftables chain: what the router really does, not what it says. */
  mappings(): Promise<RouterMapping[]>;
  /** miniupnpd's lease file, parsed (empty when it has none yet). */
  leases(): Promise<RouterLease[]>;
  /** Whether the daemon runs: false with both `upnp` and `natpmp` off, which miniupnpd refuses. */
  readonly running: boolean;
  output(): string;
  stop(): Promise<void>;
}

/** Parses miniupnpd's lease file; the description may itself hold ':'. */
export function parseLeaseFile(text: string): RouterLease[] {
  const leases: RouterLease[] = [];
  for (const line of text.split('\n')) {
    const m = /^(TCP|UDP):(\d+):([\d.]+):(\d+):(\d+):(.*)$/i.exec(line.trim());
    if (m === null) continue;
    leases.push({
      protocol: m[1]!.toLowerCase() as 'tcp' | 'udp',
      externalPort: Number(m[2]),
      internalHost: m[3]!,
      internalPort: Number(m[4]),
      expiresAtUnixSec: Number(m[5]),
      description: m[6]!,
    });
  }
  return leases;
}

/**
 * Runs miniupnpd (UPnP IGD and NAT-PMP) on the bed's router, serving the home network. It only
 * accepts forwards of ports >= 1024 to the home network, like a stock home router.
 *
 * With both `upnp: false` and `natpmp: false` (a router with port mapping switched off) miniupnpd
 * refuses to start ("Why did you run me anyway?"), so no daemon is run: the router's nftables
 * chains are still made, and mappings() and leases() read that (empty) state.
 */
export async function startMiniupnpd(bed: TestBed, opts: { upnp?: boolean; natpmp?: boolean } = {}): Promise<Miniupnpd> {
  const dir = await mkdtemp(join(tmpdir(), 'rc-miniupnpd-'));
  const leaseFile = join(dir, 'leases');
  const conf = [
    `ext_ifname=${bed.routerIf.wan}`,
    `listening_ip=${bed.routerIf.lan}`,
    'port=0',
    `enable_upnp=${opts.upnp === false ? 'no' : 'yes'}`,
    `enable_natpmp=${opts.natpmp === false ? 'no' : 'yes'}`,
    'secure_mode=yes',
    'system_uptime=yes',
    `upnp_table_name=${TABLE}`,
    `upnp_nat_table_name=${TABLE}`,
    'upnp_forward_chain=forward_upnp',
    `upnp_nat_chain=${PREROUTING_CHAIN}`,
    'upnp_nat_postrouting_chain=postrouting_upnp',
    `lease_file=${leaseFile}`,
    'uuid=3c1a3d0e-5e1a-4c0a-8a57-7e1a7c0de001',
    `allow 1024-65535 ${bed.addr.home.replace(/\.\d+$/, '.0')}/24 1024-65535`,
    'deny 0-65535 0.0.0.0/0 0-65535',
    '',
  ].join('\n');
  await writeFile(join(dir, 'miniupnpd.conf'), conf);
  // Debian's miniupnpd uses the nftables backend and expects its table and chains to exist (its
  // own nft_init.sh would make them in the host's namespace).
  await bed
    .exec(bed.ns.router, 'nft', [
      `add table inet ${TABLE};` +
        ` add chain inet ${TABLE} forward { type filter hook forward priority 0; policy accept; };` +
        ` add chain inet ${TABLE} forward_upnp;` +
        ` add chain inet ${TABLE} prerouting { type nat hook prerouting priority -100; policy accept; };` +
        ` add chain inet ${TABLE} postrouting { type nat hook postrouting priority 100; policy accept; };` +
        ` add chain inet ${TABLE} ${PREROUTING_CHAIN};` +
        ` add chain inet ${TABLE} postrouting_upnp;` +
        ` add rule inet ${TABLE} forward jump forward_upnp;` +
        ` add rule inet ${TABLE} prerouting jump ${PREROUTING_CHAIN};` +
        ` add rule inet ${TABLE} postrouting jump postrouting_upnp`,
    ])
    .catch(async (err: unknown) => {
      await rm(dir, { recursive: true, force: true });
      throw err;
    });
  const leases = async (): Promise<RouterLease[]> => {
    try {
      return parseLeaseFile(await readFile(leaseFile, 'utf8'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  };
  if (opts.upnp === false && opts.natpmp === false) {
    return {
      mappings: async () => await readMappings(bed),
      leases,
      running: false,
      output: () => 'miniupnpd not started: UPnP and NAT-PMP both disabled',
      async stop() {
        await rm(dir, { recursive: true, force: true });
      },
    };
  }
  const child: ChildProcess = spawn('ip', ['netns', 'exec', bed.ns.router, 'miniupnpd', '-d', '-f', join(dir, 'miniupnpd.conf'), '-P', join(dir, 'pid')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const keep = (d: Buffer): void => {
    lines.push(...d.toString().split('\n').filter(Boolean));
    if (lines.length > 300) lines.splice(0, lines.length - 300);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));
  const output = (): string => lines.join('\n');
  const stop = async (): Promise<void> => {
    if (!exited) child.kill('SIGTERM');
    await exit;
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitFor('miniupnpd to listen', () => {
      if (exited) throw new GiveUp(`miniupnpd exited:\n${output()}`);
      return /Listening for NAT-PMP|HTTP listening/.test(output()) || undefined;
    });
  } catch (err) {
    // The daemon would outlive the bed: a namespace deleted by name lives on while a process is in it.
    await stop();
    throw err;
  }

  return {
    mappings: async () => await readMappings(bed),
    leases,
    running: true,
    output,
    stop,
  };
}

/** The forwards in the router's nftables chain that miniupnpd writes to. */
async function readMappings(bed: TestBed): Promise<RouterMapping[]> {
  const { stdout } = await bed.exec(bed.ns.router, 'nft', ['list', 'chain', 'inet', TABLE, PREROUTING_CHAIN]);
  const found: RouterMapping[] = [];
  // miniupnpd writes e.g. `iif "wan" @nh,72,8 0x11 th dport 40000 dnat ip to 10.199.1.10:40000`:
  // the protocol is the IPv4 header's protocol byte (offset 72 bits), 0x11 UDP, 0x6 TCP.
  for (const line of stdout.split('\n')) {
    const m = /@nh,72,8 (0x[0-9a-f]+) th dport (\d+) dnat (?:ip )?to ([\d.]+):(\d+)/.exec(line);
    if (m === null) continue;
    const proto = Number(m[1]);
    if (proto !== 0x11 && proto !== 0x6) continue;
    found.push({ protocol: proto === 0x11 ? 'udp' : 'tcp', externalPort: Number(m[2]), internalHost: m[3]!, internalPort: Number(m[4]) });
  }
  return found;
}
