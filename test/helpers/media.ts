import { createHash } from 'node:crypto';
import { access, mkdir, mkdtemp, rename, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { DEFAULT_RENDITIONS, describeVod, generateVod, type Vod, type VodOptions } from '@relaycast/devnet';
import { ffmpegPath } from './ffmpeg.js';

export {
  DEFAULT_RENDITIONS,
  generateVod,
  startLiveStream,
  type LiveStream,
  type Rendition,
  type Vod,
  type VodOptions,
  type VodRendition,
} from '@relaycast/devnet';

/** Bump when the generated media changes, so stale caches are not reused. */
const MEDIA_VERSION = 3;

/**
 * A VOD generated once and reused by every test file of the run (and later runs with the same
 * options and ffmpeg): kept under the OS temp dir, keyed by the options, written atomically.
 * Treat it as read-only; link it into a test's origin root with `linkVod`.
 */
export async function cachedVod(options: VodOptions = {}): Promise<Vod> {
  const format = options.format ?? 'ts';
  const key = createHash('sha256')
    .update(
      JSON.stringify({
        v: MEDIA_VERSION,
        ffmpeg: ffmpegPath(),
        format,
        d: options.durationSec ?? 12,
        s: options.segmentSec ?? 2,
        r: options.renditions ?? DEFAULT_RENDITIONS,
        g: options.digests ?? true,
      }),
    )
    .digest('hex')
    .slice(0, 16);
  const root = join(tmpdir(), 'relaycast-test-media');
  const dir = join(root, `vod-${format}-${key}`);
  const renditions = options.renditions ?? DEFAULT_RENDITIONS;
  try {
    await access(join(dir, 'master.m3u8'));
    return await describeVod(dir, format, renditions);
  } catch {
    // not cached yet (or half-written by a crashed run: the rename below never happened)
  }
  await mkdir(root, { recursive: true });
  const tmp = await mkdtemp(join(root, 'tmp-'));
  await generateVod(tmp, options);
  try {
    await rename(tmp, dir);
  } catch {
    // Another test file won the race: keep its copy.
    await rm(tmp, { recursive: true, force: true });
  }
  return describeVod(dir, format, renditions);
}

/** Makes `vod` appear at `linkPath` (a symlink), e.g. inside an origin's root directory. */
export async function linkVod(vod: Vod, linkPath: string): Promise<Vod> {
  await mkdir(dirname(linkPath), { recursive: true });
  await symlink(vod.dir, linkPath, 'dir');
  return { ...vod, dir: linkPath };
}
