import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { turnRestCredentials } from '@relaycast/tracker';
import { TURN_PROBE_MJS, startCoturn, type Coturn } from './helpers/coturn.js';
import { waitFor } from './helpers/processes.js';
import { createTestBed, hasCommand, netnsUnavailableReason, type TestBed } from './helpers/netns.js';

// Decided before the tests are collected so the skip reason shows in the report.
const unavailable =
  (await netnsUnavailableReason()) ??
  ((await hasCommand('nft')) ? undefined : 'nft (nftables) is not installed') ??
  ((await hasCommand('turnserver')) ? undefined : 'turnserver (coturn) is not installed');
if (unavailable !== undefined) process.stderr.write(`netns-testbed: skipped: ${unavailable}\n`);

const NODE_DATACHANNEL = createRequire(import.meta.url).resolve('node-datachannel');
const TURN_SECRET = 'netns-testbed-secret';

/** Binds UDP sockets on HOST:PORT...; prints `{listening}` per socket and `{port, from, fromPort, msg}` per datagram, and answers each. */
const RECV_MJS = `
import dgram from 'node:dgram';
const [host, ...ports] = process.argv.slice(2);
for (const p of ports) {
  const s = dgram.createSocket('udp4');
  s.on('message', (m, r) => {
    console.log(JSON.stringify({ port: Number(p), from: r.address, fromPort: r.port, msg: m.toString() }));
    s.send(Buffer.from('reply:' + m), r.port, r.address);
  });
  s.bind(Number(p), host, () => console.log(JSON.stringify({ listening: Number(p) })));
}
`;
/** One socket bound to BINDPORT sends to each HOST:PORT and prints `{reply, from, fromPort}` per answer, for WAITMS. */
const SEND_MJS = `
import dgram from 'node:dgram';
const [bindPort, waitMs, ...dests] = process.argv.slice(2);
const s = dgram.createSocket('udp4');
s.on('message', (m, r) => console.log(JSON.stringify({ reply: m.toString(), from: r.address, fromPort: r.port })));
s.bind(Number(bindPort), () => {
  for (const d of dests) { const [h, p] = d.split(':'); s.send(Buffer.from('hi ' + d), Number(p), h); }
  setTimeout(() => s.close(), Number(waitMs));
});
`;
/** Gathers ICE candidates with node-datachannel for one iceServer (JSON: a URL string or an IceServer object). */
const GATHER_MJS = `
const [entry, serverJson, policy] = process.argv.slice(2);
const mod = await import(entry);
const ndc = mod.default ?? mod;
const result = { candidates: [], error: undefined };
try {
  const pc = new ndc.PeerConnection('gather', { iceServers: [JSON.parse(serverJson)], iceTransportPolicy: policy });
  const done = new Promise((resolve) => {
    // The candidate callbacks can run after the 'complete' one: give them a moment.
    pc.onGatheringStateChange((s) => { if (s === 'complete') setTimeout(resolve, 500); });
    setTimeout(resolve, 8000);
  });
  pc.onLocalCandidate((c) => result.candidates.push(c));
  const dc = pc.createDataChannel('probe');
  await done;
  dc.close();
  pc.close();
} catch (err) {
  result.error = String(err);
}
console.log(JSON.stringify(result));
// node-datachannel can hang or abort in its exit path; stdout to a pipe is synchronous, so leave at once.
process.kill(process.pid, 'SIGKILL');
`;

type Line = Record<string, unknown>;

interface Script {
  lines(): Line[];
  output(): string;
  stop(): Promise<void>;
}

