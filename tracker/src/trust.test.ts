import { ErrorCode, TRACKER_HTTP_PATHS, decodePublicKey, decodeSignedAssignment, fromBase64, type ErrorMessage } from '@relaycast/protocol';
import { verifyAssignmentSignature } from '@relaycast/protocol/node';
import { afterEach, describe, expect, it } from 'vitest';
import { CLOSE_REGISTRATION_REFUSED } from './constants.js';
import { startTracker, type Tracker, type TrackerOptions } from './index.js';
import { connect, connectRelay, makePayerKey, makeRelayKey, registerMessage, sessionMessage, type TestClient, type TestRelay } from './testing/clients.js';

/** Issue 14 on the tracker: sessions and signed assignments, admission, range caps, offer caps, TURN on need, /status redaction. */
const SWARM = 'https://cdn.example/live/master.m3u8';
const trackers: Tracker[] = [];
const clients: TestClient[] = [];
const payer = makePayerKey();

async function start(options: TrackerOptions = {}): Promise<Tracker> {
  const t = await startTracker({ port: 0, reachability: { enabled: false }, trust: { trustedPayers: [payer.payerId] }, ...options });
  trackers.push(t);
  return t;
}

async function viewer(t: Tracker, localAddress?: string): Promise<TestClient> {
  const c = await connect(t.url, undefined, localAddress);
  clients.push(c);
  return c;
}

async function relay(t: Tracker, localAddress?: string): Promise<TestRelay> {
  const r = await connectRelay(t.url, {}, makeRelayKey(), localAddress);
  clients.push(r);
  return r;
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.ws.terminate();
  await Promise.all(trackers.splice(0).map((t) => t.close()));
});

function expectError(msg: ErrorMessage, code: string, ref?: string): void {
  expect(msg.code).toBe(code);
  if (ref !== undefined) expect(msg.ref).toBe(ref);
}

const offer = (to: string, connectionId: string): Record<string, unknown> => ({ type: 'signal', to, connectionId, signal: { kind: 'offer', sdp: 'v=0\r\n' } });

describe('sessions and signed assignments', () => {
  it('binds a proven session, answers with assignments for relays already handed, and signs one into every later descriptor', async () => {
    const t = await start();
    const r1 = await relay(t);
    const registered = t.trackerKey;
    const v = await viewer(t);
    v.send({ type: 'join', swarmId: SWARM });
    const before = await v.next('shortlist');
    expect(before.relays.every((d) => d.assignment === undefined)).toBe(true);
    const { msg, sessionKey } = sessionMessage(payer, v.hello.nonce);
    v.send(msg);
    const answer = await v.next('assignments');
    expect(answer.assignments.map((a) => a.relayId)).toEqual([r1.key.relayId]);
    const r2 = await relay(t);
    v.send({ type: 'join', swarmId: SWARM });
    const after = await v.next('shortlist');
    expect(after.relays.map((d) => d.relayId).sort()).toEqual([r1.key.relayId, r2.key.relayId].sort());
    for (const { relayId, assignment } of [...answer.assignments, ...after.relays.map((d) => ({ relayId: d.relayId, assignment: d.assignment ?? '' }))]) {
      const signed = decodeSignedAssignment(fromBase64(assignment) ?? new Uint8Array());
      expect(verifyAssignmentSignature(signed)).toBe(true);
      expect(signed.assignment.tracker).toEqual(decodePublicKey(registered));
      expect(signed.assignment.sessionKey).toEqual(sessionKey);
      expect(signed.assignment.relay).toEqual(decodePublicKey(relayId));
      expect(Math.abs(signed.assignment.issuedAtMs - Date.now())).toBeLessThan(5_000);
    }
    expect(t.status().trackerKey).toBe(registered);
  });

  it('signs an assignment once per session and relay (repeated joins reuse it) and bounds session messages per connection', async () => {
    const t = await start();
    await relay(t);
    const v = await viewer(t);
    v.send(sessionMessage(payer, v.hello.nonce).msg);
    await v.next('assignments');
    v.send({ type: 'join', swarmId: SWARM });
    const a = (await v.next('shortlist')).relays[0]?.assignment;
    v.send({ type: 'join', swarmId: SWARM });
    expect((await v.next('shortlist')).relays[0]?.assignment).toBe(a);
    // A new session gets new assignments.
    v.send(sessionMessage(payer, v.hello.nonce).msg);
    expect((await v.next('assignments')).assignments[0]?.assignment).not.toBe(a);
    for (let i = 0; i < 5; i++) v.send(sessionMessage(payer, v.hello.nonce).msg);
    const last = await v.next('error');
    expectError(last, ErrorCode.RATE_LIMITED, 'session');
  });

  it('tells relays the tracker key in registered', async () => {
    const t = await start();
    const c = await viewer(t);
    const key = makeRelayKey();
    c.send(registerMessage(key, c.hello.nonce));
    expect((await c.next('registered')).trackerKey).toBe(t.trackerKey);
  });

  it('refuses a grant of an untrusted payer, an expired grant, a proof over another nonce, garbage; no trusted payer = every session refused', async () => {
    const t = await start();
    const v = await viewer(t);
    const other = await viewer(t);
    v.send(sessionMessage(makePayerKey(), v.hello.nonce).msg);
    expectError(await v.next('error'), ErrorCode.SESSION_INVALID, 'session');
    v.send(sessionMessage(payer, v.hello.nonce, { expiresAtMs: Date.now() - 1 }).msg);
    expectError(await v.next('error'), ErrorCode.SESSION_INVALID, 'session');
    // A proof made for another connection (a grant and proof seen elsewhere) does not bind here.
    v.send(sessionMessage(payer, other.hello.nonce).msg);
    expectError(await v.next('error'), ErrorCode.SESSION_INVALID, 'session');
    v.send({ type: 'session', grant: 'AAAA', proof: Buffer.alloc(64).toString('base64') });
    expectError(await v.next('error'), ErrorCode.SESSION_INVALID, 'session');
    const closed = await start({ trust: {} });
    const w = await viewer(closed);
    w.send(sessionMessage(payer, w.hello.nonce).msg);
    expectError(await w.next('error'), ErrorCode.SESSION_INVALID, 'session');
    // The honest path beside it.
    v.send(sessionMessage(payer, v.hello.nonce).msg);
    expect((await v.next('assignments')).assignments).toEqual([]);
  });
});

