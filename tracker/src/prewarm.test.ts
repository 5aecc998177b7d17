import { ErrorCode, MAX_PREWARM_QUERY_BYTES, MAX_SWARM_ID_BYTES, encodePrewarmQuery, type PrewarmRequest } from '@relaycast/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { startTracker, type Tracker, type TrackerOptions } from './index.js';
import { connect, connectRelay, registerMessage, makeRelayKey, type TestClient } from './testing/clients.js';

const SWARM = 'https://cdn.example/live/master.m3u8';

const trackers: Tracker[] = [];
const clients: TestClient[] = [];

async function start(options: TrackerOptions = {}): Promise<Tracker> {
  const t = await startTracker({ port: 0, reachability: { enabled: false }, ...options });
  trackers.push(t);
  return t;
}

/** A viewer whose WebSocket URL carries `query` (a pre-warm when it names a swarm). */
async function viewer(t: Tracker, query?: string, localAddress?: string): Promise<TestClient> {
  const c = await connect(query === undefined ? t.url : `${t.url}?${query}`, undefined, localAddress);
  clients.push(c);
  return c;
}

const prewarm = (t: Tracker, req: PrewarmRequest, localAddress?: string): Promise<TestClient> => viewer(t, encodePrewarmQuery(req), localAddress);

async function relays(t: Tracker, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await connectRelay(t.url, { streams: [SWARM] });
    clients.push(r);
    out.push(r.key.relayId);
  }
  return out;
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.ws.terminate();
  await Promise.all(trackers.splice(0).map((t) => t.close()));
});

describe('pre-warm: the shortlist in hello', () => {
  it('hands out with hello exactly what a join answers, and the viewer may signal those relays without any join', async () => {
    const t = await start();
    const ids = await relays(t, 4);
    const warm = await prewarm(t, { swarmId: SWARM, region: 'eu', count: 2 });
    expect(warm.hello.shortlist?.swarmId).toBe(SWARM);
    expect(warm.hello.shortlist?.relays).toHaveLength(2);
    for (const d of warm.hello.shortlist?.relays ?? []) expect(ids).toContain(d.relayId);
    // Same answer as a join: selection is the same function of swarm, region and count.
    const joiner = await viewer(t);
    joiner.send({ type: 'join', swarmId: SWARM, region: 'eu', count: 2 });
    expect((await joiner.next('shortlist')).relays).toEqual(warm.hello.shortlist?.relays);
    // It counts as a viewer of the swarm, and the relays handed are on its signaling allow-list.
    expect(t.status()).toMatchObject({ viewers: 2, swarms: 1 });
    const first = warm.hello.shortlist?.relays[0]?.relayId as string;
    warm.send({ type: 'signal', to: first, connectionId: 'c1', signal: { kind: 'end-of-candidates' } });
    expect(await warm.silentFor(150)).toBe(true); // no error: forwarded
    const other = ids.find((id) => !(warm.hello.shortlist?.relays ?? []).some((d) => d.relayId === id)) as string;
    warm.send({ type: 'signal', to: other, connectionId: 'c2', signal: { kind: 'end-of-candidates' } });
    expect(await warm.next('error')).toMatchObject({ code: ErrorCode.SIGNAL_NOT_ALLOWED });
    // A later join of the same swarm returns the same relays at no cost.
    warm.send({ type: 'join', swarmId: SWARM, region: 'eu', count: 2 });
    expect((await warm.next('shortlist')).relays).toEqual(warm.hello.shortlist?.relays);
  });

  it('changes nothing for clients that ask for none: no shortlist field, no swarm joined; other parameters are ignored', async () => {
    const t = await start();
    await relays(t, 2);
    const plain = await viewer(t);
    expect(plain.hello).not.toHaveProperty('shortlist');
    const other = await viewer(t, 'token=abc&region=eu&count=3');
    expect(other.hello).not.toHaveProperty('shortlist');
    expect(await other.silentFor(100)).toBe(true);
    expect(t.status()).toMatchObject({ viewers: 0, swarms: 0 });
    // A relay still registers as before, and its hello has no shortlist.
    const r = await connectRelay(t.url, {});
    clients.push(r);
    expect(r.hello).not.toHaveProperty('shortlist');
  });

  it('a pre-warmed connection is a viewer: it cannot register as a relay', async () => {
    const t = await start();
    const v = await prewarm(t, { swarmId: SWARM });
    expect(v.hello.shortlist).toEqual({ swarmId: SWARM, relays: [] });
    v.send(registerMessage(makeRelayKey(), v.hello.nonce));
    expect(await v.next('error')).toMatchObject({ code: ErrorCode.MESSAGE_TYPE, ref: 'register' });
  });
});

