import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { ErrorCode, STUN_MAGIC_COOKIE, StunAttribute, StunMessageType, isRelaycastError } from '@relaycast/protocol';
import { DEFAULT_STUN_PORT, STUN_FIRST_RETRANSMIT_MS } from '../constants.js';
import { discoverPublicAddress, parseStunServerUrl } from './stun-client.js';

const logger = pino({ level: 'silent' });
const COTURN = '/usr/bin/turnserver';
const HAS_COTURN = existsSync(COTURN);

// ---------------------------------------------------------------------------------------------
// A STUN responder on a real UDP socket
// ---------------------------------------------------------------------------------------------

interface Request {
  transactionId: Uint8Array;
  from: RemoteInfo;
  atMs: number;
}

type Behaviour = (req: Request, reply: (bytes: Uint8Array) => void, sock: Socket) => void;

interface Responder {
  url: string;
  port: number;
  requests: Request[];
  close(): Promise<void>;
}

const open: Responder[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((r) => r.close()));
});

/** Sockets the tests themselves hold open, so the client's own socket can be counted apart. */
const testSockets = new Set<Socket>();

async function udpSocket(): Promise<Socket> {
  const sock = createSocket('udp4');
  testSockets.add(sock);
  sock.once('close', () => testSockets.delete(sock));
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(0, '127.0.0.1', () => resolve());
  });
  return sock;
}

async function startResponder(behaviour: Behaviour = answer): Promise<Responder> {
  const sock = await udpSocket();
  const port = sock.address().port;
  const requests: Request[] = [];
  sock.on('message', (msg, from) => {
    // Only Binding requests with the RFC 5389 cookie: what the client under test sends.
    if (msg.byteLength < 20 || msg.readUInt16BE(0) !== StunMessageType.BINDING_REQUEST || msg.readUInt32BE(4) !== STUN_MAGIC_COOKIE) return;
    const req = { transactionId: new Uint8Array(msg.subarray(8, 20)), from, atMs: performance.now() };
    requests.push(req);
    behaviour(req, (bytes) => sock.send(bytes, from.port, from.address), sock);
  });
  const r: Responder = {
    url: `stun:127.0.0.1:${port}`,
    port,
    requests,
    close: () => new Promise<void>((resolve) => sock.close(() => resolve())),
  };
  open.push(r);
  return r;
}

const answer: Behaviour = (req, reply) => reply(response(req.transactionId, [xorMappedAddress(req.from.address, req.from.port)]));
const silent: Behaviour = () => {};

function response(transactionId: Uint8Array, attrs: Array<[number, Uint8Array]>, type: number = StunMessageType.BINDING_SUCCESS): Uint8Array {
  const body = Buffer.concat(
    attrs.map(([t, v]) => {
      const a = Buffer.alloc(4 + Math.ceil(v.byteLength / 4) * 4);
      a.writeUInt16BE(t, 0);
      a.writeUInt16BE(v.byteLength, 2);
      a.set(v, 4);
      return a;
    }),
  );
  const header = Buffer.alloc(20);
  header.writeUInt16BE(type, 0);
  header.writeUInt16BE(body.byteLength, 2);
  header.writeUInt32BE(STUN_MAGIC_COOKIE, 4);
  header.set(transactionId, 8);
  return Buffer.concat([header, body]);
}

/** IPv4 XOR-MAPPED-ADDRESS: only the cookie is the XOR key (the transaction id is for IPv6). */
function xorMappedAddress(address: string, port: number): [number, Uint8Array] {
  const v = Buffer.alloc(8);
  v[1] = 0x01;
  v.writeUInt16BE(port ^ (STUN_MAGIC_COOKIE >>> 16), 2);
  v.writeUInt32BE((address.split('.').reduce((n, o) => n * 256 + Number(o), 0) ^ STUN_MAGIC_COOKIE) >>> 0, 4);
  return [StunAttribute.XOR_MAPPED_ADDRESS, v];
}

function errorCode(code: number, reason: string): [number, Uint8Array] {
  return [StunAttribute.ERROR_CODE, Buffer.concat([Buffer.from([0, 0, Math.floor(code / 100), code % 100]), Buffer.from(reason)])];
}

/** UDP handles open in this process that the tests do not own: the client's. */
function clientSockets(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'UDPWrap').length - testSockets.size;
}

