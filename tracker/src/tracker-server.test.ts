import { createHmac } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { ErrorCode, TRACKER_HTTP_PATHS, TRACKER_SUBPROTOCOL, isRelaycastError, type ErrorMessage, type SignalMessage } from '@relaycast/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { startTracker, type Tracker, type TrackerOptions } from './index.js';
import { CLOSE_HEARTBEAT_TIMEOUT, CLOSE_POLICY_VIOLATION, CLOSE_REGISTRATION_REFUSED, CLOSE_REPLACED, CLOSE_TRY_AGAIN_LATER } from './constants.js';
import { connect, connectRelay, makePayerKey, makeRelayKey, registerMessage, sessionMessage, type TestClient } from './testing/clients.js';

const SWARM = 'https://cdn.example/live/master.m3u8';

const trackers: Tracker[] = [];
const clients: TestClient[] = [];

/**
 * The relays here are WebSocket-only stand-ins without WebRTC, so the reachability probe is off
 * (it would only add its own offers to their inbox); reachability.test.ts probes real peers.
 */
async function start(options: TrackerOptions = {}): Promise<Tracker> {
  const t = await startTracker({ port: 0, reachability: { enabled: false }, ...options });
  trackers.push(t);
  return t;
}

async function viewer(t: Tracker): Promise<TestClient> {
  const c = await connect(t.url);
  clients.push(c);
  return c;
}

async function relay(t: Tracker, info: Parameters<typeof connectRelay>[1] = {}): Promise<Awaited<ReturnType<typeof connectRelay>>> {
  const r = await connectRelay(t.url, info);
  clients.push(r);
  return r;
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.ws.terminate();
  await Promise.all(trackers.splice(0).map((t) => t.close()));
});

function expectError(msg: ErrorMessage, code: string): void {
  expect(msg.type).toBe('error');
  expect(msg.code).toBe(code);
  expect(msg.message.length).toBeGreaterThan(0);
}

const offer = (to: string, connectionId = 'c1'): Record<string, unknown> => ({
  type: 'signal',
  to,
  connectionId,
  signal: { kind: 'offer', sdp: 'v=0\r\n' },
});

describe('connection', () => {
  it('greets with hello: url-safe peer id, 32-byte nonce, heartbeat interval', async () => {
    const t = await start({ heartbeatIntervalMs: 1234 });
    const c = await viewer(t);
    expect(c.hello.peerId).toMatch(/^[A-Za-z0-9_-]{16,64}$/);
    expect(Buffer.from(c.hello.nonce, 'base64')).toHaveLength(32);
    expect(c.hello.heartbeatIntervalMs).toBe(1234);
    const other = await viewer(t);
    expect(other.hello.peerId).not.toBe(c.hello.peerId);
    expect(other.hello.nonce).not.toBe(c.hello.nonce);
  });

  it('refuses an upgrade without the tracker subprotocol', async () => {
    const t = await start();
    await expect(connect(t.url, [])).rejects.toThrow(/400/);
    await expect(connect(t.url, ['something-else'])).rejects.toThrow(/400/);
    expect(t.status().connections).toBe(0);
  });

  it('terminates a socket that stops answering pings', async () => {
    const t = await start({ pingIntervalMs: 50 });
    const { default: WebSocket } = await import('ws');
    const silent = new WebSocket(t.url, [TRACKER_SUBPROTOCOL], { autoPong: false });
    const healthy = await viewer(t);
    const [code] = (await once(silent, 'close')) as [number];
    expect(code).toBe(1006);
    await new Promise((r) => setTimeout(r, 150));
    expect(healthy.ws.readyState).toBe(healthy.ws.OPEN);
    expect(t.status().connections).toBe(1);
  });

  it('caps total connections with RC_ERR_TRACKER_FULL', async () => {
    const t = await start({ limits: { maxConnections: 2 } });
    const a = await viewer(t);
    await viewer(t);
    await expect(connect(t.url)).rejects.toThrow(/hello/);
    expect(t.status().connections).toBe(2);
    a.close();
    await a.closed;
    await expect.poll(() => t.status().connections).toBe(1);
    await viewer(t);
  });

  it('sends RC_ERR_TRACKER_FULL before closing a connection over the per-IP cap', async () => {
    const t = await start({ limits: { maxConnectionsPerIp: 1 } });
    await viewer(t);
    const { default: WebSocket } = await import('ws');
    const ws = new WebSocket(t.url, [TRACKER_SUBPROTOCOL]);
    const [data] = (await once(ws, 'message')) as [Buffer];
    const [code] = (await once(ws, 'close')) as [number];
    expect(JSON.parse(String(data))).toMatchObject({ type: 'error', code: ErrorCode.TRACKER_FULL });
    expect(code).toBe(CLOSE_TRY_AGAIN_LATER);
  });
});