describe('pre-warm: refusals', () => {
  it('a swarm id a join would refuse gets a plain hello and RC_ERR_MESSAGE_FIELD (ref prewarm); the socket and the tracker go on', async () => {
    const t = await start();
    await relays(t, 1);
    const cases: [string, string][] = [
      ['swarmId=', ErrorCode.MESSAGE_FIELD],
      [encodePrewarmQuery({ swarmId: 'x'.repeat(MAX_SWARM_ID_BYTES + 1) }), ErrorCode.MESSAGE_FIELD],
      [`${encodePrewarmQuery({ swarmId: SWARM })}&swarmId=other`, ErrorCode.MESSAGE_FIELD],
      [`${encodePrewarmQuery({ swarmId: SWARM })}&region=EU`, ErrorCode.MESSAGE_FIELD],
      [`${encodePrewarmQuery({ swarmId: SWARM })}&count=17`, ErrorCode.MESSAGE_FIELD],
      [`${encodePrewarmQuery({ swarmId: SWARM })}&count=2x`, ErrorCode.MESSAGE_FIELD],
      [`swarmId=${'y'.repeat(MAX_PREWARM_QUERY_BYTES)}`, ErrorCode.MESSAGE_TOO_LARGE],
    ];
    for (const [query, code] of cases) {
      const v = await viewer(t, query);
      expect(v.hello, query.slice(0, 40)).not.toHaveProperty('shortlist');
      expect(await v.next('error'), query.slice(0, 40)).toMatchObject({ type: 'error', code, ref: 'prewarm' });
      // Still open, still a fresh connection: a valid join works on it.
      v.send({ type: 'join', swarmId: SWARM });
      expect((await v.next('shortlist')).relays).toHaveLength(1);
    }
    const after = await prewarm(t, { swarmId: SWARM });
    expect(after.hello.shortlist?.relays).toHaveLength(1);
  });

  it('a full swarm refuses a pre-warm like a join (RC_ERR_SWARM_FULL)', async () => {
    const t = await start({ limits: { maxViewersPerSwarm: 1 } });
    await prewarm(t, { swarmId: SWARM });
    const late = await prewarm(t, { swarmId: SWARM });
    expect(late.hello).not.toHaveProperty('shortlist');
    expect(await late.next('error')).toMatchObject({ code: ErrorCode.SWARM_FULL, ref: 'prewarm' });
    const joiner = await viewer(t);
    joiner.send({ type: 'join', swarmId: SWARM });
    expect(await joiner.next('error')).toMatchObject({ code: ErrorCode.SWARM_FULL, ref: 'join' });
  });

  it('relays handed by a pre-warm come out of the connection’s per-minute handouts, like a join’s', async () => {
    const t = await start({ limits: { maxRelaysHandedPerMinute: 2 } });
    await relays(t, 4);
    const v = await prewarm(t, { swarmId: SWARM, count: 4 });
    expect(v.hello.shortlist?.relays).toHaveLength(2);
    v.send({ type: 'join', swarmId: `${SWARM}?other`, count: 4 });
    const m = await v.next();
    // Either nothing new is left, or only relays it already holds come back.
    if (m.type === 'error') expect(m).toMatchObject({ code: ErrorCode.RATE_LIMITED, ref: 'join' });
    else expect(m.type === 'shortlist' && m.relays.every((d) => v.hello.shortlist?.relays.some((h) => h.relayId === d.relayId))).toBe(true);
  });

  it('pre-warms and joins from one address range share one joins budget; other ranges keep theirs', async () => {
    const t = await start({ limits: { maxJoinsPerRangePerMinute: 3 } });
    await relays(t, 2);
    const a = await prewarm(t, { swarmId: SWARM }, '127.0.9.1');
    const b = await prewarm(t, { swarmId: SWARM }, '127.0.9.2');
    expect(a.hello.shortlist?.relays).toHaveLength(2);
    expect(b.hello.shortlist?.relays).toHaveLength(2);
    const c = await viewer(t, undefined, '127.0.9.3');
    c.send({ type: 'join', swarmId: SWARM });
    await c.next('shortlist');
    // The budget of 3 is spent: a fourth socket, pre-warming or joining, is refused.
    const d = await prewarm(t, { swarmId: SWARM }, '127.0.9.4');
    expect(d.hello).not.toHaveProperty('shortlist');
    expect(await d.next('error')).toMatchObject({ code: ErrorCode.RATE_LIMITED, ref: 'prewarm' });
    d.send({ type: 'join', swarmId: SWARM });
    expect(await d.next('error')).toMatchObject({ code: ErrorCode.RATE_LIMITED, ref: 'join' });
    // Another /24 is not affected.
    const e = await prewarm(t, { swarmId: SWARM }, '127.0.10.1');
    expect(e.hello.shortlist?.relays).toHaveLength(2);
  });

  it('the per-IP connection cap refuses the socket before any shortlist', async () => {
    const t = await start({ limits: { maxConnectionsPerIp: 2 } });
    await relays(t, 1); // the relay is one connection from 127.0.0.1
    await prewarm(t, { swarmId: SWARM });
    await expect(prewarm(t, { swarmId: SWARM })).rejects.toThrow(/hello/);
    expect(t.status()).toMatchObject({ viewers: 1 });
  });
});