/** libuv releases a closed handle a moment after close()'s callback, so wait a little for it. */
async function expectClientSockets(n: number): Promise<void> {
  const until = Date.now() + 1_000;
  while (clientSockets() !== n && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
  expect(clientSockets()).toBe(n);
}

const signal = (): AbortSignal => new AbortController().signal;

// ---------------------------------------------------------------------------------------------

describe('parseStunServerUrl', () => {
  it('stun:host[:port], default port 3478; turn:, turns:, stuns: and IPv6 literals skipped', () => {
    expect(parseStunServerUrl('stun:stun.example.org')).toEqual({ host: 'stun.example.org', port: DEFAULT_STUN_PORT });
    expect(parseStunServerUrl('stun:stun.l.google.com:19302')).toEqual({ host: 'stun.l.google.com', port: 19302 });
    expect(parseStunServerUrl('STUN:192.0.2.1:1')).toEqual({ host: '192.0.2.1', port: 1 });
    expect(parseStunServerUrl('stun://192.0.2.1:5000')).toEqual({ host: '192.0.2.1', port: 5000 });
    for (const skipped of [
      'turn:turn.example.org:3478?transport=udp',
      'turns:turn.example.org:5349',
      'stuns:stun.example.org',
      'stun:[2001:db8::1]:3478',
      'stun:[::1]',
    ]) {
      expect(parseStunServerUrl(skipped)).toBeUndefined();
    }
  });

  it('anything else is RC_ERR_CONFIG_INVALID', () => {
    for (const bad of [
      '',
      'stun:',
      'stun::3478',
      'stun:host:0',
      'stun:host:65536',
      'stun:host:123456',
      'http://host',
      'host:3478',
      'stun:a b',
      'stun:user@host',
      'stun:host:3478?transport=udp',
      'stun:2001:db8::1',
      'stun:[zz]',
    ]) {
      let err: unknown;
      try {
        parseStunServerUrl(bad);
      } catch (e) {
        err = e;
      }
      expect(isRelaycastError(err, ErrorCode.CONFIG_INVALID), bad).toBe(true);
    }
  });
});

describe('discoverPublicAddress', () => {
  it('discovers 127.0.0.1 and the source port the server saw, through a host name too', async () => {
    const server = await startResponder();
    const result = await discoverPublicAddress([server.url], { signal: signal(), logger });
    expect(result).toEqual({ address: '127.0.0.1', port: server.requests[0]!.from.port, server: server.url });
    expect(server.requests).toHaveLength(1);
    await expectClientSockets(0);

    const named = `stun:localhost:${server.port}`;
    const viaName = await discoverPublicAddress([named], { signal: signal(), bindAddress: '127.0.0.1' });
    expect(viaName).toEqual({ address: '127.0.0.1', port: server.requests[1]!.from.port, server: named });
    await expectClientSockets(0);
  });

  it('binds to bindAddress; an address it cannot bind is RC_ERR_CONFIG_INVALID and leaks nothing', async () => {
    const server = await startResponder();
    await discoverPublicAddress([server.url], { signal: signal(), bindAddress: '127.0.0.1' });
    expect(server.requests[0]!.from.address).toBe('127.0.0.1');
    const err = await discoverPublicAddress([server.url], { signal: signal(), bindAddress: '192.0.2.123' }).catch((e: unknown) => e);
    expect(isRelaycastError(err, ErrorCode.CONFIG_INVALID)).toBe(true);
    await expectClientSockets(0);
  });

  it('retransmits to a silent server at 0, T, 3T, then moves on to the next server', async () => {
    const dead = await startResponder(silent);
    const alive = await startResponder();
    const timeoutMs = 4 * STUN_FIRST_RETRANSMIT_MS; // sends at 0, 250 and 750 ms, gives up at 1000
    const t0 = performance.now();
    const result = await discoverPublicAddress(['turn:127.0.0.1:1', dead.url, alive.url], { signal: signal(), timeoutMs, logger });
    const elapsed = performance.now() - t0;
    expect(result.server).toBe(alive.url);
    expect(result.address).toBe('127.0.0.1');
    expect(elapsed).toBeGreaterThanOrEqual(timeoutMs - 5);
    expect(elapsed).toBeLessThan(timeoutMs + 1_000);
    expect(dead.requests).toHaveLength(3);
    // Retransmissions repeat the same transaction; the next server gets a fresh one.
    for (const r of dead.requests) expect(Buffer.from(r.transactionId).equals(Buffer.from(dead.requests[0]!.transactionId))).toBe(true);
    expect(Buffer.from(alive.requests[0]!.transactionId).equals(Buffer.from(dead.requests[0]!.transactionId))).toBe(false);
    const gaps = dead.requests.slice(1).map((r, i) => r.atMs - dead.requests[i]!.atMs);
    expect(gaps[0]).toBeGreaterThanOrEqual(STUN_FIRST_RETRANSMIT_MS - 20);
    expect(gaps[1]).toBeGreaterThanOrEqual(2 * STUN_FIRST_RETRANSMIT_MS - 20);
  });

  it('a lost request is retransmitted and the late answer is taken', async () => {
    let seen = 0;
    const flaky = await startResponder((req, reply, sock) => {
      if (++seen > 1) answer(req, reply, sock);
    });
    const result = await discoverPublicAddress([flaky.url], { signal: signal(), timeoutMs: 2_000, logger });
    expect(result.address).toBe('127.0.0.1');
    expect(flaky.requests).toHaveLength(2);
  });

  it('all servers dead: RC_ERR_STUN_TIMEOUT within the per-server bound, socket closed', async () => {
    const a = await startResponder(silent);
    const b = await startResponder(silent);
    const timeoutMs = 300;
    const t0 = performance.now();
    const err = await discoverPublicAddress([a.url, b.url], { signal: signal(), timeoutMs, logger }).catch((e: unknown) => e);
    const elapsed = performance.now() - t0;
    expect(isRelaycastError(err, ErrorCode.STUN_TIMEOUT)).toBe(true);
    expect(isRelaycastError((err as Error).cause, ErrorCode.STUN_TIMEOUT)).toBe(true);
    expect(elapsed).toBeGreaterThanOrEqual(2 * timeoutMs - 5);
    expect(elapsed).toBeLessThan(2 * timeoutMs + 1_000);
    expect(a.requests.length).toBeGreaterThanOrEqual(1);
    expect(b.requests.length).toBeGreaterThanOrEqual(1);
    await expectClientSockets(0);
  });

  it('no usable server: RC_ERR_STUN_TIMEOUT at once, without opening a socket', async () => {
    for (const servers of [[], ['turn:127.0.0.1:3478', 'turns:127.0.0.1:5349']]) {
      const err = await discoverPublicAddress(servers, { signal: signal() }).catch((e: unknown) => e);
      expect(isRelaycastError(err, ErrorCode.STUN_TIMEOUT)).toBe(true);
    }
    const bad = await discoverPublicAddress(['stun:'], { signal: signal() }).catch((e: unknown) => e);
    expect(isRelaycastError(bad, ErrorCode.CONFIG_INVALID)).toBe(true);
    const badTimeout = await discoverPublicAddress(['stun:127.0.0.1'], { signal: signal(), timeoutMs: 0 }).catch((e: unknown) => e);
    expect(isRelaycastError(badTimeout, ErrorCode.CONFIG_INVALID)).toBe(true);
    await expectClientSockets(0);
  });

  it('ignores garbage, other transactions and datagrams from other addresses', async () => {
    const spoofer = await udpSocket();
    try {
      const server = await startResponder((req, reply) => {
        const to = req.from;
        // The right transaction id from the wrong source port: an off-path guess must not count.
        spoofer.send(response(req.transactionId, [xorMappedAddress('6.6.6.6', 6666)]), to.port, to.address);
        reply(Buffer.from('not stun at all, just some bytes'));
        reply(new Uint8Array(0));
        reply(response(new Uint8Array(12).fill(7), [xorMappedAddress('7.7.7.7', 7777)]));
        const truncated = response(req.transactionId, [xorMappedAddress('8.8.8.8', 8888)]);
        reply(truncated.subarray(0, truncated.byteLength - 2));
        setTimeout(() => answer(req, reply, spoofer), 50);
      });
      const result = await discoverPublicAddress([server.url], { signal: signal(), timeoutMs: 2_000, logger });
      expect(result).toEqual({ address: '127.0.0.1', port: server.requests[0]!.from.port, server: server.url });
      // Answered before the first retransmission, so nothing above was taken for an answer.
      expect(server.requests).toHaveLength(1);
    } finally {
      await new Promise<void>((resolve) => spoofer.close(() => resolve()));
    }
  });

  it('an error response moves on to the next server at once', async () => {
    const refusing = await startResponder((req, reply) => reply(response(req.transactionId, [errorCode(500, 'Server Error')], StunMessageType.BINDING_ERROR)));
    const alive = await startResponder();
    const t0 = performance.now();
    const result = await discoverPublicAddress([refusing.url, alive.url], { signal: signal(), timeoutMs: 3_000, logger });
    expect(result.server).toBe(alive.url);
    expect(performance.now() - t0).toBeLessThan(1_000);
    expect(refusing.requests).toHaveLength(1);

    const err = await discoverPublicAddress([refusing.url], { signal: signal(), timeoutMs: 3_000 }).catch((e: unknown) => e);
    expect(isRelaycastError(err, ErrorCode.STUN_TIMEOUT)).toBe(true);
    const cause = (err as Error).cause;
    expect(isRelaycastError(cause, ErrorCode.STUN_ERROR_RESPONSE)).toBe(true);
    expect((cause as { details?: Record<string, unknown> }).details).toEqual({ stunCode: 500, reason: 'Server Error' });
  });

  it('abort mid-way rejects with the abort reason at once and closes the socket', async () => {
    const dead = await startResponder(silent);
    const ac = new AbortController();
    const reason = new Error('relay shutting down');
    const pending = discoverPublicAddress([dead.url, dead.url], { signal: ac.signal, timeoutMs: 10_000, logger });
    const outcome = pending.then(
      () => 'resolved',
      (e: unknown) => e,
    );
    await new Promise((r) => setTimeout(r, 300));
    await expectClientSockets(1);
    const t0 = performance.now();
    ac.abort(reason);
    expect(await outcome).toBe(reason);
    expect(performance.now() - t0).toBeLessThan(100);
    await expectClientSockets(0);
    const sent = dead.requests.length;
    await new Promise((r) => setTimeout(r, 2 * STUN_FIRST_RETRANSMIT_MS));
    expect(dead.requests.length).toBe(sent); // no retransmission timer survived
  });

  it('an already aborted signal rejects with its reason without opening a socket', async () => {
    const reason = new Error('already gone');
    const err = await discoverPublicAddress(['stun:127.0.0.1:9'], { signal: AbortSignal.abort(reason) }).catch((e: unknown) => e);
    expect(err).toBe(reason);
    await expectClientSockets(0);
  });
});

describe('discoverPublicAddress against coturn', () => {
  let child: ChildProcess | undefined;
  let dir: string | undefined;

  afterAll(async () => {
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child!.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const killer = setTimeout(() => child!.kill('SIGKILL'), 3_000);
      await exited;
      clearTimeout(killer);
    }
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it.skipIf(!HAS_COTURN)(`discovers 127.0.0.1 from a real turnserver${HAS_COTURN ? '' : ` (skipped: ${COTURN} not installed)`}`, async () => {
    const probe = await udpSocket();
    const port = probe.address().port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    dir = mkdtempSync(join(tmpdir(), 'relaycast-coturn-'));
    // -n: no /etc/turnserver.conf; pid file and user db in the temp dir, so nothing outside it is touched.
    const args = ['-n', '--listening-ip', '127.0.0.1', '--listening-port', String(port), '--no-tls', '--no-dtls', '--no-cli', '--no-auth'];
    args.push('--log-file', 'stdout', '--simple-log', '--pidfile', join(dir, 'turnserver.pid'), '--userdb', join(dir, 'turndb'));
    const proc = spawn(COTURN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    let output = '';
    proc.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    proc.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<never>((_, reject) =>
      proc.once('exit', (code, sig) => reject(new Error(`turnserver exited (${code ?? sig}): ${output.slice(-2000)}`))),
    );

    const url = `stun:127.0.0.1:${port}`;
    const until = Date.now() + 15_000;
    let result: Awaited<ReturnType<typeof discoverPublicAddress>> | undefined;
    while (result === undefined) {
      try {
        result = await Promise.race([discoverPublicAddress([url], { signal: signal(), timeoutMs: 500, logger }), exited]);
      } catch (err) {
        if (!isRelaycastError(err, ErrorCode.STUN_TIMEOUT) || Date.now() > until) throw err;
      }
    }
    expect(result.address).toBe('127.0.0.1');
    expect(result.port).toBeGreaterThan(0);
    expect(result.server).toBe(url);
  });
});