/** Runs `node <script> ...args` inside `ns`, collecting its JSON lines. */
function runScript(ns: string, script: string, args: string[]): Script & { done: Promise<void> } {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  void done.then(() => clearTimeout(killer));
  return {
    done,
    lines: () =>
      out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Line),
    output: () => `${out}${err}`,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await done;
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(unavailable !== undefined)('NAT test bed', () => {
  let bed: TestBed; // preserve-port home NAT + viewer NAT
  let sym: TestBed; // symmetric home NAT
  let turn: Coturn;
  let dir: string;
  const script = (name: string) => join(dir, name);
  const scripts: Script[] = [];

  async function receiver(b: TestBed, ns: string, host: string, ports: number[]): Promise<Script> {
    const r = runScript(ns, script('recv.mjs'), [host, ...ports.map(String)]);
    scripts.push(r);
    for (let i = 0; r.lines().filter((l) => 'listening' in l).length < ports.length; i++) {
      if (i > 100) throw new Error(`receiver did not start:\n${r.output()}`);
      await sleep(50);
    }
    return r;
  }
  async function send(b: TestBed, ns: string, bindPort: number, dests: string[], waitMs = 500): Promise<Line[]> {
    const s = runScript(ns, script('send.mjs'), [String(bindPort), String(waitMs), ...dests]);
    await s.done;
    return s.lines();
  }
  async function gather(b: TestBed, ns: string, server: unknown, policy: 'all' | 'relay' = 'all'): Promise<string[]> {
    const g = runScript(ns, script('gather.mjs'), [NODE_DATACHANNEL, JSON.stringify(server), policy]);
    await g.done;
    const r = g.lines()[0] as { candidates?: string[]; error?: string } | undefined;
    if (r?.candidates === undefined || r.error !== undefined) throw new Error(`gathering failed:\n${g.output()}`);
    return r.candidates;
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rc-testbed-'));
    await writeFile(script('recv.mjs'), RECV_MJS);
    await writeFile(script('send.mjs'), SEND_MJS);
    await writeFile(script('gather.mjs'), GATHER_MJS);
    await writeFile(script('turn-probe.mjs'), TURN_PROBE_MJS);
    bed = await createTestBed({ viewerNat: true, signal: AbortSignal.timeout(60_000) });
    sym = await createTestBed({ homeNatMapping: 'symmetric', signal: AbortSignal.timeout(60_000) });
    turn = await startCoturn(bed, { secret: TURN_SECRET });
  });
  afterAll(async () => {
    // Each step on its own: a failed one must not leave namespaces or daemons behind.
    for (const s of scripts) await s.stop().catch(() => undefined);
    await turn?.stop().catch(() => undefined);
    await bed?.destroy();
    await sym?.destroy();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('homes reach the public side through their routers, which are the sources it sees', async () => {
    const viewerHome = bed.ns.viewerHome!;
    const r = await receiver(bed, bed.ns.public, bed.addr.public, [5000]);
    const fromHome = await send(bed, bed.ns.home, 40_000, [`${bed.addr.public}:5000`]);
    const fromViewer = await send(bed, viewerHome, 40_001, [`${bed.addr.public}:5000`]);
    expect(fromHome).toEqual([{ reply: `reply:hi ${bed.addr.public}:5000`, from: bed.addr.public, fromPort: 5000 }]);
    expect(fromViewer).toEqual([{ reply: `reply:hi ${bed.addr.public}:5000`, from: bed.addr.public, fromPort: 5000 }]);
    const seen = r
      .lines()
      .filter((l) => 'from' in l)
      .map((l) => l.from);
    expect(seen.sort()).toEqual([bed.addr.routerWan, bed.addr.viewerRouterWan]);
  });

  it('the public side cannot open a flow into either home network', async () => {
    const viewerHome = bed.ns.viewerHome!;
    const home = await receiver(bed, bed.ns.home, bed.addr.home, [40_010]);
    const viewer = await receiver(bed, viewerHome, bed.addr.viewerHome, [40_010]);
    // To the routers' public addresses (no forward there), and straight to the home addresses as
    // a neighbour on the routers' segment could try (routes added for the test only).
    await bed.exec(bed.ns.public, 'ip', ['route', 'add', '10.199.1.0/24', 'via', bed.addr.routerWan]);
    await bed.exec(bed.ns.public, 'ip', ['route', 'add', '10.199.2.0/24', 'via', bed.addr.viewerRouterWan]);
    let replies: Line[];
    try {
      replies = await send(
        bed,
        bed.ns.public,
        5010,
        [`${bed.addr.routerWan}:40010`, `${bed.addr.viewerRouterWan}:40010`, `${bed.addr.home}:40010`, `${bed.addr.viewerHome}:40010`],
        700,
      );
    } finally {
      await bed.exec(bed.ns.public, 'ip', ['route', 'del', '10.199.1.0/24']).catch(() => undefined);
      await bed.exec(bed.ns.public, 'ip', ['route', 'del', '10.199.2.0/24']).catch(() => undefined);
    }
    expect(replies).toEqual([]);
    expect(home.lines().filter((l) => 'from' in l)).toEqual([]);
    expect(viewer.lines().filter((l) => 'from' in l)).toEqual([]);
  });

  it("'preserve-port' keeps one external port per socket, 'symmetric' draws one per destination", async () => {
    const seenPorts = async (b: TestBed, port0: number): Promise<number[]> => {
      const r = await receiver(b, b.ns.public, b.addr.public, [port0, port0 + 1]);
      const replies = await send(b, b.ns.home, 40_020, [`${b.addr.public}:${port0}`, `${b.addr.public}:${port0 + 1}`]);
      expect(replies).toHaveLength(2); // the replies come back through either kind of NAT
      await r.stop();
      const got = r.lines().filter((l) => 'from' in l) as { port: number; from: string; fromPort: number }[];
      expect(got.map((l) => l.from)).toEqual([b.addr.routerWan, b.addr.routerWan]);
      return got.sort((x, y) => x.port - y.port).map((l) => l.fromPort);
    };
    expect(await seenPorts(bed, 5020)).toEqual([40_020, 40_020]);
    const [a, b] = await seenPorts(sym, 5020);
    expect(a, 'symmetric NAT reused the external port for a second destination').not.toBe(b);
  });

  it('coturn grants a TURN allocation for REST credentials and refuses a wrong one', async () => {
    const viewerHome = bed.ns.viewerHome!;
    const relayCandidate = new RegExp(` ${bed.addr.turn.replace(/\./g, '\\.')} \\d+ typ relay`);
    const { username, credential: password } = turnRestCredentials(TURN_SECRET, 'viewer-1', Date.now() + 3_600_000);
    expect(username).toMatch(/^\d+:viewer-1$/);
    const server = { hostname: turn.ip, port: turn.port, relayType: 'TurnUdp' };

    // An IceServer object carries a username with ':' as it is.
    const before = turn.allocations();
    const withObject = await gather(bed, viewerHome, { ...server, username, password });
    expect(
      withObject.some((c) => relayCandidate.test(c)),
      withObject.join('\n'),
    ).toBe(true);
    expect(withObject.some((c) => c.includes(` ${bed.addr.viewerRouterWan} `) && c.includes('typ srflx'))).toBe(true);
    // coturn's log can trail the client's view by a moment.
    await waitFor("the allocation in coturn's log", () => turn.allocations() === before + 1 || undefined, 5_000);

    // A URL string needs the username and password percent-encoded: node-datachannel (libdatachannel)
    // splits user:pass at the first ':' and URL-decodes both.
    const encoded = `turn:${encodeURIComponent(username)}:${encodeURIComponent(password)}@${turn.ip}:${turn.port}`;
    const withUrl = await gather(bed, viewerHome, encoded, 'relay');
    expect(withUrl.length > 0 && withUrl.every((c) => relayCandidate.test(c)), withUrl.join('\n')).toBe(true);
    const raw = `turn:${username}:${password}@${turn.ip}:${turn.port}`;
    expect((await gather(bed, viewerHome, raw, 'relay')).filter((c) => relayCandidate.test(c))).toEqual([]);

    // A wrong password: refused (401), no relay candidate.
    const rejectedBefore = turn.rejectedAllocations();
    const allocationsBefore = turn.allocations();
    const wrong = await gather(bed, viewerHome, { ...server, username, password: 'not-the-password' });
    expect(wrong.filter((c) => relayCandidate.test(c))).toEqual([]);
    expect(turn.allocations()).toBe(allocationsBefore);
    await waitFor("the 401 in coturn's log", () => turn.rejectedAllocations() > rejectedBefore || undefined, 5_000);
  });

  it('a hardened coturn allocation cannot reach private, link-local (cloud metadata) or loopback peers, a public one it can; unhardened it reaches the private peer', async () => {
    // Hosts on the TURN server's own network: a LAN service and a metadata endpoint, as in a cloud VPC.
    const lan = '10.199.99.1';
    const metadata = '169.254.169.254';
    for (const a of [lan, metadata]) await bed.exec(bed.ns.public, 'ip', ['addr', 'add', `${a}/32`, 'dev', 'lo']);
    const targets = { lan: `${lan}:5301`, metadata: `${metadata}:5302`, loopback: '127.0.0.1:5303', public: `${bed.addr.public}:5304` };
    const receivers = await Promise.all(Object.values(targets).map((t) => receiver(bed, bed.ns.public, t.split(':')[0] as string, [Number(t.split(':')[1])])));
    const heard = (): string[] =>
      receivers.flatMap((r) =>
        r
          .lines()
          .filter((l) => 'msg' in l)
          .map((l) => String(l['msg'])),
      );
    const probe = async (server: Coturn, id: string): Promise<{ relayed: string | null; allocateError?: string; peers: Record<string, string> }> => {
      const { username, credential } = turnRestCredentials(TURN_SECRET, id, Date.now() + 600_000);
      const p = runScript(bed.ns.viewerHome!, script('turn-probe.mjs'), [server.ip, String(server.port), username, credential, ...Object.values(targets)]);
      await p.done;
      const line = p.lines()[0];
      if (line === undefined) throw new Error(`turn probe printed nothing:\n${p.output()}`);
      return line as { relayed: string | null; peers: Record<string, string> };
    };

    const hardened = await probe(turn, 'attacker-1');
    expect(hardened.relayed, JSON.stringify(hardened)).toMatch(new RegExp(`^${bed.addr.turn.replace(/\./g, '\\.')}:\\d+$`));
    expect(hardened.peers[targets.lan], JSON.stringify(hardened)).toMatch(/^error 403/);
    expect(hardened.peers[targets.metadata], JSON.stringify(hardened)).toMatch(/^error 403/);
    expect(hardened.peers[targets.loopback], JSON.stringify(hardened)).toMatch(/^error 403/);
    expect(hardened.peers[targets.public], JSON.stringify(hardened)).toBe('ok');
    await waitFor('the public peer to hear the allocation', () => heard().includes(`turn-probe ${targets.public}`) || undefined, 5_000);
    await sleep(300);
    expect(heard()).toEqual([`turn-probe ${targets.public}`]);

    // The same request to a coturn without the hardening reaches the LAN host: what the hardening prevents.
    const open = await startCoturn(bed, { secret: TURN_SECRET, listenIp: bed.addr.public, port: 3479, hardened: false });
    try {
      const unhardened = await probe(open, 'attacker-2');
      expect(unhardened.peers[targets.lan], JSON.stringify(unhardened)).toBe('ok');
      await waitFor('the LAN peer to hear the unhardened allocation', () => heard().includes(`turn-probe ${targets.lan}`) || undefined, 5_000);
    } finally {
      await open.stop();
    }
  });
});
