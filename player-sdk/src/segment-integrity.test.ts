import { ErrorCode, encodeDigestSidecar, type RelaycastError } from '@relaycast/protocol';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  startLoopbackNetwork,
  testBytes,
  until,
  type LoopbackNetwork,
  type RelayBehaviour,
  type TestOrigin,
  type TestTracker,
  sha256Hex,
} from './testing/loopback-network.js';
import { RelaycastClient, type RelaycastClientOptions } from './relaycast-client.js';
import type { LoadResult } from './segment-loader.js';

/**
 * Verification of relay bytes against the origin's published digests, through the real SDK core:
 * real node-datachannel connections to scripted relays that lie in chosen ways, an HTTP origin
 * that publishes (or not) a digest sidecar, and a tracker stub that records reports.
 */
const SEGMENT = testBytes(200_000);
const sidecar = (segments: Record<string, string>): Uint8Array =>
  new TextEncoder().encode(encodeDigestSidecar({ version: 1, algorithm: 'sha256', playlist: 'media.m3u8', segments }));

let net: LoopbackNetwork;
let origin: TestOrigin;
let tracker: TestTracker;

beforeAll(async () => {
  net = await startLoopbackNetwork({});
  ({ origin, tracker } = net);
});

afterAll(() => net.close());

afterEach(async () => {
  await net.reset();
  tracker.reports.length = 0;
  origin.files.clear();
  origin.files.set('/seg.ts', SEGMENT);
  origin.files.set('/media.m3u8.digests.json', sidecar({ 'seg.ts': sha256Hex(SEGMENT) }));
});

beforeAll(() => {
  origin.files.set('/seg.ts', SEGMENT);
  origin.files.set('/media.m3u8.digests.json', sidecar({ 'seg.ts': sha256Hex(SEGMENT) }));
});

async function withRelay(behaviour: RelayBehaviour, options: Partial<RelaycastClientOptions> = {}): Promise<RelaycastClient> {
  const relay = tracker.addRelay(behaviour);
  const client = net.client(options);
  await client.start();
  expect(client.relays).toEqual([relay.relayId]);
  return client;
}

interface Observed {
  result: LoadResult;
  /** What onProgress handed over since the last onRestart. */
  delivered: Uint8Array;
  restarts: number;
}

async function load(client: RelaycastClient, playlist = 'media.m3u8'): Promise<Observed> {
  let seen: Uint8Array[] = [];
  let restarts = 0;
  const result = await client.loadSegment(
    { url: `${origin.base}/seg.ts`, playlistUrl: `${origin.base}/${playlist}` },
    {
      onProgress: (chunk) => seen.push(chunk.slice()),
      onRestart: () => {
        seen = [];
        restarts++;
      },
    },
  );
  return { result, delivered: new Uint8Array(Buffer.concat(seen)), restarts };
}

const flipOne: RelayBehaviour = (ctx) => {
  const bad = SEGMENT.slice();
  bad[150_000] = (bad[150_000] as number) ^ 0x01;
  return ctx.serve(bad);
};
const honest: RelayBehaviour = (ctx) => ctx.serve(SEGMENT);

