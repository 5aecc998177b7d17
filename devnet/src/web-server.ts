import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { ErrorCode, RELAY_ID_HEADER, RelaycastError } from '@relaycast/protocol';
import type { Logger } from 'pino';
import type { NetworkMonitor } from './network-monitor.js';
import { serveStaticFile } from './static-files.js';

const PUBLIC_DIR = fileURLToPath(new URL('../public/', import.meta.url));

export interface PageConfig {
  trackerUrl: string;
  /** The settlement service's grant endpoint (the page's SDK asks it for a session grant). */
  grantUrl?: string | undefined;
  /**
   * The settler's grant policy as its `/v1/info` states it ('open' on the local network: anyone
   * who can reach it gets a grant). The page says so plainly.
   */
  grantAuth?: string | undefined;
  streams: Record<string, string>;
}

/**
 * Header the page's own `fetch` sets on state-changing calls. A custom header cannot be sent
 * cross-site without a CORS preflight, which this server never answers.
 */
export const DEVNET_ACTION_HEADER = 'x-relaycast-devnet';

export interface WebServer {
  /** `http://127.0.0.1:<port>/` */
  readonly url: string;
  /** What the page learns from `GET /api/config` (tracker, stream URLs); set once the network is up. */
  setPageConfig(config: PageConfig): void;
  close(): Promise<void>;
}

/**
 * One port for everything a visitor's browser touches: the page (`/`), the SDK bundles (`/sdk/`),
 * the origin (`/media/`, counted by requester), and the API (`/api/network`, `/api/config`,
 * `POST /api/relays/<name>/kill|restart`). Binds to 127.0.0.1 only: the kill switch is not for
 * the LAN. Binding to loopback is not enough against a web page the user has open in the same
 * browser, so `/api/` answers only requests whose `Host` names this server (DNS rebinding), and
 * state-changing requests only from the page itself (see `refuseCrossSite`).
 */
