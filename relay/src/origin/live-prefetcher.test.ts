import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createOriginSegmentSource, type OriginSourceOptions } from './origin-segment-source.js';
import { deferred, serveBytes, sleep, startTestOrigin, testBytes, type TestOrigin } from '../testing/origin-server.js';
import type { SegmentSource, SegmentStream } from '../serve/segment-source.js';

let origin: TestOrigin;
let source: SegmentSource;

function makeSource(extra: Partial<OriginSourceOptions> = {}): SegmentSource {
  source = createOriginSegmentSource({
    allowedOrigins: [origin.url('/media/')],
    livePollingEnabled: true,
    livePollMinMs: 20,
    livePollMaxMs: 50,
    liveViewerIdleMs: 400,
    prefetchSegments: 2,
    ...extra,
  });
  return source;
}

/** Serves a playlist whose segment list the test mutates. */
function routePlaylist(path: string, segments: string[], options: { endList?: boolean } = {}): void {
  origin.route(path, (_req, res) => {
    const lines = ['#EXTM3U', '#EXT-X-TARGETDURATION:1', '#EXT-X-MEDIA-SEQUENCE:0'];
    for (const s of segments) lines.push('#EXTINF:1.0,', s);
    if (options.endList === true) lines.push('#EXT-X-ENDLIST');
    const text = lines.join('\n') + '\n';
    res.writeHead(200, { 'content-type': 'application/vnd.apple.mpegurl', 'content-length': String(Buffer.byteLength(text)) });
    res.end(text);
  });
}

function open(url: string, playlistUrl?: string): Promise<SegmentStream> {
  return source.open({ url, playlistUrl }, { signal: new AbortController().signal, maxChunkBytes: 16_384 });
}

async function drain(stream: SegmentStream): Promise<number> {
  let n = 0;
  for await (const c of stream.chunks) n += c.byteLength;
  return n;
}

beforeEach(async () => {
  origin = await startTestOrigin();
  for (let i = 0; i < 6; i++) origin.route(`/media/live/s${i}.ts`, serveBytes(testBytes(20_000, i + 1)));
});

afterEach(async () => {
  await source?.close();
  await origin.close();
});