describe('segment verification', () => {
  it('hands over relay bytes that match the published digest and counts them as verified', async () => {
    const client = await withRelay(honest);
    const { result, delivered, restarts } = await load(client);
    expect(Buffer.from(delivered).equals(Buffer.from(SEGMENT))).toBe(true);
    expect(result).toMatchObject({ bytesFromRelay: SEGMENT.byteLength, bytesFromOrigin: 0, restarted: false });
    expect(restarts).toBe(0);
    const stats = client.getStats();
    expect(stats.integrity).toMatchObject({ failures: 0, verifiedBytes: SEGMENT.byteLength, unverifiedBytes: 0 });
    expect(Object.values(stats.perRelay)[0]).toMatchObject({ bytesVerified: SEGMENT.byteLength, integrityFailures: 0 });
    expect(origin.requests.map((r) => r.path)).toEqual(['/media.m3u8.digests.json']);
  });

  for (const [name, behaviour] of [
    ['one flipped byte', flipOne],
    ['a truncated segment (size announced to match)', ((ctx) => ctx.serve(SEGMENT.slice(0, 120_000))) as RelayBehaviour],
    ['extra bytes at the end (size announced to match)', ((ctx) => ctx.serve(Buffer.concat([SEGMENT, new Uint8Array(500)]))) as RelayBehaviour],
  ] as const) {
    it(`replaces ${name} with the origin's bytes, drops and reports the relay, pays nothing`, async () => {
      const client = await withRelay(behaviour);
      const relayId = client.relays[0] as string;
      const failures: RelaycastError[] = [];
      client.on('integrity-failure', (e) => failures.push(e));
      const { result, delivered } = await load(client);
      expect(Buffer.from(result.data).equals(Buffer.from(SEGMENT))).toBe(true);
      expect(Buffer.from(delivered).equals(Buffer.from(SEGMENT))).toBe(true);
      expect(result).toMatchObject({ bytesFromRelay: 0, bytesFromOrigin: SEGMENT.byteLength, fallbackReason: 'integrity', restarted: true });
      const stats = client.getStats();
      expect(stats.integrity.failures).toBe(1);
      expect(stats.integrity.verifiedBytes).toBe(0);
      expect(stats.perRelay[relayId]).toMatchObject({ bytes: 0, bytesVerified: 0, integrityFailures: 1 });
      expect(stats.fallbacks.byReason.integrity).toBe(1);
      expect(stats.bytesFromRelays).toBe(0);
      expect(stats.bytesDiscarded).toBeGreaterThan(0);
      expect(failures).toHaveLength(1);
      expect(failures[0]?.code).toBe(ErrorCode.SEGMENT_INTEGRITY);
      expect(failures[0]?.details).toMatchObject({ url: `${origin.base}/seg.ts`, relayId, expectedSha256: sha256Hex(SEGMENT) });
      await until(() => tracker.reports.length === 1, 5_000, 'the report');
      expect(tracker.reports[0]).toMatchObject({
        type: 'report',
        relayId,
        reason: 'integrity',
        url: `${origin.base}/seg.ts`,
        expectedSha256: sha256Hex(SEGMENT),
      });
      expect(tracker.reports[0]?.receivedSha256).not.toBe(sha256Hex(SEGMENT));
      expect(tracker.reports[0]?.receivedSha256).toBe(failures[0]?.details?.['receivedSha256']);
      // The relay is never used again by this client.
      await until(() => client.relays.length === 0, 5_000, 'the relay to be dropped');
      const again = await load(client);
      expect(again.result.bytesFromRelay).toBe(0);
    });
  }

  it('holds back the last chunk until the digest matched', async () => {
    const client = await withRelay(flipOne);
    let handedOver = 0;
    let atRestart = -1;
    await client.loadSegment(
      { url: `${origin.base}/seg.ts`, playlistUrl: `${origin.base}/media.m3u8` },
      {
        onProgress: (c) => (handedOver += c.byteLength),
        onRestart: () => {
          atRestart = handedOver;
          handedOver = 0;
        },
      },
    );
    // Everything but the held-back chunk was handed over before the mismatch showed.
    expect(atRestart).toBeGreaterThan(0);
    expect(atRestart).toBeLessThan(SEGMENT.byteLength);
    expect(handedOver).toBe(SEGMENT.byteLength);
    await until(() => tracker.reports.length === 1, 5_000, 'the report');
  });

  it('does not blame the relay when the origin itself no longer matches its digest (stale sidecar)', async () => {
    origin.files.set('/media.m3u8.digests.json', sidecar({ 'seg.ts': 'f'.repeat(64) }));
    const client = await withRelay(honest);
    const { result } = await load(client);
    expect(Buffer.from(result.data).equals(Buffer.from(SEGMENT))).toBe(true);
    expect(client.getStats().integrity.failures).toBe(0);
    await new Promise((r) => setTimeout(r, 100));
    expect(tracker.reports.filter((r) => r.relayId === tracker.relays[0]?.relayId)).toEqual([]);
  });

  it('waits for a live segment whose digest is not published yet', async () => {
    origin.files.set('/media.m3u8.digests.json', sidecar({ 'older.ts': sha256Hex(new Uint8Array(1)) }));
    const client = await withRelay(honest);
    setTimeout(() => origin.files.set('/media.m3u8.digests.json', sidecar({ 'seg.ts': sha256Hex(SEGMENT) })), 600);
    const { result } = await load(client);
    expect(result.bytesFromRelay).toBe(SEGMENT.byteLength);
    expect(client.getStats().integrity.verifiedBytes).toBe(SEGMENT.byteLength);
    const sidecarFetches = origin.requests.filter((r) => r.path === '/media.m3u8.digests.json').length;
    expect(sidecarFetches).toBeGreaterThanOrEqual(2);
    // Refetches are paced (250 ms apart at least), not a busy loop.
    expect(sidecarFetches).toBeLessThanOrEqual(6);
  });
});