describe('relay admission and relays per address range', () => {
  it('allowlist: a listed relay registers, another key gets RC_ERR_RELAY_NOT_ADMITTED and is closed', async () => {
    const listed = makeRelayKey();
    const t = await start({ trust: { relayAdmission: 'allowlist', relayAllowlist: [listed.relayId] } });
    const c = await viewer(t);
    c.send(registerMessage(makeRelayKey(), c.hello.nonce));
    expectError(await c.next('error'), ErrorCode.RELAY_NOT_ADMITTED, 'register');
    expect((await c.closed).code).toBe(CLOSE_REGISTRATION_REFUSED);
    const ok = await connectRelay(t.url, {}, listed);
    clients.push(ok);
    expect(t.status().relays.map((r) => r.relayId)).toEqual([listed.relayId]);
  });

  it('a replaced allowlist admits new relays and closes relays no longer listed', async () => {
    const first = makeRelayKey();
    const second = makeRelayKey();
    const t = await start({ trust: { relayAdmission: 'allowlist', relayAllowlist: [first.relayId] } });
    const r1 = await connectRelay(t.url, {}, first);
    clients.push(r1);
    expect(t.setRelayAllowlist([second.relayId])).toBe(1);
    expectError(await r1.next('error'), ErrorCode.RELAY_NOT_ADMITTED, 'register');
    expect((await r1.closed).code).toBe(CLOSE_REGISTRATION_REFUSED);
    const r2 = await connectRelay(t.url, {}, second);
    clients.push(r2);
    expect(t.status().relays.map((r) => r.relayId)).toEqual([second.relayId]);
    expect(() => t.setRelayAllowlist(['nope'])).toThrow(expect.objectContaining({ code: ErrorCode.CONFIG_INVALID }));
    const open = await start();
    expect(() => open.setRelayAllowlist([first.relayId])).toThrow(expect.objectContaining({ code: ErrorCode.CONFIG_INVALID }));
  });

  it('caps relays per IPv4 /24 with RC_ERR_ADDRESS_RANGE_LIMIT; another range and a re-registration still work', async () => {
    const t = await start({ limits: { maxRelaysPerRange: 2 } });
    const a = await relay(t, '127.0.0.1');
    await relay(t, '127.0.0.2');
    const c = await viewer(t, '127.0.0.3');
    c.send(registerMessage(makeRelayKey(), c.hello.nonce));
    expectError(await c.next('error'), ErrorCode.ADDRESS_RANGE_LIMIT, 'register');
    expect((await c.closed).code).toBe(CLOSE_REGISTRATION_REFUSED);
    await relay(t, '127.0.1.1');
    const again = await connectRelay(t.url, {}, a.key, '127.0.0.4');
    clients.push(again);
    expect(t.status().relays).toHaveLength(3);
  });

  it('rejects an allowlist entry that is not a relay key, and an allowlist without allowlist admission', async () => {
    await expect(start({ trust: { relayAdmission: 'allowlist', relayAllowlist: ['nope'] } })).rejects.toMatchObject({ code: ErrorCode.CONFIG_INVALID });
    await expect(start({ trust: { relayAllowlist: [makeRelayKey().relayId] } })).rejects.toMatchObject({ code: ErrorCode.CONFIG_INVALID });
  });
});