describe('ICE servers', () => {
  it('hello carries STUN only; TURN credentials come on need, per relay handed to the connection (TURN REST scheme)', async () => {
    const secret = 'a shared secret of some length';
    const t = await start({ ice: { stunUrls: ['stun:stun.test:3478'], turnUrls: ['turn:turn.test:3478?transport=udp'], turnSecret: secret } });
    const r = await relay(t);
    const a = await viewer(t);
    const b = await viewer(t);
    for (const c of [a, b]) {
      expect(c.hello.iceServers).toEqual([{ urls: ['stun:stun.test:3478'] }]);
      c.send({ type: 'join', swarmId: SWARM });
      await c.next('shortlist');
      c.send({ type: 'turn', relayId: r.key.relayId });
      const ice = await c.next('ice');
      expect(ice.relayId).toBe(r.key.relayId);
      const [stun, turn] = ice.iceServers;
      expect(stun).toEqual({ urls: ['stun:stun.test:3478'] });
      expect(turn?.urls).toEqual(['turn:turn.test:3478?transport=udp']);
      const [expiry, peer] = (turn?.username ?? '').split(':');
      expect(peer).toBe(c.hello.peerId);
      // Minutes, not hours: the default lifetime is 10 min.
      expect(Number(expiry) * 1000).toBeGreaterThan(Date.now() + 9 * 60_000);
      expect(Number(expiry) * 1000).toBeLessThan(Date.now() + 11 * 60_000);
      expect(turn?.credential).toBe(
        createHmac('sha1', secret)
          .update(turn?.username ?? '')
          .digest('base64'),
      );
    }
    const plain = await start();
    expect((await viewer(plain)).hello.iceServers).toBeUndefined();
  });

  it('refuses TURN without a shared secret, with a lifetime over an hour, and malformed URLs', async () => {
    for (const ice of [
      { turnUrls: ['turn:x:3478'] },
      { turnUrls: ['turn:x:3478'], turnSecret: 'short' },
      { stunUrls: ['http://x'] },
      { turnUrls: ['turn:x:3478'], turnSecret: 'a shared secret of some length', turnCredentialTtlMs: 3_600_001 },
    ]) {
      await expect(start({ ice })).rejects.toMatchObject({ code: ErrorCode.CONFIG_INVALID });
    }
  });
});

