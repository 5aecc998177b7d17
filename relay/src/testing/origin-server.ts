import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A real HTTP origin on 127.0.0.1 for the origin-side tests: routes by path, counts requests per
 * path and keeps the headers of the last request. Test support only.
 */
export interface TestOrigin {
  /** `http://127.0.0.1:<port>` */
  readonly base: string;
  readonly port: number;
  url(path: string): string;
  /** `path` with a query matches only that query; without one it matches every query too. */
  route(path: string, handler: (req: IncomingMessage, res: ServerResponse) => void | Promise<void>): void;
  /** Requests seen for `path` (query included), or for every path without argument. */
  count(path?: string): number;
  lastHeaders(path: string): IncomingHttpHeaders | undefined;
  close(): Promise<void>;
}

export async function startTestOrigin(): Promise<TestOrigin> {
  const routes = new Map<string, (req: IncomingMessage, res: ServerResponse) => void | Promise<void>>();
  const counts = new Map<string, number>();
  const headers = new Map<string, IncomingHttpHeaders>();
  const server: Server = createServer((req, res) => {
    const path = req.url ?? '/';
    counts.set(path, (counts.get(path) ?? 0) + 1);
    headers.set(path, req.headers);
    // An exact route (query included) wins; otherwise the path's route answers any query.
    const handler = routes.get(path) ?? routes.get(path.split('?', 1)[0] as string);
    if (handler === undefined) {
      res.writeHead(404, { 'content-length': '0' }).end();
      return;
    }
    Promise.resolve(handler(req, res)).catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const base = `http://127.0.0.1:${port}`;
  return {
    base,
    port,
    url: (path) => base + path,
    route: (path, handler) => void routes.set(path, handler),
    count: (path) => (path === undefined ? [...counts.values()].reduce((a, b) => a + b, 0) : (counts.get(path) ?? 0)),
    lastHeaders: (path) => headers.get(path),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface ServeOptions {
  /** Bytes per write. Default: whole body at once. */
  chunkBytes?: number;
  /** Pause between writes. Default: 0. */
  delayMs?: number;
  /** Send Content-Length. Default: true. */
  contentLength?: boolean;
  /** Destroy the socket after this many body bytes. */
  dieAfterBytes?: number;
  /** Wait for this before writing anything past the first chunk. */
  gate?: Promise<void>;
  /** Called once the last byte was handed to the socket. */
  onFinished?: () => void;
  status?: number;
  extraHeaders?: Record<string, string>;
}

/** Handler that serves `body` with the given pacing and failure modes. */
export function serveBytes(body: Uint8Array, options: ServeOptions = {}) {
  return async (_req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const head: Record<string, string> = { 'content-type': 'video/mp2t', 'cache-control': 'no-store', ...options.extraHeaders };
    if (options.contentLength !== false) head['content-length'] = String(body.byteLength);
    res.writeHead(options.status ?? 200, head);
    const chunkBytes = options.chunkBytes ?? Math.max(body.byteLength, 1);
    let sent = 0;
    let first = true;
    while (sent < body.byteLength) {
      if (!first && options.gate !== undefined) await options.gate;
      if (!first && options.delayMs !== undefined && options.delayMs > 0) await sleep(options.delayMs);
      if (res.destroyed) return;
      let end = Math.min(body.byteLength, sent + chunkBytes);
      if (options.dieAfterBytes !== undefined && end >= options.dieAfterBytes) {
        end = options.dieAfterBytes;
        await write(res, body.subarray(sent, end));
        await sleep(20);
        res.socket?.destroy();
        return;
      }
      await write(res, body.subarray(sent, end));
      sent = end;
      first = false;
    }
    res.end();
    options.onFinished?.();
  };
}

function write(res: ServerResponse, chunk: Uint8Array): Promise<void> {
  return new Promise<void>((resolve) => {
    if (res.write(chunk)) {
      resolve();
      return;
    }
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Deterministic pseudo-random bytes, so every test segment differs. */
export function testBytes(size: number, seed = 1): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** A promise plus the function that resolves it. */
export function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}
