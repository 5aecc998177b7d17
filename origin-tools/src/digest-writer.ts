import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DIGEST_SIDECAR_SUFFIX, DIGEST_SIDECAR_VERSION, ErrorCode, RelaycastError, encodeDigestSidecar, throwIfAborted } from '@relaycast/protocol';
import type { Logger } from 'pino';
import { parseMediaPlaylist } from './hls-playlist.js';

export interface DigestWriterOptions {
  /** Stops the scan (and watch mode) with RC_ERR_ABORTED. Default: none. */
  signal?: AbortSignal | undefined;
  /** Parent logger. Default: none. */
  logger?: Logger | undefined;
  /** Directories deeper than this below the root are not scanned. Default: 8. */
  maxDepth?: number | undefined;
  /** Playlists handled per scan at most. Default: 10,000. */
  maxPlaylists?: number | undefined;
}

export interface DigestScanResult {
  /** Media playlists that have a sidecar after this scan. */
  playlists: number;
  /** Sidecars whose content changed (and were rewritten) in this scan. */
  written: string[];
}

interface CachedDigest {
  size: number;
  mtimeMs: number;
  digest: string;
}

/**
 * Writes `<playlist>.digests.json` beside every media playlist under a folder: the SHA-256 of each
 * local segment (and init segment) the playlist lists. Digests are cached by size and mtime, so a
 * watch loop rehashes only new segments; sidecars are replaced atomically (write, then rename), so
 * a viewer never reads half a file.
 */
export class DigestWriter {
  private readonly cache = new Map<string, CachedDigest>();
  private readonly last = new Map<string, string>();
  private readonly log: Logger | undefined;

  constructor(
    private readonly root: string,
    private readonly options: DigestWriterOptions = {},
  ) {
    this.log = options.logger?.child({ component: 'digest-writer' });
  }

  /** One pass over the folder. */
  async scan(): Promise<DigestScanResult> {
    const playlists = await this.findPlaylists();
    const written: string[] = [];
    const seen = new Set<string>();
    let count = 0;
    for (const file of playlists) {
      throwIfAborted(this.options.signal);
      const sidecar = await this.sidecarFor(file);
      if (sidecar === undefined) continue;
      count++;
      const target = `${file}${DIGEST_SIDECAR_SUFFIX}`;
      seen.add(target);
      if (this.last.get(target) === sidecar) continue;
      const tmp = `${target}.tmp-${process.pid}`;
      await writeFile(tmp, sidecar);
      await rename(tmp, target);
      this.last.set(target, sidecar);
      written.push(target);
    }
    // Forget digests of files no playlist names any more (deleted live segments).
    for (const key of this.last.keys()) if (!seen.has(key)) this.last.delete(key);
    return { playlists: count, written };
  }

  /** Rescans every `intervalMs` until the signal aborts (live streams). */
  async watch(intervalMs: number): Promise<void> {
    const signal = this.options.signal;
    const aborted = (): boolean => signal?.aborted === true;
    while (!aborted()) {
      try {
        const { written } = await this.scan();
        if (written.length > 0) this.log?.debug({ written: written.length }, 'digests updated');
      } catch (err) {
        if (aborted()) return;
        this.log?.warn({ err: (err as Error).message }, 'digest scan failed; retrying');
      }
      await new Promise<void>((resolve) => {
        // The listener goes with its timer: one per pass would pile up for as long as --watch runs.
        const onAbort = (): void => {
          clearTimeout(t);
          resolve();
        };
        const t = setTimeout(() => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        }, intervalMs);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    }
  }

  private async findPlaylists(): Promise<string[]> {
    const out: string[] = [];
    const maxDepth = this.options.maxDepth ?? 8;
    const maxPlaylists = this.options.maxPlaylists ?? 10_000;
    const walk = async (dir: string, depth: number): Promise<void> => {
      if (depth > maxDepth || out.length >= maxPlaylists) return;
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if (depth === 0) throw new RelaycastError(ErrorCode.CONFIG_INVALID, `cannot read ${dir}: ${(err as Error).message}`, { cause: err });
        return;
      }
      for (const e of entries) {
        const path = join(dir, e.name);
        if (e.isDirectory()) await walk(path, depth + 1);
        else if (e.isFile() && e.name.endsWith('.m3u8') && out.length < maxPlaylists) out.push(path);
      }
    };
    await walk(this.root, 0);
    return out.sort();
  }

  /** The sidecar text for one playlist, or undefined for master playlists and unreadable ones. */
  private async sidecarFor(file: string): Promise<string | undefined> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      return undefined; // replaced between listing and reading (live): next scan
    }
    let playlist;
    try {
      playlist = parseMediaPlaylist(text, pathToFileURL(file));
    } catch {
      this.log?.warn({ file }, 'not an HLS playlist; skipped');
      return undefined;
    }
    if (playlist.isMaster) return undefined;
    const segments: Record<string, string> = {};
    const base = pathToFileURL(file);
    for (const uri of [...playlist.initSegmentUris, ...playlist.segments.map((s) => s.uri)]) {
      const url = new URL(uri, base);
      // Only files this origin holds locally can be hashed here; absolute URLs elsewhere are skipped.
      if (url.protocol !== 'file:') continue;
      url.search = '';
      const digest = await this.digestOf(fileURLToPath(url));
      if (digest !== undefined) segments[uri] = digest;
    }
    return encodeDigestSidecar({ version: DIGEST_SIDECAR_VERSION, algorithm: 'sha256', playlist: basename(file), segments });
  }

  private async digestOf(path: string): Promise<string | undefined> {
    let s;
    try {
      s = await stat(path);
    } catch {
      return undefined; // listed but already deleted (sliding live window)
    }
    const cached = this.cache.get(path);
    if (cached !== undefined && cached.size === s.size && cached.mtimeMs === s.mtimeMs) return cached.digest;
    const hash = createHash('sha256');
    try {
      for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
    } catch {
      return undefined;
    }
    const digest = hash.digest('hex');
    this.cache.set(path, { size: s.size, mtimeMs: s.mtimeMs, digest });
    if (this.cache.size > 100_000) this.cache.delete(this.cache.keys().next().value as string);
    return digest;
  }
}