describe('relay registration', () => {
  it('registers a relay that signs the nonce and lists it in status', async () => {
    const t = await start();
    const r = await relay(t, { region: 'us', capacity: 10, load: 2, streams: [SWARM] });
    const status = t.status();
    expect(status.relays).toHaveLength(1);
    expect(status.relays[0]).toMatchObject({ relayId: r.key.relayId, region: 'us', capacity: 10, load: 2, streams: [SWARM], health: 1 });
  });

  it('refuses a signature by another key and closes the socket', async () => {
    const t = await start();
    const c = await viewer(t);
    const claimed = makeRelayKey();
    const signer = makeRelayKey();
    c.send({ ...registerMessage(signer, c.hello.nonce), relayId: claimed.relayId });
    expectError(await c.next('error'), ErrorCode.REGISTRATION_SIGNATURE);
    expect((await c.closed).code).toBe(CLOSE_REGISTRATION_REFUSED);
    expect(t.status().relays).toHaveLength(0);
  });

  it('refuses a signature over another connection nonce (no replay)', async () => {
    const t = await start();
    const first = await viewer(t);
    const second = await viewer(t);
    const key = makeRelayKey();
    second.send(registerMessage(key, first.hello.nonce));
    expectError(await second.next('error'), ErrorCode.REGISTRATION_SIGNATURE);
    await second.closed;
  });

  it('a second registration of the same relay replaces the older connection', async () => {
    const t = await start();
    const old = await relay(t);
    const fresh = await connectRelay(t.url, { region: 'us' }, old.key);
    clients.push(fresh);
    expect((await old.closed).code).toBe(CLOSE_REPLACED);
    await new Promise((r) => setTimeout(r, 20));
    const status = t.status();
    expect(status.relays).toHaveLength(1);
    expect(status.relays[0]?.region).toBe('us');
    fresh.send({ type: 'heartbeat', capacity: 5, load: 1, streams: [] });
    await expect.poll(() => t.status().relays[0]?.capacity).toBe(5);
  });

  it('heartbeat updates capacity, load and streams; refused before registration', async () => {
    const t = await start();
    const r = await relay(t);
    r.send({ type: 'heartbeat', capacity: 7, load: 3, streams: [SWARM] });
    await expect.poll(() => t.status().relays[0]).toMatchObject({ capacity: 7, load: 3, streams: [SWARM] });
    const v = await viewer(t);
    v.send({ type: 'heartbeat', capacity: 1, load: 0, streams: [] });
    const err = await v.next('error');
    expectError(err, ErrorCode.NOT_REGISTERED);
    expect(err.ref).toBe('heartbeat');
  });

  it('evicts a silent relay and closes its socket; a heartbeating relay stays', async () => {
    const t = await start({ heartbeatIntervalMs: 50, heartbeatTimeoutMs: 400 });
    const silent = await relay(t);
    const alive = await relay(t);
    const beat = setInterval(() => alive.send({ type: 'heartbeat', capacity: 100, load: 0, streams: [] }), 30);
    try {
      expect((await silent.closed).code).toBe(CLOSE_HEARTBEAT_TIMEOUT);
      await new Promise((r) => setTimeout(r, 500));
      expect(t.status().relays.map((r) => r.relayId)).toEqual([alive.key.relayId]);
      expect(alive.ws.readyState).toBe(alive.ws.OPEN);
    } finally {
      clearInterval(beat);
    }
  });

  it('removes a relay at once when its socket closes', async () => {
    const t = await start();
    const r = await relay(t);
    expect(t.status().relays).toHaveLength(1);
    r.close();
    await r.closed;
    await expect.poll(() => t.status().relays.length).toBe(0);
  });
});

describe('join', () => {
  it('returns a shortlist of 3 by default, honours count, skips full relays', async () => {
    const t = await start();
    const rs = await Promise.all([relay(t), relay(t), relay(t), relay(t)]);
    const full = await relay(t, { capacity: 10, load: 10 });
    const v = await viewer(t);
    v.send({ type: 'join', swarmId: SWARM });
    const list = await v.next('shortlist');
    expect(list.swarmId).toBe(SWARM);
    expect(list.relays).toHaveLength(3);
    for (const d of list.relays) expect(rs.map((r) => r.key.relayId)).toContain(d.relayId);
    v.send({ type: 'join', swarmId: SWARM, count: 10 });
    const all = await v.next('shortlist');
    expect(all.relays).toHaveLength(4);
    expect(all.relays.map((d) => d.relayId)).not.toContain(full.key.relayId);
    // Affinity: another viewer of the same stream gets the same relays first.
    const w = await viewer(t);
    w.send({ type: 'join', swarmId: SWARM });
    expect((await w.next('shortlist')).relays).toEqual(list.relays);
    expect(t.status()).toMatchObject({ viewers: 2, swarms: 1 });
  });

  it('returns an empty shortlist when no relay is registered', async () => {
    const t = await start();
    const v = await viewer(t);
    v.send({ type: 'join', swarmId: SWARM, region: 'eu', count: 2 });
    expect((await v.next('shortlist')).relays).toEqual([]);
  });

  it('bounds viewers per swarm with RC_ERR_SWARM_FULL', async () => {
    const t = await start({ limits: { maxViewersPerSwarm: 1 } });
    const a = await viewer(t);
    const b = await viewer(t);
    a.send({ type: 'join', swarmId: SWARM });
    await a.next('shortlist');
    b.send({ type: 'join', swarmId: SWARM });
    expectError(await b.next('error'), ErrorCode.SWARM_FULL);
    b.send({ type: 'join', swarmId: `${SWARM}?other` });
    await b.next('shortlist');
  });

  it('bounds swarms per viewer by leaving the oldest', async () => {
    const t = await start({ limits: { maxSwarmsPerViewer: 2 } });
    const v = await viewer(t);
    for (const s of ['a', 'b', 'c']) {
      v.send({ type: 'join', swarmId: `${SWARM}#${s}` });
      await v.next('shortlist');
    }
    expect(t.status().swarms).toBe(2);
  });

  it('a relay connection cannot join and a viewer cannot register', async () => {
    const t = await start();
    const r = await relay(t);
    r.send({ type: 'join', swarmId: SWARM });
    expectError(await r.next('error'), ErrorCode.MESSAGE_TYPE);
    const v = await viewer(t);
    v.send({ type: 'join', swarmId: SWARM });
    await v.next('shortlist');
    v.send(registerMessage(makeRelayKey(), v.hello.nonce));
    expectError(await v.next('error'), ErrorCode.MESSAGE_TYPE);
  });
});

