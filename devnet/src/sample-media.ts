/**
 * Sample HLS media made with ffmpeg: a VOD with several renditions and a real-time live stream,
 * every segment starting on a keyframe, with digest sidecars published the way an origin would.
 * Used by `npm start` (the local network) and by the end-to-end tests and benchmarks.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { resolveBin } from '@relaycast/cli-kit';
import { DigestWriter } from '@relaycast/origin-tools';
import { killOnExit } from './child-process.js';
import { ffmpegPath } from './ffmpeg.js';

/** The origin-side digest tool, run as its own process for live streams as an origin would. */
const DIGEST_BIN = resolveBin('@relaycast/origin-tools', 'relaycast-digest');

const run = promisify(execFile);

export interface Rendition {
  name: string;
  width: number;
  height: number;
  videoKbps: number;
}

export const DEFAULT_RENDITIONS: Rendition[] = [
  { name: '360p', width: 640, height: 360, videoKbps: 800 },
  { name: '180p', width: 320, height: 180, videoKbps: 250 },
];

export interface VodOptions {
  format?: 'ts' | 'fmp4';
  durationSec?: number;
  segmentSec?: number;
  renditions?: Rendition[];
  /** Write `<playlist>.digests.json` sidecars (as relaycast-digest does). Default: true. */
  digests?: boolean;
}

/** Encoder flags shared by VOD and live: every segment starts on a keyframe. */
function encodeArgs(r: Rendition, segmentSec: number): string[] {
  return [
    '-vf',
    `scale=${r.width}:${r.height}`,
    '-c:v',
    'libx264',
    '-preset',
    'veryfast',
    '-profile:v',
    'main',
    '-pix_fmt',
    'yuv420p',
    '-b:v',
    `${r.videoKbps}k`,
    '-maxrate',
    `${r.videoKbps}k`,
    '-bufsize',
    `${r.videoKbps * 2}k`,
    '-force_key_frames',
    `expr:gte(t,n_forced*${segmentSec})`,
    '-sc_threshold',
    '0',
    '-c:a',
    'aac',
    '-b:a',
    '64k',
    '-ac',
    '2',
    '-ar',
    '44100',
  ];
}

function sourceArgs(durationSec: number, realtime: boolean): string[] {
  return [
    ...(realtime ? ['-re'] : []),
    '-f',
    'lavfi',
    '-i',
    `testsrc2=size=640x360:rate=30:duration=${durationSec}`,
    '-f',
    'lavfi',
    '-i',
    `sine=frequency=440:sample_rate=44100:duration=${durationSec}`,
    '-t',
    String(durationSec),
  ];
}

function masterPlaylist(renditions: Rendition[], mediaName: string): string {
  const lines = ['#EXTM3U', '#EXT-X-VERSION:7'];
  for (const r of renditions) {
    lines.push(`#EXT-X-STREAM-INF:BANDWIDTH=${(r.videoKbps + 64) * 1000},RESOLUTION=${r.width}x${r.height},CODECS="avc1.4d401e,mp4a.40.2"`);
    lines.push(`${r.name}/${mediaName}`);
  }
  return `${lines.join('\n')}\n`;
}

export interface VodRendition extends Rendition {
  /** Media playlist, relative to the VOD directory (e.g. `360p/index.m3u8`). */
  playlist: string;
  /** Segment files in playlist order, relative to the VOD directory. */
  segments: string[];
  /** fMP4 init segment (`#EXT-X-MAP`), relative to the VOD directory. */
  init: string | undefined;
}

export interface Vod {
  /** Directory holding `master.m3u8` and one folder per rendition. */
  dir: string;
  /** Master playlist, relative to `dir`. */
  master: string;
  format: 'ts' | 'fmp4';
  renditions: VodRendition[];
}

/** Reads back the layout `generateVod` wrote. */
export async function describeVod(dir: string, format: 'ts' | 'fmp4', renditions: Rendition[]): Promise<Vod> {
  const out: VodRendition[] = [];
  for (const r of renditions) {
    const playlist = `${r.name}/index.m3u8`;
    const text = await readFile(join(dir, playlist), 'utf8');
    const lines = text.split(/\r?\n/).map((l) => l.trim());
    const segments = lines.filter((l) => l !== '' && !l.startsWith('#')).map((l) => `${r.name}/${l}`);
    const map = /#EXT-X-MAP:URI="([^"]+)"/.exec(text)?.[1];
    out.push({ ...r, playlist, segments, init: map === undefined ? undefined : `${r.name}/${map}` });
  }
  return { dir, master: 'master.m3u8', format, renditions: out };
}