describe('offers and relays handed per connection', () => {
  it('caps pending offers per viewer connection (RC_ERR_OFFER_LIMIT) until the pending window passes; candidates still flow', async () => {
    const t = await start({ limits: { maxPendingOffersPerViewer: 2, pendingOfferWindowMs: 400 } });
    const r = await relay(t);
    const v = await viewer(t);
    v.send({ type: 'join', swarmId: SWARM });
    await v.next('shortlist');
    v.send(offer(r.key.relayId, 'a'));
    v.send(offer(r.key.relayId, 'b'));
    v.send(offer(r.key.relayId, 'c'));
    expectError(await v.next('error'), ErrorCode.OFFER_LIMIT, 'signal');
    v.send({ type: 'signal', to: r.key.relayId, connectionId: 'a', signal: { kind: 'candidate', candidate: 'candidate:1 1 udp 1 192.0.2.1 9 typ host' } });
    const got = [await r.next('signal'), await r.next('signal'), await r.next('signal')];
    expect(got.map((m) => `${m.connectionId}:${m.signal.kind}`)).toEqual(['a:offer', 'b:offer', 'a:candidate']);
    await new Promise((res) => setTimeout(res, 450));
    v.send(offer(r.key.relayId, 'd'));
    expect((await r.next('signal')).connectionId).toBe('d');
  });

  it('caps offers pending to one relay from one address range (RC_ERR_ADDRESS_RANGE_LIMIT); another range still reaches it', async () => {
    const t = await start({ limits: { maxPendingOffersPerRange: 3 } });
    const r = await relay(t);
    const sameRange = [await viewer(t, '127.0.7.1'), await viewer(t, '127.0.7.2')];
    for (const v of sameRange) {
      v.send({ type: 'join', swarmId: SWARM });
      await v.next('shortlist');
    }
    const [v1, v2] = sameRange as [TestClient, TestClient];
    v1.send(offer(r.key.relayId, 'a'));
    v1.send(offer(r.key.relayId, 'b'));
    v2.send(offer(r.key.relayId, 'c'));
    v2.send(offer(r.key.relayId, 'd'));
    expectError(await v2.next('error'), ErrorCode.ADDRESS_RANGE_LIMIT, 'signal');
    const honest = await viewer(t, '127.0.8.1');
    honest.send({ type: 'join', swarmId: SWARM });
    await honest.next('shortlist');
    honest.send(offer(r.key.relayId, 'e'));
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await r.next('signal')).connectionId);
    expect(ids).toEqual(['a', 'b', 'c', 'e']);
  });

  it('hands one connection at most maxRelaysHandedPerMinute new relays; the ones it has cost nothing again', async () => {
    const t = await start({ limits: { maxRelaysHandedPerMinute: 3 } });
    for (let i = 0; i < 6; i++) await relay(t);
    const v = await viewer(t);
    v.send({ type: 'join', swarmId: SWARM, count: 2 });
    const first = (await v.next('shortlist')).relays.map((d) => d.relayId);
    expect(first).toHaveLength(2);
    v.send({ type: 'join', swarmId: SWARM, count: 2 });
    expect((await v.next('shortlist')).relays.map((d) => d.relayId)).toEqual(first);
    v.send({ type: 'join', swarmId: SWARM, count: 6 });
    expect((await v.next('shortlist')).relays).toHaveLength(3);
    v.send({ type: 'join', swarmId: `${SWARM}?other`, count: 6 });
    const refused = await v.next();
    if (refused.type === 'shortlist') {
      // The other swarm ranked only relays it already has: allowed, nothing new.
      expect(refused.relays.length).toBeLessThanOrEqual(3);
    } else {
      expectError(refused as ErrorMessage, ErrorCode.RATE_LIMITED, 'join');
    }
    // Never more than one shortlist's worth remembered: the option is bounded.
    await expect(start({ limits: { maxAssignedRelaysPerViewer: 64 } })).rejects.toMatchObject({ code: ErrorCode.CONFIG_INVALID });
  });
});