export async function startWebServer(options: { port: number; mediaDir: string; sdkDir: string; monitor: NetworkMonitor; logger: Logger }): Promise<WebServer> {
  const log = options.logger.child({ component: 'web' });
  let config: PageConfig | undefined;
  const monitor = options.monitor;

  const json = (res: ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));
  };

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const method = req.method ?? 'GET';
    if (path.startsWith('/api/')) {
      const refused = refuseForeignHost(req, port) ?? (method === 'GET' || method === 'HEAD' ? undefined : refuseCrossSite(req, port));
      if (refused !== undefined) {
        log.warn(
          { method, path, host: req.headers.host, origin: req.headers.origin, contentType: req.headers['content-type'], reason: refused },
          'refused an API request',
        );
        return json(res, 403, { error: { code: ErrorCode.HOST_REFUSED, message: refused } });
      }
    }
    if (path === '/api/network' && method === 'GET') return json(res, 200, await monitor.snapshot());
    if (path === '/api/config' && method === 'GET')
      return config === undefined ? json(res, 503, { error: { code: 'RC_ERR_NOT_READY' } }) : json(res, 200, config);
    const action = /^\/api\/relays\/([a-z0-9-]{1,32})\/(kill|restart)$/.exec(path);
    if (action !== null) {
      if (method !== 'POST') return json(res, 405, { error: { code: ErrorCode.MESSAGE_TYPE, message: 'POST only' } });
      const slot = monitor.slots.find((s) => s.name === action[1]);
      if (slot === undefined) return json(res, 404, { error: { code: ErrorCode.PEER_UNKNOWN, message: 'no such relay' } });
      if (action[2] === 'kill') {
        log.info({ relay: slot.name }, 'killing relay from the page');
        await slot.child?.stop('SIGKILL');
      } else if (slot.child?.isRunning() !== true) {
        log.info({ relay: slot.name }, 'restarting relay from the page');
        await slot.start();
      }
      return json(res, 200, { name: slot.name, running: slot.child?.isRunning() === true });
    }
    if (method !== 'GET' && method !== 'HEAD') return json(res, 405, { error: { code: ErrorCode.MESSAGE_TYPE, message: 'method not allowed' } });
    if (path.startsWith('/media/')) {
      // Counted from what reaches the socket, not from headers: `writeHead(status, headers)` keeps
      // no header a later `getHeader` could read, and a range, a HEAD or an abort sends less anyway.
      const fromRelay = typeof req.headers[RELAY_ID_HEADER] === 'string';
      countBodyBytes(req, res, (bytes) => {
        if (fromRelay) monitor.origin.bytesToRelays += bytes;
        else monitor.origin.bytesToViewers += bytes;
      });
      if (fromRelay) monitor.origin.requestsFromRelays++;
      else monitor.origin.requestsFromViewers++;
      const served = await serveStaticFile(options.mediaDir, path.slice('/media'.length), req, res);
      if (!served) return json(res, 404, { error: { code: ErrorCode.SEGMENT_UNAVAILABLE, message: 'not found' } });
      return;
    }
    if (path.startsWith('/sdk/') && (await serveStaticFile(options.sdkDir, path.slice('/sdk'.length), req, res))) return;
    const page = path === '/' ? '/index.html' : path;
    if (await serveStaticFile(PUBLIC_DIR, page, req, res)) return;
    json(res, 404, { error: { code: 'RC_ERR_NOT_FOUND', message: 'not found' } });
  }

  // Known once listening (the port may be 0 = any); requests cannot arrive before that.
  let port = options.port;
  const server: Server = createServer((req, res) => {
    route(req, res).catch((err: unknown) => {
      log.warn({ err: String(err), url: req.url }, 'request failed');
      if (!res.headersSent) json(res, 500, { error: { code: ErrorCode.INTERNAL, message: 'internal error' } });
      else res.end();
    });
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new RelaycastError(ErrorCode.CONFIG_INVALID, err.code === 'EADDRINUSE' ? `port ${options.port} is already in use` : err.message, { cause: err })),
    );
    server.listen(options.port, '127.0.0.1', () => resolve());
  });
  port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}/`;
  // The page is static; make sure it exists now rather than 404 later.
  await readFile(new URL('index.html', `file://${PUBLIC_DIR}`));
  return {
    url,
    setPageConfig: (c) => {
      config = c;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

type WriteCallback = (err?: Error | null) => void;

/**
 * Reports the body bytes of `res` as they are written to the connection, whoever writes them and
 * however (one `end(buf)`, a stream of `write`s): a chunk counts once Node has handed all of it to
 * the socket with the connection still open. So a HEAD, a 204 or a 304 counts nothing (Node drops
 * their body), a range counts the range, and a chunk still queued when the client hangs up counts
 * nothing, although Node calls back (and emits 'finish') for it as if it had been sent.
 */
export function countBodyBytes(req: IncomingMessage, res: ServerResponse, onBytes: (bytes: number) => void): void {
  const socket = req.socket;
  const hasBody = (): boolean => req.method !== 'HEAD' && res.statusCode >= 200 && res.statusCode !== 204 && res.statusCode !== 304;
  const sizeOf = (chunk: unknown, encoding: unknown): number =>
    typeof chunk === 'string'
      ? Buffer.byteLength(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8')
      : chunk instanceof Uint8Array
        ? chunk.byteLength
        : 0;
  const completed = (bytes: number): void => {
    if (bytes > 0 && hasBody() && !socket.destroyed) onBytes(bytes);
  };
  const write = res.write.bind(res) as (chunk: unknown, encoding: unknown, cb: WriteCallback) => boolean;
  const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
  res.write = ((chunk: unknown, encodingOrCb?: unknown, cb?: WriteCallback): boolean => {
    const encoding = typeof encodingOrCb === 'function' ? undefined : encodingOrCb;
    const callback = typeof encodingOrCb === 'function' ? (encodingOrCb as WriteCallback) : cb;
    const bytes = sizeOf(chunk, encoding);
    return write(chunk, encoding, (err) => {
      if (err == null) completed(bytes);
      callback?.(err);
    });
  }) as ServerResponse['write'];
  res.end = ((...args: unknown[]): ServerResponse => {
    // end(chunk) writes its chunk with no callback of its own; 'finish' follows that write.
    const [chunk, encoding] = args;
    if (typeof chunk !== 'function' && chunk != null && !res.writableEnded) {
      const bytes = sizeOf(chunk, typeof encoding === 'function' ? undefined : encoding);
      res.once('finish', () => completed(bytes));
    }
    return end(...args);
  }) as ServerResponse['end'];
}

/** Names a browser may use for this server: it binds 127.0.0.1 only. */
function pageOrigins(port: number): string[] {
  return [`http://127.0.0.1:${port}`, `http://localhost:${port}`];
}

/**
 * Why a request's `Host` is not this server (undefined when it is). A page on another site that
 * re-points its own name at 127.0.0.1 (DNS rebinding) reaches this port with its own name in `Host`.
 */
export function refuseForeignHost(req: IncomingMessage, port: number): string | undefined {
  const host = (req.headers.host ?? '').toLowerCase();
  return pageOrigins(port).some((o) => o === `http://${host}`) ? undefined : `Host ${JSON.stringify(host)} is not this server (127.0.0.1:${port})`;
}

/**
 * Why a state-changing request did not come from the page itself (undefined when it did). Any web
 * page can make the browser POST to 127.0.0.1 ("simple" requests need no preflight: form or
 * text/plain bodies, no custom headers), so a request must:
 * - carry a JSON content type (a form or text/plain post cannot), and
 * - come from this page: `Origin` equal to this server's origin; without `Origin` (non-browser
 *   clients, older browsers on same-origin requests), the custom DEVNET_ACTION_HEADER, which
 *   another site cannot send without a preflight this server never grants;
 * - and, where the browser says so, `Sec-Fetch-Site: same-origin` (or `none`, typed by the user).
 */
export function refuseCrossSite(req: IncomingMessage, port: number): string | undefined {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/json') return `content type must be application/json, got ${JSON.stringify(req.headers['content-type'] ?? '')}`;
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return `cross-site request (Sec-Fetch-Site: ${site})`;
  const origin = req.headers.origin;
  if (origin !== undefined) return pageOrigins(port).includes(origin.toLowerCase()) ? undefined : `Origin ${JSON.stringify(origin)} is not this page`;
  return req.headers[DEVNET_ACTION_HEADER] === '1' ? undefined : `no Origin and no ${DEVNET_ACTION_HEADER} header`;
}
