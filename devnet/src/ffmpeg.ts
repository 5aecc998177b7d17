import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';

let cached: string | undefined;

/**
 * The ffmpeg tests use: `RELAYCAST_FFMPEG` when set, else a system `ffmpeg` on PATH (newer codecs),
 * else the static build shipped through npm (`@ffmpeg-installer/ffmpeg`).
 */
export function ffmpegPath(): string {
  if (cached !== undefined) return cached;
  const override = process.env.RELAYCAST_FFMPEG;
  if (override !== undefined && override !== '') return (cached = override);
  try {
    execFileSync('ffmpeg', ['-version'], { stdio: 'ignore' });
    cached = 'ffmpeg';
  } catch {
    const require = createRequire(import.meta.url);
    cached = (require('@ffmpeg-installer/ffmpeg') as { path: string }).path;
  }
  return cached;
}