describe('signaling', () => {
  it('forwards offer, answer and candidates between a viewer and a relay handed to it', async () => {
    const t = await start();
    const r = await relay(t);
    const v = await viewer(t);
    v.send({ type: 'join', swarmId: SWARM, count: 1 });
    expect((await v.next('shortlist')).relays[0]?.relayId).toBe(r.key.relayId);

    v.send(offer(r.key.relayId, 'conn-1'));
    const atRelay = await r.next('signal');
    expect(atRelay).toEqual<SignalMessage>({ type: 'signal', from: v.hello.peerId, connectionId: 'conn-1', signal: { kind: 'offer', sdp: 'v=0\r\n' } });
    expect(atRelay).not.toHaveProperty('to');

    r.send({ type: 'signal', to: v.hello.peerId, connectionId: 'conn-1', signal: { kind: 'answer', sdp: 'v=0\r\na' } });
    expect(await v.next('signal')).toEqual({ type: 'signal', from: r.key.relayId, connectionId: 'conn-1', signal: { kind: 'answer', sdp: 'v=0\r\na' } });

    r.send({
      type: 'signal',
      to: v.hello.peerId,
      connectionId: 'conn-1',
      signal: { kind: 'candidate', candidate: 'candidate:1 1 UDP 1 127.0.0.1 5000 typ host', sdpMid: '0' },
    });
    expect((await v.next('signal')).signal).toEqual({ kind: 'candidate', candidate: 'candidate:1 1 UDP 1 127.0.0.1 5000 typ host', sdpMid: '0' });
    v.send({ type: 'signal', to: r.key.relayId, connectionId: 'conn-1', signal: { kind: 'end-of-candidates' } });
    expect((await r.next('signal')).signal).toEqual({ kind: 'end-of-candidates' });
  });

  it('refuses signaling to a relay that was not handed out, and the connection keeps working', async () => {
    const t = await start();
    const handed = await relay(t);
    const other = await relay(t, { capacity: 1, load: 1 }); // full: never handed out
    const v = await viewer(t);
    v.send({ type: 'join', swarmId: SWARM });
    expect((await v.next('shortlist')).relays.map((d) => d.relayId)).toEqual([handed.key.relayId]);
    v.send(offer(other.key.relayId));
    const err = await v.next('error');
    expectError(err, ErrorCode.SIGNAL_NOT_ALLOWED);
    expect(err.ref).toBe('signal');
    expect(await other.silentFor(50)).toBe(true);
    v.send({ type: 'join', swarmId: SWARM });
    await v.next('shortlist');
    v.send(offer(handed.key.relayId));
    await handed.next('signal');
  });

  it('refuses a relay signaling a viewer that was not handed that relay', async () => {
    const t = await start();
    const r = await relay(t);
    const stranger = await viewer(t);
    r.send({ type: 'signal', to: stranger.hello.peerId, connectionId: 'x', signal: { kind: 'offer', sdp: 'v=0' } });
    expectError(await r.next('error'), ErrorCode.SIGNAL_NOT_ALLOWED);
    expect(await stranger.silentFor(50)).toBe(true);
    // Relays cannot reach each other either.
    const r2 = await relay(t);
    r.send({ type: 'signal', to: r2.hello.peerId, connectionId: 'x', signal: { kind: 'offer', sdp: 'v=0' } });
    expectError(await r.next('error'), ErrorCode.SIGNAL_NOT_ALLOWED);
  });

  it('refuses signaling before join or register', async () => {
    const t = await start();
    const r = await relay(t);
    const v = await viewer(t);
    v.send(offer(r.key.relayId));
    expectError(await v.next('error'), ErrorCode.SIGNAL_NOT_ALLOWED);
  });

  it('answers RC_ERR_PEER_UNKNOWN when the target is gone', async () => {
    const t = await start();
    const r = await relay(t);
    const v = await viewer(t);
    v.send({ type: 'join', swarmId: SWARM });
    await v.next('shortlist');
    r.send({ type: 'signal', to: 'nobody-here-123', connectionId: 'x', signal: { kind: 'offer', sdp: 'v=0' } });
    expectError(await r.next('error'), ErrorCode.PEER_UNKNOWN);
    r.close();
    await r.closed;
    await expect.poll(() => t.status().relays.length).toBe(0);
    v.send(offer(r.key.relayId));
    expectError(await v.next('error'), ErrorCode.PEER_UNKNOWN);
  });

  it('reaches a relay on its new connection after it re-registers', async () => {
    const t = await start();
    const old = await relay(t);
    const v = await viewer(t);
    v.send({ type: 'join', swarmId: SWARM });
    await v.next('shortlist');
    const fresh = await connectRelay(t.url, {}, old.key);
    clients.push(fresh);
    await old.closed;
    v.send(offer(old.key.relayId));
    expect((await fresh.next('signal')).from).toBe(v.hello.peerId);
  });
});