describe('live prefetch', () => {
  it('prefetches the newest segments, picks up a new one, and stops polling after viewers leave', async () => {
    makeSource();
    const playlist = origin.url('/media/live/index.m3u8');
    const segments = ['s0.ts', 's1.ts', 's2.ts'];
    routePlaylist('/media/live/index.m3u8', segments);

    await drain(await open(origin.url('/media/live/s0.ts'), playlist));
    await expect.poll(() => origin.count('/media/live/s2.ts') + origin.count('/media/live/s1.ts'), { timeout: 3000 }).toBe(2);
    expect(origin.count('/media/live/s0.ts')).toBe(1);
    expect(source.advertisedStreams()).toContain(playlist);

    segments.push('s3.ts');
    // The viewer keeps watching (s1 is cached: no origin request), so the playlist stays followed
    // however slowly a loaded machine runs the polls (liveViewerIdleMs is only 400 ms here).
    await expect
      .poll(
        async () => {
          await drain(await open(origin.url('/media/live/s1.ts'), playlist));
          return origin.count('/media/live/s3.ts');
        },
        { timeout: 3000 },
      )
      .toBe(1);
    expect(origin.count('/media/live/s1.ts')).toBe(1);
    // The viewer asks for the prefetched segment: no second origin request.
    expect(await drain(await open(origin.url('/media/live/s3.ts'), playlist))).toBe(20_000);
    expect(origin.count('/media/live/s3.ts')).toBe(1);
    await expect.poll(async () => (await open(origin.url('/media/live/s3.ts'))).fromCache, { timeout: 3000 }).toBe(true);

    // No more viewer requests: polling stops once liveViewerIdleMs has passed.
    await sleep(400 + 300);
    const polls = origin.count('/media/live/index.m3u8');
    segments.push('s4.ts');
    await sleep(300);
    expect(origin.count('/media/live/index.m3u8')).toBe(polls);
    expect(origin.count('/media/live/s4.ts')).toBe(0);
  });

  it('coalesces a viewer request with an in-flight prefetch into one origin request', async () => {
    makeSource({ prefetchSegments: 1 });
    const playlist = origin.url('/media/live/index.m3u8');
    routePlaylist('/media/live/index.m3u8', ['s0.ts', 's5.ts']);
    const gate = deferred();
    origin.route('/media/live/s5.ts', serveBytes(testBytes(100_000, 5), { chunkBytes: 10_000, gate: gate.promise }));

    await drain(await open(origin.url('/media/live/s0.ts'), playlist));
    await expect.poll(() => origin.count('/media/live/s5.ts'), { timeout: 3000 }).toBe(1);
    const stream = await open(origin.url('/media/live/s5.ts'), playlist);
    expect(stream.fromCache).toBe(false);
    gate.resolve();
    expect(await drain(stream)).toBe(100_000);
    expect(origin.count('/media/live/s5.ts')).toBe(1);
  });

  it('fetches a VOD playlist once and never polls or prefetches it', async () => {
    makeSource();
    const playlist = origin.url('/media/live/vod.m3u8');
    routePlaylist('/media/live/vod.m3u8', ['s0.ts', 's1.ts', 's2.ts', 's3.ts'], { endList: true });
    await drain(await open(origin.url('/media/live/s0.ts'), playlist));
    await sleep(150);
    await drain(await open(origin.url('/media/live/s1.ts'), playlist));
    await sleep(150);
    expect(origin.count('/media/live/vod.m3u8')).toBe(1);
    expect(origin.count('/media/live/s2.ts') + origin.count('/media/live/s3.ts')).toBe(0);
    expect(source.advertisedStreams()).toEqual([playlist]);
  });

  it('never prefetches segments a playlist lists outside the allowlist', async () => {
    makeSource();
    const playlist = origin.url('/media/live/evil.m3u8');
    routePlaylist('/media/live/evil.m3u8', ['s0.ts', '/private/a.ts', '../../private/b.ts']);
    origin.route('/private/a.ts', serveBytes(testBytes(10)));
    origin.route('/private/b.ts', serveBytes(testBytes(10)));
    await drain(await open(origin.url('/media/live/s0.ts'), playlist));
    await expect.poll(() => origin.count('/media/live/evil.m3u8'), { timeout: 3000 }).toBeGreaterThanOrEqual(2);
    expect(origin.count('/private/a.ts') + origin.count('/private/b.ts')).toBe(0);
  });

  it('with polling disabled never fetches the playlist but still advertises it', async () => {
    makeSource({ livePollingEnabled: false });
    const playlist = origin.url('/media/live/index.m3u8');
    routePlaylist('/media/live/index.m3u8', ['s0.ts', 's1.ts']);
    await drain(await open(origin.url('/media/live/s0.ts'), playlist));
    await sleep(100);
    expect(origin.count('/media/live/index.m3u8')).toBe(0);
    expect(source.advertisedStreams()).toEqual([playlist]);
  });

  it('follows at most maxFollowedPlaylists, dropping the least recently requested', async () => {
    makeSource({ maxFollowedPlaylists: 1, liveViewerIdleMs: 10_000 });
    routePlaylist('/media/live/a.m3u8', ['s0.ts']);
    routePlaylist('/media/live/b.m3u8', ['s0.ts']);
    await drain(await open(origin.url('/media/live/s0.ts'), origin.url('/media/live/a.m3u8')));
    await drain(await open(origin.url('/media/live/s0.ts'), origin.url('/media/live/b.m3u8')));
    await sleep(100);
    const a = origin.count('/media/live/a.m3u8');
    await sleep(200);
    expect(origin.count('/media/live/a.m3u8')).toBe(a);
    expect(origin.count('/media/live/b.m3u8')).toBeGreaterThan(2);
  });

  it('stops polling on close', async () => {
    makeSource();
    routePlaylist('/media/live/index.m3u8', ['s0.ts']);
    await drain(await open(origin.url('/media/live/s0.ts'), origin.url('/media/live/index.m3u8')));
    await expect.poll(() => origin.count('/media/live/index.m3u8'), { timeout: 3000 }).toBeGreaterThanOrEqual(1);
    await source.close();
    const polls = origin.count('/media/live/index.m3u8');
    await sleep(200);
    expect(origin.count('/media/live/index.m3u8')).toBe(polls);
  });
});
