import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { open, stat } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, resolve, sep } from 'node:path';

export interface OriginRequest {
  path: string;
  range: string | undefined;
  /** `x-relaycast-relay-id` header: which relay asked, undefined for viewers. */
  relayId: string | undefined;
  method: string;
}

export interface OriginServer {
  /** Base URL ending in '/'. */
  url: string;
  requests: OriginRequest[];
  /** Requests for `path` made by `relayId` (undefined = viewers). */
  count(path: string, relayId?: string): number;
  /** Makes GET `path` answer `302 Location: location` from now on. */
  redirect(path: string, location: string): void;
  close(): Promise<void>;
}

const TYPES: Record<string, string> = {
  '.m3u8': 'application/vnd.apple.mpegurl',
  '.ts': 'video/mp2t',
  '.m4s': 'video/iso.segment',
  '.mp4': 'video/mp4',
  '.json': 'application/json',
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.map': 'application/json',
};

/**
 * A plain HTTP origin over a directory, the way a CDN would serve HLS: Range support, no caching
 * (so browser tests always reach it), and a log of every request for the tests' counting.
 */
export async function startOrigin(root: string): Promise<OriginServer> {
  const requests: OriginRequest[] = [];
  const redirects = new Map<string, string>();
  root = resolve(root);
  const server: Server = createServer((req, res) => {
    serve(req, res).catch(() => {
      // e.g. a live segment deleted between stat and read
      if (!res.headersSent) res.writeHead(404, { 'cache-control': 'no-store' });
      res.end();
    });
  });
  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const rawPath = (req.url ?? '/').split('?')[0] as string;
    const relayId = req.headers['x-relaycast-relay-id'];
    let path: string | undefined;
    try {
      path = decodeURIComponent(rawPath);
    } catch {
      path = undefined;
    }
    requests.push({ path: path ?? rawPath, range: req.headers.range, relayId: typeof relayId === 'string' ? relayId : undefined, method: req.method ?? 'GET' });
    if (path === undefined || path.includes('\0')) {
      res.writeHead(400).end();
      return;
    }
    const location = redirects.get(path);
    if (location !== undefined) {
      res.writeHead(302, { location, 'cache-control': 'no-store' }).end();
      return;
    }
    const file = normalize(join(root, path));
    if (!file.startsWith(root + sep) || req.method !== 'GET') {
      res.writeHead(req.method === 'GET' ? 403 : 405).end();
      return;
    }
    let size: number;
    try {
      const s = await stat(file);
      if (!s.isFile()) throw new Error('not a file');
      size = s.size;
    } catch {
      res.writeHead(404, { 'cache-control': 'no-store' }).end();
      return;
    }
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
    if (m !== null) {
      start = m[1] === '' ? size - Number(m[2]) : Number(m[1]);
      end = m[1] !== '' && m[2] !== '' ? Math.min(Number(m[2]), size - 1) : size - 1;
      if (start >= size || start > end) {
        res.writeHead(416, { 'content-range': `bytes */${size}` }).end();
        return;
      }
      status = 206;
      headers['content-range'] = `bytes ${start}-${end}/${size}`;
    }
    headers['content-length'] = end - start + 1;
    const handle = await open(file, 'r');
    try {
      const buf = Buffer.alloc(end - start + 1);
      await handle.read(buf, 0, buf.length, start);
      res.writeHead(status, headers).end(buf);
    } finally {
      await handle.close();
    }
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/`,
    requests,
    redirect: (path, location) => void redirects.set(path, location),
    count: (path, relayId) => requests.filter((r) => r.path === path && r.relayId === relayId).length,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
