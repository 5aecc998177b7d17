import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { RELAY_ID_HEADER, TRACKER_HTTP_PATHS } from '@relaycast/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ffmpegPath } from './helpers/ffmpeg.js';
import { mediaPlaylist, variantUrls } from './helpers/hls.js';
import { cachedVod, linkVod, startLiveStream, type Vod } from './helpers/media.js';
import { startOrigin, type OriginServer } from './helpers/origin-server.js';
import { relayIdOfKeypair, startRelayProcess, startTrackerProcess, waitFor } from './helpers/processes.js';
import { useProcesses } from './helpers/use-processes.js';

const run = promisify(execFile);

/** Whether the first video frame of `file` is a keyframe (ffmpeg's showinfo filter prints `iskey:1`). */
async function startsOnKeyframe(file: string): Promise<boolean> {
  const { stderr } = await run(
    ffmpegPath(),
    ['-hide_banner', '-loglevel', 'info', '-i', file, '-map', '0:v:0', '-vf', 'showinfo', '-frames:v', '1', '-f', 'null', '-'],
    { timeout: 30_000 },
  );
  const m = /iskey:(\d)/.exec(stderr);
  if (m === null) throw new Error(`no showinfo line for ${file}:\n${stderr}`);
  return m[1] === '1';
}