describe('integrity reports', () => {
  const report = (relayId: string, n = 0): Record<string, unknown> => ({
    type: 'report',
    relayId,
    reason: 'integrity',
    url: `https://cdn.example/live/seg${n}.ts`,
    expectedSha256: 'a'.repeat(64),
    receivedSha256: 'b'.repeat(64),
  });
  const payer = makePayerKey();
  const trust = { trustedPayers: [payer.payerId] };
  let nextRange = 10;

  /** A viewer with a bound session of a distinct user, from its own address range (127.0.N.1). */
  async function joined(t: Tracker, user?: Uint8Array): Promise<TestClient> {
    const v = await connect(t.url, undefined, `127.0.${nextRange++}.1`);
    clients.push(v);
    v.send(sessionMessage(payer, v.hello.nonce, user === undefined ? {} : { user }).msg);
    await v.next('assignments');
    v.send({ type: 'join', swarmId: SWARM, count: 10 });
    await v.next('shortlist');
    return v;
  }

  async function shortlist(v: TestClient): Promise<string[]> {
    v.send({ type: 'join', swarmId: SWARM, count: 10 });
    return (await v.next('shortlist')).relays.map((d) => d.relayId);
  }

  const healthOf = (t: Tracker, relayId: string): number | undefined => t.status().relays.find((r) => r.relayId === relayId)?.health;

  it('health moves only once three distinct users reported; then the relay is no longer handed out', async () => {
    const t = await start({ trust });
    const bad = await relay(t);
    const good = await relay(t);
    const v1 = await joined(t);
    v1.send(report(bad.key.relayId, 1));
    v1.send(report(bad.key.relayId, 2));
    const refused = await v1.next('error');
    expectError(refused, ErrorCode.REPORT_REFUSED);
    expect(refused.ref).toBe('report');
    const v2 = await joined(t);
    v2.send(report(bad.key.relayId, 1));
    await shortlist(v2);
    // Two users: counted, but below minReporters the relay keeps full health.
    expect(t.status().relays.find((r) => r.relayId === bad.key.relayId)?.reporters).toBe(2);
    expect(healthOf(t, bad.key.relayId)).toBe(1);
    expect(await shortlist(v1)).toContain(bad.key.relayId);

    const v3 = await joined(t);
    v3.send(report(bad.key.relayId, 1));
    const fresh = await joined(t);
    expect(healthOf(t, bad.key.relayId)).toBe(0);
    expect(healthOf(t, good.key.relayId)).toBe(1);
    expect(await shortlist(fresh)).toEqual([good.key.relayId]);
    expect(await shortlist(v1)).toEqual([good.key.relayId]);
  });

  it('counts users, not connections: one user on many connections is one reporter', async () => {
    const t = await start({ trust, reputation: { minReporters: 2 } });
    const r = await relay(t);
    const user = new Uint8Array(16).fill(3);
    for (let i = 0; i < 4; i++) {
      const v = await joined(t, user);
      v.send(report(r.key.relayId, i));
      if (i > 0) expectError(await v.next('error'), ErrorCode.REPORT_REFUSED);
    }
    expect(t.status().relays[0]?.reporters).toBe(1);
    expect(healthOf(t, r.key.relayId)).toBe(1);
  });

  it('keeps the reports of a relay that reconnects, and forgets them after the window', async () => {
    const t = await start({ trust, reputation: { windowMs: 400 } });
    const key = makeRelayKey();
    const first = await connectRelay(t.url, {}, key);
    clients.push(first);
    const vs = [await joined(t), await joined(t), await joined(t)];
    for (const v of vs) v.send(report(key.relayId, 1));
    for (const v of vs) await shortlist(v);
    const again = await connectRelay(t.url, {}, key);
    clients.push(again);
    expect(healthOf(t, key.relayId)).toBe(0);
    expect(await shortlist(vs[0] as TestClient)).toEqual([]);
    await new Promise((r) => setTimeout(r, 500));
    expect(healthOf(t, key.relayId)).toBe(1);
    expect(await shortlist(vs[0] as TestClient)).toEqual([key.relayId]);
  });

  it('refuses anonymous reports, reports about relays never handed out, reports from relays, and reports without a mismatch', async () => {
    const t = await start({ trust });
    const handed = await relay(t);
    const hidden = await relay(t, { capacity: 1, load: 1 });
    const anonymous = await viewer(t);
    anonymous.send({ type: 'join', swarmId: SWARM });
    await anonymous.next('shortlist');
    anonymous.send(report(handed.key.relayId));
    expectError(await anonymous.next('error'), ErrorCode.REPORT_REFUSED);
    const v = await joined(t);
    v.send(report(hidden.key.relayId));
    expectError(await v.next('error'), ErrorCode.REPORT_REFUSED);
    handed.send(report(hidden.key.relayId));
    expectError(await handed.next('error'), ErrorCode.REPORT_REFUSED);
    v.send({ ...report(handed.key.relayId), receivedSha256: 'a'.repeat(64) });
    expectError(await v.next('error'), ErrorCode.MESSAGE_FIELD);
    v.send({ ...report(handed.key.relayId), url: 'file:///etc/passwd' });
    expectError(await v.next('error'), ErrorCode.MESSAGE_FIELD);
    expect(healthOf(t, hidden.key.relayId)).toBe(1);
    expect(healthOf(t, handed.key.relayId)).toBe(1);
    expect(t.status().relays.every((r) => r.reporters === 0)).toBe(true);
  });

  it('counts one reporting user per address range (IPv4 /24) by default', async () => {
    const t = await start({ trust, reputation: { minReporters: 2 } });
    const r = await relay(t);
    const sameRange: TestClient[] = [];
    for (let i = 0; i < 3; i++) {
      const v = await connect(t.url, undefined, `127.0.200.${i + 1}`);
      clients.push(v);
      v.send(sessionMessage(payer, v.hello.nonce).msg);
      await v.next('assignments');
      v.send({ type: 'join', swarmId: SWARM });
      await v.next('shortlist');
      sameRange.push(v);
    }
    (sameRange[0] as TestClient).send(report(r.key.relayId));
    for (const v of sameRange.slice(1)) {
      v.send(report(r.key.relayId));
      expectError(await v.next('error'), ErrorCode.ADDRESS_RANGE_LIMIT);
    }
    expect(t.status().relays[0]?.reporters).toBe(1);
    expect(healthOf(t, r.key.relayId)).toBe(1);
  });
});

