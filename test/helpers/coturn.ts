import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestBed } from './netns.js';
import { GiveUp, waitFor } from './processes.js';

/** Relay (allocation) ports coturn may hand out: small, so a leak shows quickly. */
const MIN_RELAY_PORT = 49_160;
const MAX_RELAY_PORT = 49_200;
const RING_LINES = 500;

export interface CoturnOptions {
  /** TURN REST API shared secret (`static-auth-secret`). */
  secret: string;
  /** Realm; `relaycast.test` by default. */
  realm?: string;
  /** Address coturn listens and relays on; the bed's `addr.turn` (11.199.0.20) by default. */
  listenIp?: string;
  /** UDP (and TCP) listening port; 3478 by default. */
  port?: number;
  /**
   * The hardening of docs/NAT.md (denied-peer-ip for private, loopback, link-local, metadata and
   * other special ranges, no-tcp-relay, quotas). Default true; false only to show what it prevents.
   */
  hardened?: boolean;
}

/**
 * Peer ranges a TURN server must never relay to (docs/NAT.md, "Hardening coturn"): an allocation
 * is a UDP socket on the TURN server's network, so without these any viewer holding a credential
 * can reach the operator's LAN, loopback services and the cloud metadata endpoint (169.254.169.254,
 * fd00:ec2::254). coturn 4.6 has no default list. No range starting at `::` (coturn 4.6.1 compares
 * an IPv4 peer against it as if it were inside, refusing every IPv4 peer); ::1 is refused by
 * coturn's own loopback rule.
 */
export const COTURN_DENIED_PEER_RANGES: readonly string[] = [
  '0.0.0.0-0.255.255.255', // "this network"
  '10.0.0.0-10.255.255.255', // RFC 1918
  '100.64.0.0-100.127.255.255', // carrier-grade NAT (RFC 6598)
  '127.0.0.0-127.255.255.255', // loopback
  '169.254.0.0-169.254.255.255', // link-local, cloud metadata 169.254.169.254
  '172.16.0.0-172.31.255.255', // RFC 1918
  '192.0.0.0-192.0.0.255', // IETF protocol assignments
  '192.0.2.0-192.0.2.255', // TEST-NET-1
  '192.88.99.0-192.88.99.255', // 6to4 relay anycast
  '192.168.0.0-192.168.255.255', // RFC 1918
  '198.18.0.0-198.19.255.255', // benchmarking
  '198.51.100.0-198.51.100.255', // TEST-NET-2
  '203.0.113.0-203.0.113.255', // TEST-NET-3
  '224.0.0.0-255.255.255.255', // multicast, reserved, broadcast
  '64:ff9b::-64:ff9b::ffff:ffff', // NAT64 (would reach IPv4 ranges above)
  '64:ff9b:1::-64:ff9b:1:ffff:ffff:ffff:ffff:ffff', // local-use NAT64
  '100::-100::ffff:ffff:ffff:ffff', // discard-only
  '2001:db8::-2001:db8:ffff:ffff:ffff:ffff:ffff:ffff', // documentation
  'fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', // unique local, AWS metadata fd00:ec2::254
  'fe80::-febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff', // link-local
  'ff00::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', // multicast
];

/**
 * The rest of the hardening: TURN for WebRTC data channels needs UDP relaying only; allocations per
 * credential (one viewer connection's TURN REST username) and in all are bounded, and so is each
 * session's bandwidth (bytes/s, each direction: 3,000,000 ≈ 24 Mbit/s, above any rendition a
 * viewer streams, far below what a flood would want).
 */
export const COTURN_HARDENING: readonly string[] = [
  ...COTURN_DENIED_PEER_RANGES.map((r) => `denied-peer-ip=${r}`),
  'no-tcp-relay',
  'no-multicast-peers',
  'user-quota=12',
  'total-quota=1200',
  'max-bps=3000000',
  'stale-nonce=600',
];

export interface Coturn {
  /** e.g. `turn:11.199.0.20:3478?transport=udp` (no credentials: the tracker's turnRestCredentials makes them). */
  url: string;
  /** e.g. `stun:11.199.0.20:3478`. */
  stunUrl: string;
  ip: string;
  port: number;
  realm: string;
  /** Last lines of coturn's log. */
  output(): string;
  /**
   * Successful TURN allocations seen in the log since start. coturn 4.6.1 logs, per allocation,
   * `session 001000000000000001: new, realm=<...>, username=<1796094508:viewer1>, lifetime=600`
   * followed by `session ...: realm <...> user <...>: incoming packet ALLOCATE processed, success`;
   * the latter is counted. A bad credential logs `... processed, error 401: Unauthorized`.
   */
  allocations(): number;
  /**
   * Requests refused with 401 although the client sent a username (a wrong password or expired
   * username): `... user <1796094508:viewer1>: incoming packet message processed, error 401: Unauthorized`.
   */
  rejectedAllocations(): number;
  stop(): Promise<void>;
}

