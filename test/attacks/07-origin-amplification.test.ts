/**
 * Issue 14, finding 7: "The relay amplifies against its origin. 1 byte of `seg.ts?cb=N`, N new
 * each time: a whole segment (≤ 32 MiB) is fetched and cached each time, evicting real content."
 *
 * Real processes: the relay bin, a tracker, an HTTP origin that logs every request, and raw viewers
 * speaking the data-channel protocol by hand. The attacker's 1-byte `?cb=N` requests now pull each
 * segment from the origin at most once (the query is not part of the cache key), the cache keeps
 * the real content, and an honest viewer beside it is served byte-identical segments. A channel
 * that walks the library faster than its origin-fetch rate gets RC_ERR_ORIGIN_BUDGET for its next
 * cache miss while another channel's misses are fetched. A relay run in the unsafe
 * `--cache-key-query keep` mode is still bounded by its relay-wide origin rate: the attacker gets
 * RC_ERR_ORIGIN_BUDGET while cached segments keep being served.
 */
import { randomBytes } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, FrameType } from '@relaycast/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { relayStatus } from '../helpers/processes.js';
import { codeOf, fetchThrough as fetchOver, openRawChannel, type RawChannel } from '../helpers/raw-viewer.js';
import { useProcesses } from '../helpers/use-processes.js';
import { startVodRelay, type VodRelay } from '../helpers/vod-relay.js';

/** One request over a raw channel (20 s per frame): its last frame and the DATA bytes before it. */
const fetchThrough = (ch: RawChannel, requestId: number, url: string, range?: { start: number; end?: number }): ReturnType<typeof fetchOver> =>
  fetchOver(ch, requestId, url, { range, timeoutMs: 20_000 });

interface CacheStats {
  cache: { originBytes: number; segments: number; keyQuery: string; originRate: { refusals: number } };
}