/**
 * Generates an HLS VOD (master + one media playlist per rendition, H.264/AAC, every segment
 * starting on a keyframe) under `dir`.
 */
export async function generateVod(dir: string, options: VodOptions = {}): Promise<Vod> {
  const format = options.format ?? 'ts';
  const durationSec = options.durationSec ?? 12;
  const segmentSec = options.segmentSec ?? 2;
  const renditions = options.renditions ?? DEFAULT_RENDITIONS;
  await mkdir(dir, { recursive: true });
  await Promise.all(
    renditions.map(async (r) => {
      const out = join(dir, r.name);
      await mkdir(out, { recursive: true });
      await run(
        ffmpegPath(),
        [
          '-hide_banner',
          '-loglevel',
          'error',
          '-y',
          ...sourceArgs(durationSec, false),
          ...encodeArgs(r, segmentSec),
          '-f',
          'hls',
          '-hls_time',
          String(segmentSec),
          '-hls_playlist_type',
          'vod',
          ...(format === 'fmp4'
            ? ['-hls_segment_type', 'fmp4', '-hls_fmp4_init_filename', 'init.mp4', '-hls_segment_filename', join(out, 'seg%03d.m4s')]
            : ['-hls_segment_filename', join(out, 'seg%03d.ts')]),
          join(out, 'index.m3u8'),
        ],
        { timeout: 60_000 },
      );
    }),
  );
  await writeFile(join(dir, 'master.m3u8'), masterPlaylist(renditions, 'index.m3u8'));
  // Published the way an origin would (relaycast-digest): viewers verify relay bytes against these.
  if (options.digests !== false) await new DigestWriter(dir).scan();
  return describeVod(dir, format, renditions);
}

export interface LiveStream {
  /** Path of the master playlist relative to the served root. */
  master: string;
  /** Media playlist path relative to `dir`. */
  media: string;
  process: ChildProcess;
  /** `relaycast-digest --watch` keeping the sidecar current, unless digests were turned off. */
  digestWatcher: ChildProcess | undefined;
  stop(): Promise<void>;
}

/** Starts a real-time sliding-window live stream (one rendition) that stops by itself after `durationSec`. */
export async function startLiveStream(
  dir: string,
  options: { durationSec?: number; segmentSec?: number; format?: 'ts' | 'fmp4'; digests?: boolean; digestIntervalMs?: number } = {},
): Promise<LiveStream> {
  const durationSec = options.durationSec ?? 60;
  const segmentSec = options.segmentSec ?? 2;
  const r = DEFAULT_RENDITIONS[0] as Rendition;
  const out = join(dir, r.name);
  await mkdir(out, { recursive: true });
  await writeFile(join(dir, 'master.m3u8'), masterPlaylist([r], 'live.m3u8'));
  const child = spawn(
    ffmpegPath(),
    [
      '-hide_banner',
      '-loglevel',
      'error',
      '-y',
      ...sourceArgs(durationSec, true),
      ...encodeArgs(r, segmentSec),
      '-f',
      'hls',
      '-hls_time',
      String(segmentSec),
      '-hls_list_size',
      '6',
      '-hls_flags',
      'delete_segments+temp_file',
      ...(options.format === 'fmp4'
        ? ['-hls_segment_type', 'fmp4', '-hls_fmp4_init_filename', 'init.mp4', '-hls_segment_filename', join(out, 'live%05d.m4s')]
        : ['-hls_segment_filename', join(out, 'live%05d.ts')]),
      join(out, 'live.m3u8'),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  killOnExit(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const watcher =
    options.digests === false
      ? undefined
      : spawn(process.execPath, [DIGEST_BIN, dir, '--watch', '--interval-ms', String(options.digestIntervalMs ?? 200), '--log-level', 'warn'], {
          stdio: ['ignore', 'ignore', 'inherit'],
        });
  if (watcher !== undefined) killOnExit(watcher);
  const watcherExited = watcher === undefined ? Promise.resolve() : new Promise<void>((resolve) => watcher.once('exit', () => resolve()));
  return {
    master: 'master.m3u8',
    media: `${r.name}/live.m3u8`,
    process: child,
    digestWatcher: watcher,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      if (watcher !== undefined && watcher.exitCode === null && watcher.signalCode === null) watcher.kill('SIGTERM');
      await Promise.all([exited, watcherExited]);
    },
  };
}
