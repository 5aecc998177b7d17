import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';

let cached: string | undefined;

/** A system ffmpeg when present (newer codecs), else the static build shipped through npm. */
export function ffmpegPath(): string {
  if (cached !== undefined) return cached;
  try {
    execFileSync('ffmpeg', ['-version'], { stdio: 'ignore' });
    cached = 'ffmpeg';
  } catch {
    const require = createRequire(import.meta.url);
    cached = (require('@ffmpeg-installer/ffmpeg') as { path: string }).path;
  }
  return cached;
}
