import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  FRAME_VERSION,
  FrameType,
  MAX_FRAME_BYTES,
  concatBytes,
  encodeBase58,
  encodeFrame,
  fromBase64,
  registrationSigningBytes,
  swarmIdFromUrl,
  toBase64,
  type RelayFrame,
} from '@relaycast/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cachedVod, linkVod } from './helpers/media.js';
import { startOrigin, type OriginServer } from './helpers/origin-server.js';
import { startRelayProcess, startTrackerProcess, type RelayProc, type TrackerProc } from './helpers/processes.js';
import { useProcesses } from './helpers/use-processes.js';
import { TrackerSocket, openRawChannel, rawJoin, type RawChannel } from './helpers/raw-viewer.js';

/** Issue "segments flow…", must-show 3: bad input is refused with typed errors and harms no one else. */
describe('bad input', () => {
  useProcesses();
  let dir: string;
  let origin: OriginServer;
  let forbidden: OriginServer;
  let tracker: TrackerProc;
  let relay: RelayProc;
  let swarmId: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rc-bad-'));
    await linkVod(await cachedVod({ format: 'ts' }), join(dir, 'vod'));
    origin = await startOrigin(dir);
    forbidden = await startOrigin(dir);
    tracker = await startTrackerProcess();
    relay = await startRelayProcess(tracker, { keypair: join(dir, 'keys', 'r.json'), allowOrigin: [`${origin.url}vod/`] });
    swarmId = swarmIdFromUrl(`${origin.url}vod/master.m3u8`);
  });

  afterAll(async () => {
    await origin?.close();
    await forbidden?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  async function fetchThrough(ch: RawChannel, requestId: number, url: string): Promise<{ frames: RelayFrame[]; data: Uint8Array }> {
    ch.send(encodeFrame({ type: FrameType.REQUEST, requestId, url }));
    const frames: RelayFrame[] = [];
    const chunks: Uint8Array[] = [];
    for (;;) {
      const f = await ch.nextFrame();
      frames.push(f);
      if (f.type === FrameType.DATA) chunks.push(f.chunk);
      if (f.type === FrameType.END || f.type === FrameType.ERROR || f.type === FrameType.ABSENT) break;
    }
    return { frames, data: concatBytes(chunks) };
  }

  it('answers a URL outside the allowlist with an error frame and makes no outgoing request', async () => {
    const ch = await openRawChannel(tracker.url, swarmId);
    try {
      const outside = [
        `${forbidden.url}vod/180p/seg000.ts`,
        `${origin.url}other/seg000.ts`,
        `${origin.url}vod/../other/seg000.ts`,
        `${origin.url}vod/%2e%2e/other/seg000.ts`,
        `http://user:pw@${new URL(origin.url).host}/vod/180p/seg000.ts`,
        'http://[::1]:1/vod/seg000.ts',
        'file:///etc/passwd',
      ];
      const before = origin.requests.length;
      for (const [i, url] of outside.entries()) {
        const { frames } = await fetchThrough(ch, i + 1, url);
        const last = frames.at(-1);
        expect(last?.type, url).toBe(FrameType.ERROR);
        expect(last?.type === FrameType.ERROR ? last.code : undefined, url).toBe('RC_ERR_ORIGIN_NOT_ALLOWED');
      }
      expect(forbidden.requests).toHaveLength(0);
      expect(origin.requests.length).toBe(before);

      // An allowed origin that redirects off the allowlist: the relay asks the allowed origin, never follows.
      origin.redirect('/vod/away.ts', `${forbidden.url}vod/180p/seg000.ts`);
      const away = (await fetchThrough(ch, 50, `${origin.url}vod/away.ts`)).frames.at(-1);
      expect(away?.type).toBe(FrameType.ERROR);
      expect(away?.type === FrameType.ERROR ? away.code : undefined).toBe('RC_ERR_ORIGIN_NOT_ALLOWED');
      expect(forbidden.requests).toHaveLength(0);
      // A redirect that stays inside the allowlist is followed.
      origin.redirect('/vod/moved.ts', `${origin.url}vod/180p/seg001.ts`);
      const moved = await fetchThrough(ch, 51, `${origin.url}vod/moved.ts`);
      expect(Buffer.compare(Buffer.from(moved.data), await readFile(join(dir, 'vod/180p/seg001.ts')))).toBe(0);
      // The same channel still serves allowed segments.
      const ok = await fetchThrough(ch, 100, `${origin.url}vod/180p/seg000.ts`);
      expect(Buffer.compare(Buffer.from(ok.data), await readFile(join(dir, 'vod/180p/seg000.ts')))).toBe(0);
    } finally {
      ch.close();
    }
  });

  it('closes only the offending channel on a malformed or oversized frame', async () => {
    const good = await openRawChannel(tracker.url, swarmId);
    const bad = await openRawChannel(tracker.url, swarmId);
    const oversized = await openRawChannel(tracker.url, swarmId);
    try {
      // Length prefix says 9 bytes but the body is garbage of another length.
      bad.send(Uint8Array.from([0, 0, 0, 9, 1, 99, 0, 0, 0, 1, 7]));
      const err = await bad.nextFrame();
      expect(err.type).toBe(FrameType.ERROR);
      expect(err.type === FrameType.ERROR && err.requestId).toBe(0);
      await bad.closed;

      // A well-formed header whose length prefix (and payload) exceed the 64 KiB frame cap.
      const big = new Uint8Array(MAX_FRAME_BYTES + 1024);
      const view = new DataView(big.buffer);
      view.setUint32(0, big.byteLength - 4);
      big[4] = FRAME_VERSION;
      big[5] = FrameType.REQUEST;
      view.setUint32(6, 1);
      oversized.send(big);
      const err2 = await oversized.nextFrame();
      expect(err2.type === FrameType.ERROR ? err2.code : undefined).toBe('RC_ERR_FRAME_TOO_LARGE');
      await oversized.closed;

      const ok = await fetchThrough(good, 1, `${origin.url}vod/360p/seg000.ts`);
      expect(Buffer.compare(Buffer.from(ok.data), await readFile(join(dir, 'vod/360p/seg000.ts')))).toBe(0);
    } finally {
      good.close();
      bad.close();
      oversized.close();
    }
  });

  it('answers tracker garbage, oversized messages and unassigned signaling with errors and keeps serving', async () => {
    const t = await TrackerSocket.open(tracker.url);
    const other = await TrackerSocket.open(tracker.url);
    try {
      await t.next('hello');
      await other.next('hello');

      t.sendRaw('this is not json');
      expect((await t.next('error')).code).toBe('RC_ERR_MESSAGE_MALFORMED');

      t.sendRaw(JSON.stringify({ type: 'join', swarmId: 'x'.repeat(20_000) }));
      expect((await t.next('error')).code).toBe('RC_ERR_MESSAGE_TOO_LARGE');

      // A relay id this viewer was never handed (a freshly made key).
      const stranger = encodeBase58(new Uint8Array(32).fill(7));
      t.send({ type: 'signal', to: stranger, connectionId: 'c1', signal: { kind: 'offer', sdp: 'v=0' } });
      expect((await t.next('error')).code).toBe('RC_ERR_SIGNAL_NOT_ALLOWED');
      // A real, registered relay, but this socket never joined a swarm, so it was never handed out.
      t.send({ type: 'signal', to: relay.relayId, connectionId: 'c2', signal: { kind: 'offer', sdp: 'v=0' } });
      expect((await t.next('error')).code).toBe('RC_ERR_SIGNAL_NOT_ALLOWED');

      // The same socket, and everyone else, still get served.
      t.send({ type: 'join', swarmId });
      expect((await t.next('shortlist')).relays.map((r) => r.relayId)).toEqual([relay.relayId]);
      other.send({ type: 'join', swarmId });
      expect((await other.next('shortlist')).relays.map((r) => r.relayId)).toEqual([relay.relayId]);
      // Signaling still flows: a new viewer reaches the relay through the tracker and gets a segment.
      const ch = await openRawChannel(tracker.url, swarmId);
      try {
        const ok = await fetchThrough(ch, 1, `${origin.url}vod/180p/seg002.ts`);
        expect(Buffer.compare(Buffer.from(ok.data), await readFile(join(dir, 'vod/180p/seg002.ts')))).toBe(0);
      } finally {
        ch.close();
      }
      expect(await tracker.relayIds()).toEqual([relay.relayId]);
    } finally {
      t.close();
      other.close();
    }
  });

  it('refuses a relay that signs the registration challenge with the wrong key', async () => {
    const claimed = generateKeyPairSync('ed25519');
    const actual = generateKeyPairSync('ed25519');
    const claimedId = encodeBase58(new Uint8Array(claimed.publicKey.export({ format: 'der', type: 'spki' }).subarray(12)));
    const t = await TrackerSocket.open(tracker.url);
    const hello = await t.next('hello');
    const signature = sign(null, registrationSigningBytes(fromBase64(hello.nonce) as Uint8Array), actual.privateKey);
    t.send({
      type: 'register',
      relayId: claimedId,
      signature: toBase64(new Uint8Array(signature)),
      capacity: 10,
      load: 0,
      region: '',
      pricePerGiB: '0',
      streams: [],
    });
    expect((await t.next('error')).code).toBe('RC_ERR_REGISTRATION_SIGNATURE');
    expect(await t.closed).toBe(4001);
    expect((await tracker.status()).relays.map((r) => r.relayId)).not.toContain(claimedId);
    expect((await rawJoin(tracker.url, swarmId)).map((r) => r.relayId)).toEqual([relay.relayId]);
  });
});
