import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeDigestSidecar } from '@relaycast/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DigestWriter } from './digest-writer.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('DigestWriter', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rc-digest-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function segment(name: string, seed: number): Promise<Buffer> {
    const b = Buffer.from(Array.from({ length: 5_000 + seed }, (_, i) => (i * seed) % 256));
    await writeFile(join(dir, 'v', name), b);
    return b;
  }

  function playlist(uris: string[], opts: { init?: string; end?: boolean } = {}): string {
    return [
      '#EXTM3U',
      '#EXT-X-TARGETDURATION:2',
      ...(opts.init === undefined ? [] : [`#EXT-X-MAP:URI="${opts.init}"`]),
      ...uris.flatMap((u) => ['#EXTINF:2.0,', u]),
      ...(opts.end === true ? ['#EXT-X-ENDLIST'] : []),
      '',
    ].join('\n');
  }

  async function sidecar(): Promise<Record<string, string>> {
    return decodeDigestSidecar(await readFile(join(dir, 'v', 'index.m3u8.digests.json'), 'utf8')).segments;
  }

  it('writes the SHA-256 of every listed segment and init segment beside each media playlist, not beside masters', async () => {
    await mkdir(join(dir, 'v'));
    const init = await segment('init.mp4', 3);
    const a = await segment('a.m4s', 5);
    const b = await segment('b.m4s', 7);
    await writeFile(join(dir, 'v', 'index.m3u8'), playlist(['a.m4s', 'b.m4s?x=1'], { init: 'init.mp4', end: true }));
    await writeFile(join(dir, 'master.m3u8'), '#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv/index.m3u8\n');
    const result = await new DigestWriter(dir).scan();
    expect(result.playlists).toBe(1);
    expect(await sidecar()).toEqual({ 'init.mp4': sha(init), 'a.m4s': sha(a), 'b.m4s?x=1': sha(b) });
    await expect(stat(join(dir, 'master.m3u8.digests.json'))).rejects.toThrow();
  });

  it('follows a sliding live window: new segments appear, deleted ones disappear, unchanged scans write nothing', async () => {
    await mkdir(join(dir, 'v'));
    const s1 = await segment('s1.ts', 11);
    const s2 = await segment('s2.ts', 13);
    await writeFile(join(dir, 'v', 'index.m3u8'), playlist(['s1.ts', 's2.ts']));
    const writer = new DigestWriter(dir);
    await writer.scan();
    expect(await sidecar()).toEqual({ 's1.ts': sha(s1), 's2.ts': sha(s2) });
    expect((await writer.scan()).written).toEqual([]);
    const s3 = await segment('s3.ts', 17);
    await rm(join(dir, 'v', 's1.ts'));
    await writeFile(join(dir, 'v', 'index.m3u8'), playlist(['s2.ts', 's3.ts']));
    expect((await writer.scan()).written).toHaveLength(1);
    expect(await sidecar()).toEqual({ 's2.ts': sha(s2), 's3.ts': sha(s3) });
  });

  it('skips listed files that are already gone instead of failing', async () => {
    await mkdir(join(dir, 'v'));
    const s2 = await segment('s2.ts', 19);
    await writeFile(join(dir, 'v', 'index.m3u8'), playlist(['gone.ts', 's2.ts', 'https://elsewhere.example/x.ts']));
    await new DigestWriter(dir).scan();
    expect(await sidecar()).toEqual({ 's2.ts': sha(s2) });
  });

  it('keeps sidecars current in watch mode and stops when aborted', async () => {
    await mkdir(join(dir, 'v'));
    await segment('w1.ts', 23);
    await writeFile(join(dir, 'v', 'index.m3u8'), playlist(['w1.ts']));
    const controller = new AbortController();
    const watching = new DigestWriter(dir, { signal: controller.signal }).watch(30);
    const w2 = await segment('w2.ts', 29);
    await writeFile(join(dir, 'v', 'index.m3u8'), playlist(['w1.ts', 'w2.ts']));
    const deadline = Date.now() + 5_000;
    while ((await sidecar().catch(() => ({}) as Record<string, string>))['w2.ts'] !== sha(w2)) {
      if (Date.now() > deadline) throw new Error('sidecar never picked up w2.ts');
      await new Promise((r) => setTimeout(r, 20));
    }
    controller.abort();
    await watching;
  });
});