describe('attack 07: origin amplification with ?cb=N range requests', () => {
  useProcesses();
  let vod: VodRelay;
  let honest: RawChannel;
  let attacker: RawChannel;
  let nextId = 1;
  const seg = (n: number): string => `vod/180p/seg${String(n).padStart(3, '0')}.ts`;
  const file = (n: number): Promise<Buffer> => readFile(join(vod.dir, seg(n)));

  beforeAll(async () => {
    vod = await startVodRelay('rc-attack07-');
    honest = await openRawChannel(vod.tracker.url, vod.swarmId, vod.relay.relayId);
    attacker = await openRawChannel(vod.tracker.url, vod.swarmId, vod.relay.relayId);
  });

  afterAll(async () => {
    honest?.close();
    attacker?.close();
    await vod?.close();
  });

  const status = (): Promise<CacheStats> => relayStatus<CacheStats>(vod.relay.statusPort);

  it('pulls each segment from the origin at most once whatever the query, keeps the cache, and serves the honest viewer byte-identical', async () => {
    // The honest viewer watches first: seg000 is in the cache before the attack.
    const first = await fetchThrough(honest, nextId++, `${vod.origin.url}${seg(0)}`);
    expect(first.last.type).toBe(FrameType.END);
    expect(Buffer.compare(Buffer.from(first.data), await file(0))).toBe(0);

    // The attack as reported: 1 byte of seg.ts?cb=N, N new each time, over three segments.
    const attacked = [1, 2, 3];
    let received = 0;
    for (const n of attacked) {
      const bytes = await file(n);
      for (let i = 0; i < 20; i++) {
        const cb = randomBytes(6).toString('hex');
        const { last, data } = await fetchThrough(attacker, nextId++, `${vod.origin.url}${seg(n)}?cb=${cb}`, { start: 0, end: 1 });
        expect(last.type, codeOf(last)).toBe(FrameType.END);
        expect([...data]).toEqual([bytes[0]]);
        received += data.byteLength;
      }
    }
    expect(received).toBe(60);

    // Each attacked segment was fetched once (60 requests, 3 origin requests), the origin bytes
    // pulled are exactly those 3 segments (plus the honest one), not 60 whole segments.
    let pulled = (await stat(join(vod.dir, seg(0)))).size;
    for (const n of attacked) {
      expect(vod.origin.count(`/${seg(n)}`, vod.relay.relayId), seg(n)).toBe(1);
      pulled += (await stat(join(vod.dir, seg(n)))).size;
    }
    const s = await status();
    expect(s.cache.keyQuery).toBe('ignore');
    expect(s.cache.originBytes).toBe(pulled);

    // The real content is still cached: the honest viewer gets seg000 again without an origin
    // request, and the attacked segments whole, byte-identical.
    for (const n of [0, ...attacked]) {
      const { last, data } = await fetchThrough(honest, nextId++, `${vod.origin.url}${seg(n)}`);
      expect(last.type, codeOf(last)).toBe(FrameType.END);
      expect(Buffer.compare(Buffer.from(data), await file(n)), seg(n)).toBe(0);
      expect(vod.origin.count(`/${seg(n)}`, vod.relay.relayId), seg(n)).toBe(1);
    }
    expect((await status()).cache.originBytes).toBe(pulled);
  });

  it("a channel over its origin-fetch rate gets RC_ERR_ORIGIN_BUDGET for its next cache miss; another channel's misses and everyone's cache hits are served", async () => {
    // One byte of burst per channel and 1 kB/s: a channel's first miss puts it in debt for minutes.
    const rated = await vod.startRelay('rated', ['--channel-origin-bytes-per-sec', '1000', '--channel-origin-burst-bytes', '1']);
    const greedy = await openRawChannel(vod.tracker.url, vod.swarmId, rated.relayId);
    const viewer = await openRawChannel(vod.tracker.url, vod.swarmId, rated.relayId);
    const count = (n: number): number => vod.origin.count(`/${seg(n)}`, rated.relayId);
    try {
      // The greedy channel walks the whole library: its first miss is fetched, the next refused.
      const first = await fetchThrough(greedy, nextId++, `${vod.origin.url}${seg(0)}`, { start: 0, end: 1 });
      expect(first.last.type, codeOf(first.last)).toBe(FrameType.END);
      for (const n of [1, 2, 3]) {
        const { last } = await fetchThrough(greedy, nextId++, `${vod.origin.url}${seg(n)}`, { start: 0, end: 1 });
        expect(codeOf(last), seg(n)).toBe(ErrorCode.ORIGIN_BUDGET);
        expect(count(n), seg(n)).toBe(0);
      }
      // What it already pulled is cached: served to it again, and to the honest viewer.
      expect((await fetchThrough(greedy, nextId++, `${vod.origin.url}${seg(0)}`)).last.type).toBe(FrameType.END);
      // The honest viewer has its own budget: its miss is fetched, the hit served, both byte-identical.
      for (const n of [0, 1]) {
        const { last, data } = await fetchThrough(viewer, nextId++, `${vod.origin.url}${seg(n)}`);
        expect(last.type, `${seg(n)} ${JSON.stringify(last)}`).toBe(FrameType.END);
        expect(Buffer.compare(Buffer.from(data), await file(n)), seg(n)).toBe(0);
      }
      expect([count(0), count(1), count(2), count(3)]).toEqual([1, 1, 0, 0]);
      const s = await relayStatus<CacheStats>(rated.statusPort);
      expect(s.cache.originRate.refusals).toBe(3);
    } finally {
      greedy.close();
      viewer.close();
      await rated.stop();
    }
  });

  it('a relay in the unsafe keep mode is bounded by its origin-fetch rate: RC_ERR_ORIGIN_BUDGET, cached segments still served', async () => {
    // One byte of burst and 1 kB/s: the first segment puts the relay in debt for minutes.
    const keep = await vod.startRelay('keep', ['--cache-key-query', 'keep', '--origin-bytes-per-sec', '1000', '--origin-burst-bytes', '1']);
    const viewer = await openRawChannel(vod.tracker.url, vod.swarmId, keep.relayId);
    const flooder = await openRawChannel(vod.tracker.url, vod.swarmId, keep.relayId);
    try {
      const warm = await fetchThrough(viewer, nextId++, `${vod.origin.url}${seg(4)}`);
      expect(warm.last.type, codeOf(warm.last)).toBe(FrameType.END);
      expect(Buffer.compare(Buffer.from(warm.data), await file(4))).toBe(0);
      const before = vod.origin.requests.filter((r) => r.relayId === keep.relayId).length;
      for (let i = 0; i < 10; i++) {
        const { last } = await fetchThrough(flooder, nextId++, `${vod.origin.url}${seg(5)}?cb=${randomBytes(6).toString('hex')}`, { start: 0, end: 1 });
        expect(codeOf(last)).toBe(ErrorCode.ORIGIN_BUDGET);
      }
      expect(vod.origin.requests.filter((r) => r.relayId === keep.relayId).length).toBe(before);
      // The honest viewer's segment is a cache hit: never refused, served byte-identical.
      const again = await fetchThrough(viewer, nextId++, `${vod.origin.url}${seg(4)}`);
      expect(again.last.type, codeOf(again.last)).toBe(FrameType.END);
      expect(Buffer.compare(Buffer.from(again.data), await file(4))).toBe(0);
      const s = await relayStatus<CacheStats>(keep.statusPort);
      expect(s.cache.keyQuery).toBe('keep');
      expect(s.cache.originRate.refusals).toBe(10);
    } finally {
      viewer.close();
      flooder.close();
      await keep.stop();
    }
  });
});
