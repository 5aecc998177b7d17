import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { serveStaticFile } from '@relaycast/devnet';
import { RELAY_ID_HEADER } from '@relaycast/protocol';

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

/**
 * A plain HTTP origin over a directory, the way a CDN would serve HLS: Range support, no caching
 * (so browser tests always reach it), and a log of every request for the tests' counting.
 */
export async function startOrigin(root: string, listen: { host?: string; port?: number } = {}): Promise<OriginServer> {
  const host = listen.host ?? '127.0.0.1';
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
    const relayId = req.headers[RELAY_ID_HEADER];
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
    if (req.method !== 'GET') {
      res.writeHead(405).end();
      return;
    }
    if (!(await serveStaticFile(root, path, req, res))) res.writeHead(path.includes('..') ? 403 : 404, { 'cache-control': 'no-store' }).end();
  }
  await new Promise<void>((resolve) => server.listen(listen.port ?? 0, host, resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${host}:${port}/`,
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

/**
 * `count` segments of `bytes` random bytes (`dir`/media/seg<i>.ts) and an origin over `dir`: the
 * origin, the scope the segments are under (its media/ URL) and the segments' URLs.
 */
export async function startRandomSegmentOrigin(dir: string, count: number, bytes: number): Promise<{ origin: OriginServer; scope: string; segs: string[] }> {
  await mkdir(join(dir, 'media'));
  for (let i = 0; i < count; i++) await writeFile(join(dir, 'media', `seg${i}.ts`), randomBytes(bytes));
  const origin = await startOrigin(dir);
  const scope = `${origin.url}media/`;
  return { origin, scope, segs: Array.from({ length: count }, (_, i) => `${scope}seg${i}.ts`) };
}