describe('malformed input', () => {
  it('answers each bad message with an error and keeps serving the same socket', async () => {
    const t = await start();
    await relay(t);
    const v = await viewer(t);
    const bystander = await viewer(t);
    const cases: [string | Buffer, string, boolean?][] = [
      ['this is not json', ErrorCode.MESSAGE_MALFORMED],
      ['[1,2,3]', ErrorCode.MESSAGE_MALFORMED],
      ['null', ErrorCode.MESSAGE_MALFORMED],
      ['{"type":"teleport"}', ErrorCode.MESSAGE_TYPE],
      ['{"no":"type"}', ErrorCode.MESSAGE_TYPE],
      ['{"type":"join"}', ErrorCode.MESSAGE_FIELD],
      ['{"type":"join","swarmId":"x","count":1000}', ErrorCode.MESSAGE_FIELD],
      ['{"type":"signal","to":"../../etc","connectionId":"c","signal":{"kind":"offer","sdp":""}}', ErrorCode.MESSAGE_FIELD],
      [JSON.stringify({ type: 'join', swarmId: 'x'.repeat(20_000) }), ErrorCode.MESSAGE_TOO_LARGE],
      [Buffer.from([0xff, 0xfe, 0x00]), ErrorCode.MESSAGE_MALFORMED, true],
      [Buffer.from('{"type":"join","swarmId":"x"}'), ErrorCode.MESSAGE_MALFORMED, true],
    ];
    for (const [data, code, binary] of cases) {
      v.sendRaw(data, binary === true);
      expectError(await v.next('error'), code);
      bystander.send({ type: 'join', swarmId: SWARM });
      expect((await bystander.next('shortlist')).relays).toHaveLength(1);
    }
    v.send({ type: 'join', swarmId: SWARM });
    expect((await v.next('shortlist')).relays).toHaveLength(1);
    expect(v.ws.readyState).toBe(v.ws.OPEN);
  });

  it('closes only the offending socket when a frame exceeds the hard cap', async () => {
    const t = await start({ limits: { hardMaxPayloadBytes: 32 * 1024 } });
    const v = await viewer(t);
    const bystander = await viewer(t);
    v.sendRaw('x'.repeat(40 * 1024));
    expect((await v.closed).code).toBe(1009);
    bystander.send({ type: 'join', swarmId: SWARM });
    await bystander.next('shortlist');
    await expect.poll(() => t.status().connections).toBe(1);
  });
});