/**
 * Runs Debian's coturn `turnserver` inside the bed's public namespace with TURN REST auth, UDP and
 * TCP listeners on `listenIp:port`, relay ports 49160-49200 on the same address, no TLS/DTLS, no
 * CLI, no /etc/turnserver.conf (its config file and SQLite db live in a temp dir) and its log on
 * stdout. Resolves once its UDP listener is open. Hardened as docs/NAT.md says (COTURN_HARDENING)
 * unless `hardened: false`: coturn 4.6.1 itself has no default `denied-peer-ip` ranges, so without
 * it peers with private addresses are relayed to; loopback peers are refused either way.
 */
export async function startCoturn(bed: TestBed, opts: CoturnOptions): Promise<Coturn> {
  const ip = opts.listenIp ?? bed.addr.turn;
  const port = opts.port ?? 3478;
  const realm = opts.realm ?? 'relaycast.test';
  const dir = await mkdtemp(join(tmpdir(), 'rc-coturn-'));
  const conf = [
    `listening-ip=${ip}`,
    `relay-ip=${ip}`,
    `listening-port=${port}`,
    `min-port=${MIN_RELAY_PORT}`,
    `max-port=${MAX_RELAY_PORT}`,
    'use-auth-secret',
    `static-auth-secret=${opts.secret}`,
    `realm=${realm}`,
    'fingerprint',
    'no-tls',
    'no-dtls',
    'no-cli',
    'no-multicast-peers',
    ...(opts.hardened === false ? [] : COTURN_HARDENING),
    'log-file=stdout',
    'simple-log',
    // Needed for the per-session lines allocations() counts.
    'verbose',
    `pidfile=${join(dir, 'turnserver.pid')}`,
    // Its default db is /var/lib/turn/turndb: keep everything in the temp dir.
    `userdb=${join(dir, 'turndb')}`,
    '',
  ].join('\n');
  await writeFile(join(dir, 'turnserver.conf'), conf);
  const child: ChildProcess = spawn('ip', ['netns', 'exec', bed.ns.public, 'turnserver', '-c', join(dir, 'turnserver.conf')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let allocations = 0;
  let rejected = 0;
  let partial = '';
  const keep = (d: Buffer): void => {
    const text = partial + d.toString();
    const parts = text.split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) {
      if (line === '') continue;
      if (/incoming packet ALLOCATE processed, success/.test(line)) allocations++;
      // The first Allocate of every session is refused 401 without credentials (user <>), by design.
      else if (/user <[^>]+>: incoming packet \w+ processed, error 401/.test(line)) rejected++;
      lines.push(line);
    }
    if (lines.length > RING_LINES) lines.splice(0, lines.length - RING_LINES);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));
  const output = (): string => [...lines, partial].filter(Boolean).join('\n');
  const stop = async (): Promise<void> => {
    if (!exited) child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exit;
    clearTimeout(killer);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const listening = new RegExp(`UDP listener opened on\\s*:\\s*${ip.replace(/\./g, '\\.')}:${port}\\b`);
    await waitFor('turnserver to listen', () => {
      if (exited) throw new GiveUp(`turnserver exited:\n${output()}`);
      return listening.test(output()) || undefined;
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url: `turn:${ip}:${port}?transport=udp`,
    stunUrl: `stun:${ip}:${port}`,
    ip,
    port,
    realm,
    output,
    allocations: () => allocations,
    rejectedAllocations: () => rejected,
    stop,
  };
}

/**
 * A minimal TURN client (RFC 8656 over UDP, long-term credentials) as a script, so a test can ask
 * the TURN server for exactly what an attacker would: allocate, then a permission for each peer and
 * a Send indication to it. Prints one JSON line:
 * `{ relayed: "ip:port" | null, allocateError?: string, peers: { "ip:port": "ok" | "error <code> <reason>" | "timeout" } }`.
 * Arguments: server host, server port, username, password, peer "ip:port"...
 */
export const TURN_PROBE_MJS = `
import dgram from 'node:dgram';
import { createHash, createHmac, randomBytes } from 'node:crypto';
const [host, portText, username, password, ...peers] = process.argv.slice(2);
const port = Number(portText);
const COOKIE = 0x2112a442;
const sock = dgram.createSocket('udp4');
const pending = new Map();
sock.on('message', (m) => {
  if (m.length < 20) return;
  const id = m.subarray(8, 20).toString('hex');
  const p = pending.get(id);
  if (p) { pending.delete(id); p(m); }
});
await new Promise((r) => sock.bind(0, r));
const attr = (type, value) => {
  const pad = (4 - (value.length % 4)) % 4;
  const b = Buffer.alloc(4 + value.length + pad);
  b.writeUInt16BE(type, 0); b.writeUInt16BE(value.length, 2); value.copy(b, 4);
  return b;
};
const xorAddr = (ipPort) => {
  const [ip, p] = ipPort.split(':');
  const b = Buffer.alloc(8);
  b[1] = 1; b.writeUInt16BE(Number(p) ^ (COOKIE >>> 16), 2);
  const a = ip.split('.').map(Number);
  b.writeUInt32BE((((a[0] << 24) | (a[1] << 16) | (a[2] << 8) | a[3]) ^ COOKIE) >>> 0, 4);
  return b;
};
const readAttrs = (m) => {
  const out = new Map();
  for (let o = 20; o + 4 <= m.length; ) {
    const t = m.readUInt16BE(o), l = m.readUInt16BE(o + 2);
    out.set(t, m.subarray(o + 4, o + 4 + l));
    o += 4 + l + ((4 - (l % 4)) % 4);
  }
  return out;
};
let realm, nonce, key;
const request = (type, attrs, auth) => new Promise((resolve) => {
  const tid = randomBytes(12);
  let body = Buffer.concat(attrs);
  if (auth) {
    body = Buffer.concat([body, attr(0x0006, Buffer.from(username)), attr(0x0014, realm), attr(0x0015, nonce)]);
    const head = Buffer.alloc(20);
    head.writeUInt16BE(type, 0); head.writeUInt16BE(body.length + 24, 2); head.writeUInt32BE(COOKIE, 4); tid.copy(head, 8);
    const mac = createHmac('sha1', key).update(Buffer.concat([head, body])).digest();
    body = Buffer.concat([body, attr(0x0008, mac)]);
  }
  const head = Buffer.alloc(20);
  head.writeUInt16BE(type, 0); head.writeUInt16BE(body.length, 2); head.writeUInt32BE(COOKIE, 4); tid.copy(head, 8);
  const msg = Buffer.concat([head, body]);
  let tries = 0;
  const timer = setInterval(() => { if (++tries > 5) { clearInterval(timer); pending.delete(tid.toString('hex')); resolve(undefined); } else sock.send(msg, port, host); }, 300);
  pending.set(tid.toString('hex'), (m) => { clearInterval(timer); resolve(m); });
  sock.send(msg, port, host);
});
const errorOf = (m) => {
  const e = readAttrs(m).get(0x0009);
  return e ? 'error ' + (e[2] * 100 + e[3]) + ' ' + e.subarray(4).toString() : 'error';
};
const result = { relayed: null, peers: {} };
const transport = attr(0x0019, Buffer.from([17, 0, 0, 0]));
let res = await request(0x0003, [transport], false);
if (res && res.readUInt16BE(0) === 0x0113) {
  const a = readAttrs(res);
  realm = a.get(0x0014); nonce = a.get(0x0015);
  key = createHash('md5').update(username + ':' + realm.toString() + ':' + password).digest();
  res = await request(0x0003, [transport], true);
}
if (!res) result.allocateError = 'timeout';
else if (res.readUInt16BE(0) !== 0x0103) result.allocateError = errorOf(res);
else {
  const x = readAttrs(res).get(0x0016);
  const p = x.readUInt16BE(2) ^ (COOKIE >>> 16);
  const ip = (x.readUInt32BE(4) ^ COOKIE) >>> 0;
  result.relayed = [ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255].join('.') + ':' + p;
  for (const peer of peers) {
    const r = await request(0x0008, [attr(0x0012, xorAddr(peer))], true);
    result.peers[peer] = !r ? 'timeout' : r.readUInt16BE(0) === 0x0108 ? 'ok' : errorOf(r);
    // Sent whatever the answer: a refused permission must also mean no datagram reaches the peer.
    const tid = randomBytes(12);
    const body = Buffer.concat([attr(0x0012, xorAddr(peer)), attr(0x0013, Buffer.from('turn-probe ' + peer))]);
    const head = Buffer.alloc(20);
    head.writeUInt16BE(0x0016, 0); head.writeUInt16BE(body.length, 2); head.writeUInt32BE(COOKIE, 4); tid.copy(head, 8);
    sock.send(Buffer.concat([head, body]), port, host);
  }
}
await new Promise((r) => setTimeout(r, 300));
console.log(JSON.stringify(result));
sock.close();
`;