describe('TURN on need', () => {
  const ice = { turnUrls: ['turn:turn.test:3478'], turnSecret: 'a shared secret of some length' };

  it('refuses TURN for a relay not handed to the connection, without a TURN server, and past the per-connection rate', async () => {
    const t = await start({ ice: { ...ice, turnRequestsPerConnectionPerMinute: 2 } });
    const r = await relay(t);
    const v = await viewer(t);
    expect(v.hello.iceServers).toBeUndefined();
    v.send({ type: 'turn', relayId: r.key.relayId });
    expectError(await v.next('error'), ErrorCode.TURN_REFUSED, 'turn');
    v.send({ type: 'join', swarmId: SWARM });
    await v.next('shortlist');
    v.send({ type: 'turn', relayId: makeRelayKey().relayId });
    expectError(await v.next('error'), ErrorCode.TURN_REFUSED, 'turn');
    v.send({ type: 'turn', relayId: r.key.relayId });
    v.send({ type: 'turn', relayId: r.key.relayId });
    v.send({ type: 'turn', relayId: r.key.relayId });
    expect((await v.next('ice')).relayId).toBe(r.key.relayId);
    expect((await v.next('ice')).relayId).toBe(r.key.relayId);
    expectError(await v.next('error'), ErrorCode.TURN_REFUSED, 'turn');
    r.send({ type: 'turn', relayId: r.key.relayId });
    expectError(await r.next('error'), ErrorCode.TURN_REFUSED, 'turn');

    const none = await start();
    const r2 = await relay(none);
    const w = await viewer(none);
    w.send({ type: 'join', swarmId: SWARM });
    await w.next('shortlist');
    w.send({ type: 'turn', relayId: r2.key.relayId });
    expectError(await w.next('error'), ErrorCode.TURN_REFUSED, 'turn');
  });

  it('caps TURN requests per address range over all its connections; another range still gets TURN', async () => {
    const t = await start({ ice: { ...ice, turnRequestsPerRangePerMinute: 3 } });
    const r = await relay(t);
    const joinFrom = async (addr: string): Promise<TestClient> => {
      const v = await viewer(t, addr);
      v.send({ type: 'join', swarmId: SWARM });
      await v.next('shortlist');
      return v;
    };
    const flood = [await joinFrom('127.0.9.1'), await joinFrom('127.0.9.2'), await joinFrom('127.0.9.3'), await joinFrom('127.0.9.4')];
    for (const v of flood.slice(0, 3)) {
      v.send({ type: 'turn', relayId: r.key.relayId });
      await v.next('ice');
    }
    (flood[3] as TestClient).send({ type: 'turn', relayId: r.key.relayId });
    expectError(await (flood[3] as TestClient).next('error'), ErrorCode.TURN_REFUSED, 'turn');
    const honest = await joinFrom('127.0.10.1');
    honest.send({ type: 'turn', relayId: r.key.relayId });
    expect((await honest.next('ice')).iceServers.at(-1)?.username).toMatch(new RegExp(`^\\d+:${honest.hello.peerId}$`));
  });
});

describe('/status redaction', () => {
  it("never shows relays' addresses without the status token; shows them with it", async () => {
    const token = 'status-token-0123456789';
    const t = await start({ statusToken: token });
    const c = await viewer(t);
    const key = makeRelayKey();
    c.send({ ...registerMessage(key, c.hello.nonce), nat: { portMapping: 'upnp', publicAddress: '203.0.113.7', mappedPort: 40_001 } });
    await c.next('registered');
    const read = async (headers: Record<string, string> = {}): Promise<string> => (await fetch(`${t.httpUrl}${TRACKER_HTTP_PATHS.status}`, { headers })).text();
    for (const text of [await read(), await read({ authorization: 'Bearer wrong-token-0123456789' }), await read({ authorization: token })]) {
      expect(text).not.toContain('203.0.113.7');
      expect(text).not.toContain('40001');
      expect(JSON.parse(text)).toMatchObject({ trackerKey: t.trackerKey, relays: [{ relayId: key.relayId, nat: { portMapping: 'upnp' } }] });
    }
    const full = JSON.parse(await read({ authorization: `Bearer ${token}` })) as ReturnType<Tracker['status']>;
    expect(full.relays[0]?.nat).toEqual({ portMapping: 'upnp', publicAddress: '203.0.113.7', mappedPort: 40_001 });
    // Without a configured token nobody sees them, whatever they send.
    const plain = await start();
    const d = await viewer(plain);
    d.send({ ...registerMessage(makeRelayKey(), d.hello.nonce), nat: { portMapping: 'none', publicAddress: '203.0.113.8' } });
    await d.next('registered');
    expect(await (await fetch(`${plain.httpUrl}${TRACKER_HTTP_PATHS.status}`, { headers: { authorization: 'Bearer ' } })).text()).not.toContain('203.0.113.8');
    await expect(start({ statusToken: 'short' })).rejects.toMatchObject({ code: ErrorCode.CONFIG_INVALID });
  });
});