describe('rate limiting', () => {
  it('drops messages over the bucket with RC_ERR_RATE_LIMITED, then closes a connection that keeps at it', async () => {
    const t = await start({ limits: { rateLimitPerSec: 1, rateLimitBurst: 5, maxDroppedMessages: 10 } });
    const v = await viewer(t);
    const bystander = await viewer(t);
    for (let i = 0; i < 8; i++) v.send({ type: 'join', swarmId: SWARM });
    for (let i = 0; i < 5; i++) await v.next('shortlist');
    for (let i = 0; i < 3; i++) expectError(await v.next('error'), ErrorCode.RATE_LIMITED);
    expect(await v.silentFor(30)).toBe(true);
    for (let i = 0; i < 20; i++) v.send({ type: 'join', swarmId: SWARM });
    expect((await v.closed).code).toBe(CLOSE_POLICY_VIOLATION);
    bystander.send({ type: 'join', swarmId: SWARM });
    await bystander.next('shortlist');
  });

  it("gives a registered relay a relay-sized bucket: it forwards every viewer's answer and candidates", async () => {
    const t = await start({ limits: { rateLimitPerSec: 1, rateLimitBurst: 5, relayRateLimitPerSec: 10, relayRateLimitBurst: 300 } });
    const r = await relay(t);
    const v = await viewer(t);
    v.send({ type: 'join', swarmId: SWARM });
    await v.next('shortlist');
    for (let i = 0; i < 250; i++) r.send({ type: 'signal', to: v.hello.peerId, connectionId: `c${i}`, signal: { kind: 'end-of-candidates' } });
    for (let i = 0; i < 250; i++) expect((await v.next('signal')).connectionId).toBe(`c${i}`);
    expect(await r.silentFor(50)).toBe(true);
    // Past its own burst a relay is limited too.
    for (let i = 0; i < 80; i++) r.send({ type: 'signal', to: v.hello.peerId, connectionId: 'x', signal: { kind: 'end-of-candidates' } });
    expectError(await r.next('error'), ErrorCode.RATE_LIMITED);
  });
});

