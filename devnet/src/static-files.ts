import type { IncomingMessage, ServerResponse } from 'node:http';
import { open, type FileHandle } from 'node:fs/promises';
import { extname, join, normalize, resolve, sep } from 'node:path';

const TYPES: Record<string, string> = {
  '.m3u8': 'application/vnd.apple.mpegurl',
  '.ts': 'video/mp2t',
  '.m4s': 'video/iso.segment',
  '.mp4': 'video/mp4',
  '.json': 'application/json',
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
};

/** Files larger than this are not served (sample media and bundles are far smaller). */
const MAX_FILE_BYTES = 64 * 1024 * 1024;

/**
 * Serves `urlPath` from under `root` the way a CDN serves HLS: GET only, byte ranges, no caching
 * (players and tests always reach the origin), CORS open. Resolves false when there is no such
 * file under `root` (the caller answers 404 or tries another root); never serves outside `root`.
 */
export async function serveStaticFile(rootDir: string, urlPath: string, req: IncomingMessage, res: ServerResponse): Promise<boolean> {
  const root = resolve(rootDir);
  if (urlPath.includes('\0')) return false;
  const file = normalize(join(root, urlPath));
  if (!file.startsWith(root + sep)) return false;
  // One handle for the size and the bytes: the digest writer renames a new sidecar into place, and a
  // stat by name followed by an open by name could pair the old length with the new file.
  let handle: FileHandle;
  try {
    handle = await open(file, 'r');
  } catch {
    return false;
  }
  try {
    const s = await handle.stat();
    if (!s.isFile() || s.size > MAX_FILE_BYTES) return false;
    const size = s.size;
    const headers: Record<string, string | number> = {
      'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
      'cache-control': 'no-store',
      'accept-ranges': 'bytes',
      'access-control-allow-origin': '*',
    };
    let start = 0;
    let end = size - 1;
    let status = 200;
    const m = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? '');
    if (m !== null && !(m[1] === '' && m[2] === '')) {
      start = m[1] === '' ? Math.max(0, size - Number(m[2])) : Number(m[1]);
      end = m[1] !== '' && m[2] !== '' ? Math.min(Number(m[2]), size - 1) : size - 1;
      if (start >= size || start > end) {
        res.writeHead(416, { 'content-range': `bytes */${size}` }).end();
        return true;
      }
      status = 206;
      headers['content-range'] = `bytes ${start}-${end}/${size}`;
    }
    headers['content-length'] = end - start + 1;
    const buf = Buffer.alloc(end - start + 1);
    await handle.read(buf, 0, buf.length, start);
    res.writeHead(status, headers).end(req.method === 'HEAD' ? undefined : buf);
  } finally {
    await handle.close();
  }
  return true;
}