describe('segments without a digest', () => {
  it('refuse (the default): a stream without a sidecar never uses relays', async () => {
    origin.files.delete('/media.m3u8.digests.json');
    const client = await withRelay(honest);
    const { result } = await load(client);
    expect(result).toMatchObject({ bytesFromRelay: 0, bytesFromOrigin: SEGMENT.byteLength, fallbackReason: 'no-digest' });
    expect(tracker.relays[0]?.requests).toHaveLength(0);
    expect(client.getStats().integrity.segmentsWithoutDigest).toBe(1);
  });

  it('a malformed sidecar is an error event and counts as no digest, not a crash', async () => {
    origin.files.set('/media.m3u8.digests.json', new TextEncoder().encode('{"version":1,"algorithm":"md5"'));
    const client = await withRelay(honest);
    const errors: RelaycastError[] = [];
    client.on('error', (e) => errors.push(e));
    const { result } = await load(client);
    expect(Buffer.from(result.data).equals(Buffer.from(SEGMENT))).toBe(true);
    expect(result.fallbackReason).toBe('no-digest');
    expect(errors.map((e) => e.code)).toEqual([ErrorCode.DIGEST_SIDECAR_INVALID]);
  });

  it('a missing digest for a segment falls under the policy after the wait', async () => {
    origin.files.set('/media.m3u8.digests.json', sidecar({ 'other.ts': sha256Hex(new Uint8Array(1)) }));
    const client = await withRelay(honest, { integrity: { digestWaitMs: 300 } });
    const { result } = await load(client);
    expect(result.fallbackReason).toBe('no-digest');
  });

  it('audit: a sampled lying relay is caught against the origin copy', async () => {
    origin.files.delete('/media.m3u8.digests.json');
    const liar = await withRelay(flipOne, { integrity: { noDigestPolicy: 'audit', auditFraction: 1 } });
    const failures: RelaycastError[] = [];
    liar.on('integrity-failure', (e) => failures.push(e));
    const bad = await load(liar);
    expect(Buffer.from(bad.result.data).equals(Buffer.from(SEGMENT))).toBe(true);
    expect(bad.result.fallbackReason).toBe('integrity');
    expect(failures[0]?.details).toMatchObject({ expectedSha256: sha256Hex(SEGMENT) });
    expect(liar.getStats().integrity).toMatchObject({ failures: 1, audits: 1, verifiedBytes: 0 });
    // Only one origin fetch of the segment: the audit copy is what gets delivered.
    expect(origin.requests.filter((r) => r.path === '/seg.ts')).toHaveLength(1);
  });

  it('audit: an honest relay passes and its bytes count as verified', async () => {
    origin.files.delete('/media.m3u8.digests.json');
    const fair = await withRelay(honest, { integrity: { noDigestPolicy: 'audit', auditFraction: 1 } });
    const ok = await load(fair);
    expect(ok.result.bytesFromRelay).toBe(SEGMENT.byteLength);
    expect(fair.getStats().integrity).toMatchObject({ failures: 0, audits: 1, verifiedBytes: SEGMENT.byteLength });
  });

  it('audit with a zero fraction delivers relay bytes unchecked and says so', async () => {
    origin.files.delete('/media.m3u8.digests.json');
    const client = await withRelay(honest, { integrity: { noDigestPolicy: 'audit', auditFraction: 0 } });
    const { result } = await load(client);
    expect(result.bytesFromRelay).toBe(SEGMENT.byteLength);
    expect(client.getStats().integrity).toMatchObject({ verifiedBytes: 0, unverifiedBytes: SEGMENT.byteLength, audits: 0 });
  });

  it('refuses invalid integrity options with RC_ERR_CONFIG_INVALID', () => {
    for (const integrity of [{ noDigestPolicy: 'trust' as 'audit' }, { auditFraction: 2 }]) {
      expect(() => new RelaycastClient({ swarmId: 'https://x/m.m3u8', integrity })).toThrow(expect.objectContaining({ code: ErrorCode.CONFIG_INVALID }));
    }
  });
});