describe('HTTP', () => {
  it('serves /healthz and /status, 404 elsewhere', async () => {
    const t = await start();
    const r = await relay(t, { region: 'eu', streams: [SWARM] });
    const v = await viewer(t);
    v.send({ type: 'join', swarmId: SWARM });
    await v.next('shortlist');

    const health = await fetch(`${t.httpUrl}${TRACKER_HTTP_PATHS.health}`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ ok: true });

    const res = await fetch(`${t.httpUrl}${TRACKER_HTTP_PATHS.status}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    const body = (await res.json()) as ReturnType<Tracker['status']>;
    expect(body).toMatchObject({ viewers: 1, swarms: 1, connections: 2 });
    expect(body.relays).toHaveLength(1);
    expect(body.relays[0]).toMatchObject({ relayId: r.key.relayId, region: 'eu', capacity: 100, load: 0, streams: [SWARM], health: 1 });
    expect(body.relays[0]?.lastSeenMsAgo).toBeGreaterThanOrEqual(0);

    expect((await fetch(`${t.httpUrl}/nope`)).status).toBe(404);
    expect((await fetch(`${t.httpUrl}/`)).status).toBe(404);
    expect((await fetch(`${t.httpUrl}${TRACKER_HTTP_PATHS.status}`, { method: 'POST' })).status).toBe(405);
  });

  it('serves Prometheus metrics that follow what happened', async () => {
    const t = await start();
    const r = await relay(t);
    const v = await viewer(t);
    v.send({ type: 'join', swarmId: SWARM });
    await v.next('shortlist');
    v.send(offer(r.key.relayId));
    await r.next('signal');
    v.send({ type: 'nonsense' });
    await v.next('error');
    const res = await fetch(`${t.httpUrl}${TRACKER_HTTP_PATHS.metrics}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    const value = (line: string): number | undefined => {
      const m = new RegExp(`^${line.replace(/[{}"]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text);
      return m === null ? undefined : Number(m[1]);
    };
    expect(value('relaycast_tracker_relays')).toBe(1);
    expect(value('relaycast_tracker_viewers')).toBe(1);
    expect(value('relaycast_tracker_connections')).toBe(2);
    expect(value('relaycast_tracker_messages_total{type="join"}')).toBe(1);
    expect(value('relaycast_tracker_messages_total{type="register"}')).toBe(1);
    expect(value('relaycast_tracker_shortlists_total')).toBe(1);
    expect(value('relaycast_tracker_signals_forwarded_total')).toBe(1);
    expect(value('relaycast_tracker_errors_total{code="RC_ERR_MESSAGE_TYPE"}')).toBe(1);
  });
});

describe('lifecycle and options', () => {
  it('close() closes client sockets and is idempotent', async () => {
    const t = await startTracker({ port: 0 });
    const v = await connect(t.url);
    await Promise.all([t.close(), t.close()]);
    expect((await v.closed).code).toBe(1001);
    await expect(fetch(`${t.httpUrl}${TRACKER_HTTP_PATHS.health}`)).rejects.toThrow();
  });

  it('rejects a busy port with RC_ERR_CONFIG_INVALID', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const err: unknown = await startTracker({ port }).catch((e: unknown) => e);
      expect(isRelaycastError(err, ErrorCode.CONFIG_INVALID)).toBe(true);
      expect((err as Error).message).toContain(String(port));
    } finally {
      blocker.close();
    }
  });

  it('rejects invalid options with RC_ERR_CONFIG_INVALID', async () => {
    for (const options of [
      { heartbeatIntervalMs: 0 },
      { heartbeatTimeoutMs: -1 },
      { port: 70_000 },
      { minHealth: 2 },
      { limits: { maxConnections: 0 } },
      { limits: { rateLimitBurst: 1.5 } },
    ]) {
      const err: unknown = await startTracker(options).catch((e: unknown) => e);
      expect(isRelaycastError(err, ErrorCode.CONFIG_INVALID)).toBe(true);
    }
  });

  it('rejects with RC_ERR_ABORTED when aborted before listening', async () => {
    const err: unknown = await startTracker({ port: 0 }, AbortSignal.abort()).catch((e: unknown) => e);
    expect(isRelaycastError(err, ErrorCode.ABORTED)).toBe(true);
  });
});