/** A raw GET that keeps the path exactly as written (fetch would normalise `..`). */
function rawGet(base: string, path: string): Promise<number> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path, method: 'GET' }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('test helpers: media, origin, processes', () => {
  useProcesses();
  let dir: string;
  let origin: OriginServer;
  let ts: Vod;
  let fmp4: Vod;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rc-helpers-'));
    ts = await linkVod(await cachedVod({ format: 'ts' }), join(dir, 'ts'));
    fmp4 = await linkVod(await cachedVod({ format: 'fmp4' }), join(dir, 'fmp4'));
    await writeFile(join(dir, 'secret.txt'), 'not under the served tree? it is: used for traversal checks');
    origin = await startOrigin(join(dir, 'ts'));
  });

  afterAll(async () => {
    await origin?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('generates a 2-rendition H.264/AAC VOD whose 2 s segments each start on a keyframe (TS and fMP4)', async () => {
    for (const vod of [ts, fmp4]) {
      expect(vod.renditions.map((r) => r.name)).toEqual(['360p', '180p']);
      for (const r of vod.renditions) {
        const text = await readFile(join(vod.dir, r.playlist), 'utf8');
        const durations = [...text.matchAll(/#EXTINF:([\d.]+)/g)].map((m) => Number(m[1]));
        expect(durations).toHaveLength(r.segments.length);
        expect(r.segments.length).toBeGreaterThanOrEqual(6);
        for (const d of durations.slice(0, -1)) expect(d).toBeCloseTo(2, 1);
        expect(text).toContain('#EXT-X-ENDLIST');
        if (vod.format === 'fmp4') expect(r.init).toBe(`${r.name}/init.mp4`);
        else expect(r.init).toBeUndefined();
        for (const seg of r.segments) {
          let file = join(vod.dir, seg);
          if (r.init !== undefined) {
            // An fMP4 fragment decodes only behind its init segment.
            file = join(dir, `probe-${r.name}.mp4`);
            await writeFile(file, Buffer.concat([await readFile(join(vod.dir, r.init)), await readFile(join(vod.dir, seg))]));
          }
          expect(await startsOnKeyframe(file), seg).toBe(true);
        }
      }
    }
  });

  it('caches generated VOD between callers', async () => {
    const again = await cachedVod({ format: 'ts' });
    const linked = ts.renditions[0]?.segments[0] as string;
    expect(Buffer.compare(await readFile(join(again.dir, linked)), await readFile(join(ts.dir, linked)))).toBe(0);
  });

  it('serves playlists and segments with content types, no-store, ranges, 404, 416, and refuses traversal', async () => {
    const masterUrl = `${origin.url}master.m3u8`;
    const master = await fetch(masterUrl);
    expect(master.status).toBe(200);
    expect(master.headers.get('content-type')).toBe('application/vnd.apple.mpegurl');
    expect(master.headers.get('cache-control')).toBe('no-store');
    const variants = variantUrls(await master.text(), masterUrl);
    expect(variants).toEqual([`${origin.url}360p/index.m3u8`, `${origin.url}180p/index.m3u8`]);
    const media = mediaPlaylist(await (await fetch(variants[0] as string)).text(), variants[0] as string);
    expect(media.ended).toBe(true);
    expect(media.segments[0]).toBe(`${origin.url}360p/seg000.ts`);

    const file = await readFile(join(ts.dir, '360p/seg001.ts'));
    const full = await fetch(`${origin.url}360p/seg001.ts`);
    expect(full.headers.get('content-type')).toBe('video/mp2t');
    expect(Buffer.compare(Buffer.from(await full.arrayBuffer()), file)).toBe(0);

    const part = await fetch(`${origin.url}360p/seg001.ts`, { headers: { range: 'bytes=1000-' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 1000-${file.length - 1}/${file.length}`);
    expect(Buffer.compare(Buffer.from(await part.arrayBuffer()), file.subarray(1000))).toBe(0);

    const mid = await fetch(`${origin.url}360p/seg001.ts`, { headers: { range: 'bytes=10-19' } });
    expect(Buffer.compare(Buffer.from(await mid.arrayBuffer()), file.subarray(10, 20))).toBe(0);
    const suffix = await fetch(`${origin.url}360p/seg001.ts`, { headers: { range: 'bytes=-100' } });
    expect(Buffer.compare(Buffer.from(await suffix.arrayBuffer()), file.subarray(file.length - 100))).toBe(0);

    const beyond = await fetch(`${origin.url}360p/seg001.ts`, { headers: { range: `bytes=${file.length}-` } });
    expect(beyond.status).toBe(416);
    expect(beyond.headers.get('content-range')).toBe(`bytes */${file.length}`);
    expect((await fetch(`${origin.url}360p/nope.ts`)).status).toBe(404);

    expect(await rawGet(origin.url, '/../secret.txt')).toBe(403);
    expect(await rawGet(origin.url, '/360p/%2e%2e/%2e%2e/secret.txt')).toBe(403);
    expect(await rawGet(origin.url, '/%E0%A4%A')).toBe(400);

    const fmp4Origin = await startOrigin(fmp4.dir);
    try {
      const init = await fetch(`${fmp4Origin.url}360p/init.mp4`);
      expect(init.headers.get('content-type')).toBe('video/mp4');
      const seg = await fetch(`${fmp4Origin.url}360p/seg000.m4s`, { headers: { [RELAY_ID_HEADER]: 'RelayX' } });
      expect(seg.headers.get('content-type')).toBe('video/iso.segment');
      expect(fmp4Origin.count('/360p/seg000.m4s', 'RelayX')).toBe(1);
      expect(fmp4Origin.count('/360p/seg000.m4s')).toBe(0);
    } finally {
      await fmp4Origin.close();
    }
    expect(origin.count('/360p/seg001.ts')).toBe(5);
    expect(origin.requests.find((r) => r.range === 'bytes=1000-')?.path).toBe('/360p/seg001.ts');
  });

  it('runs a sliding-window live stream with a master playlist', async () => {
    const liveDir = join(dir, 'live');
    const live = await startLiveStream(liveDir, { durationSec: 20 });
    const liveOrigin = await startOrigin(liveDir);
    try {
      const mediaUrl = `${liveOrigin.url}${live.media}`;
      const first = await waitFor(
        'two live segments',
        async () => {
          const res = await fetch(mediaUrl);
          if (!res.ok) return undefined;
          const p = mediaPlaylist(await res.text(), mediaUrl);
          return p.segments.length >= 2 ? p : undefined;
        },
        20_000,
        250,
      );
      expect(first.ended).toBe(false);
      const masterUrl = `${liveOrigin.url}${live.master}`;
      expect(variantUrls(await (await fetch(masterUrl)).text(), masterUrl)).toEqual([mediaUrl]);
      const seg = await fetch(first.segments[0] as string);
      expect(seg.status).toBe(200);
      expect((await seg.arrayBuffer()).byteLength).toBeGreaterThan(1000);
      // The window slides: a newer segment appears after the first one.
      await waitFor(
        'a newer live segment',
        async () => {
          const p = mediaPlaylist(await (await fetch(mediaUrl)).text(), mediaUrl);
          return p.segments.some((s) => !first.segments.includes(s)) || undefined;
        },
        20_000,
        250,
      );
    } finally {
      await live.stop();
      await liveOrigin.close();
    }
  });

  it('starts a tracker and a relay through their bins; the relay creates a 0600 keypair, registers, and leaves on SIGTERM', async () => {
    const tracker = await startTrackerProcess();
    expect(await (await fetch(`${tracker.httpUrl}${TRACKER_HTTP_PATHS.health}`)).json()).toEqual({ ok: true });
    const keypair = join(dir, 'keys', 'relay.json');
    const relay = await startRelayProcess(tracker, { keypair, allowOrigin: [origin.url] });
    expect(relay.relayId).toBe(await relayIdOfKeypair(keypair));
    expect((await stat(keypair)).mode & 0o777).toBe(0o600);
    expect(await tracker.relayIds()).toEqual([relay.relayId]);
    await relay.stop('SIGTERM');
    expect(relay.child.exitCode).toBe(0);
    await waitFor('the relay to leave /status', async () => ((await tracker.relayIds()).includes(relay.relayId) ? undefined : true), 10_000);
    await tracker.stop('SIGTERM');
    expect(tracker.child.exitCode).toBe(0);
  });
});
