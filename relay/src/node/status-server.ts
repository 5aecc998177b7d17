import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ErrorCode, RELAY_STATUS_PATHS, RelaycastError } from '@relaycast/protocol';

/** What the status server needs from the relay. */
export interface StatusTarget {
  stats(): unknown;
  /** Prometheus text exposition for `GET /metrics`. Default: none (404). */
  metrics?: (() => Promise<string>) | undefined;
  setMaxUploadBytesPerSec(bytesPerSec: number): void;
}

export interface StatusServerOptions {
  /** TCP port; 0 picks a free one. Required. */
  port: number;
  /** Interface to bind. Default: '127.0.0.1' (the operator's machine only: it can change limits). */
  host?: string | undefined;
}

export interface StatusServer {
  readonly url: string;
  close(): Promise<void>;
}

/** Largest request body accepted (the only body is a tiny JSON object). */
const MAX_BODY_BYTES = 1024;

/**
 * The operator's local HTTP interface: `GET /status` (the relay's counters as JSON) and
 * `PUT /limits` with `{"maxUploadBytesPerSec": N}` to change the upload cap without a restart.
 * Only requests with Host `127.0.0.1:<port>`, `localhost:<port>` or `[::1]:<port>` are answered,
 * and state-changing ones only without an Origin header (403 RC_ERR_HOST_REFUSED otherwise): a
 * web page, DNS rebinding included, can neither read the status nor change the limits.
 */
export async function startStatusServer(target: StatusTarget, options: StatusServerOptions): Promise<StatusServer> {
  let allowedHosts = new Set<string>();
  const server: Server = createServer((req, res) => {
    const refused = refusal(req, allowedHosts);
    if (refused !== undefined) return send(res, 403, refused.toJSON());
    void handle(target, req, res);
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new RelaycastError(ErrorCode.CONFIG_INVALID, err.code === 'EADDRINUSE' ? `status port ${options.port} is already in use` : err.message, { cause: err }),
      ),
    );
    server.listen(options.port, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  allowedHosts = hostHeadersFor(host, port);
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * Host header values this server answers: the loopback names with the port it listens on, and the
 * bound address itself when it is a specific one. A web page that rebinds its own DNS name to
 * 127.0.0.1 still sends its own name as Host, so it is refused before anything is read or changed.
 */
function hostHeadersFor(bound: string, port: number): Set<string> {
  const hosts = new Set([`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]);
  if (bound !== '0.0.0.0' && bound !== '::') hosts.add(`${bound.includes(':') ? `[${bound.toLowerCase()}]` : bound}:${port}`);
  return hosts;
}

/** RC_ERR_HOST_REFUSED for a foreign Host, or for a state-changing request sent by a web page (it carries Origin). */
function refusal(req: IncomingMessage, allowedHosts: Set<string>): RelaycastError | undefined {
  const host = req.headers.host?.toLowerCase();
  if (host === undefined || !allowedHosts.has(host)) {
    return new RelaycastError(ErrorCode.HOST_REFUSED, 'Host must be 127.0.0.1, localhost or [::1] with the status port', {
      details: { host: host?.slice(0, 128) },
    });
  }
  const reads = req.method === 'GET' || req.method === 'HEAD';
  // Browsers send Origin on every cross-origin request and on same-origin non-GET ones; the
  // operator's tools (relaycast-relay status, curl) send none. A page never changes limits.
  if (!reads && req.headers.origin !== undefined) {
    return new RelaycastError(ErrorCode.HOST_REFUSED, 'state-changing requests from web pages (with an Origin header) are refused', {
      details: { origin: req.headers.origin.slice(0, 128) },
    });
  }
  return undefined;
}

async function handle(target: StatusTarget, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  try {
    if (path === RELAY_STATUS_PATHS.status && req.method === 'GET') return send(res, 200, target.stats());
    if (path === RELAY_STATUS_PATHS.metrics && req.method === 'GET' && target.metrics !== undefined) {
      const text = await target.metrics();
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'cache-control': 'no-store' }).end(text);
      return;
    }
    if (path === RELAY_STATUS_PATHS.limits && req.method === 'PUT') {
      const body = await readBody(req);
      let parsed: unknown;
      try {
        parsed = JSON.parse(body);
      } catch {
        throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'body must be JSON');
      }
      const v = (parsed as { maxUploadBytesPerSec?: unknown } | null)?.maxUploadBytesPerSec;
      if (typeof v !== 'number') throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'maxUploadBytesPerSec must be a number (0 = unlimited)');
      target.setMaxUploadBytesPerSec(v);
      return send(res, 200, { maxUploadBytesPerSec: v });
    }
    return send(res, path === RELAY_STATUS_PATHS.status || path === RELAY_STATUS_PATHS.limits ? 405 : 404, { error: 'not found' });
  } catch (err) {
    if (err instanceof RelaycastError) return send(res, 400, err.toJSON());
    return send(res, 500, { code: ErrorCode.INTERNAL, message: 'internal error' });
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const parts: Buffer[] = [];
    req.on('data', (chunk: Buffer) => {
      size += chunk.byteLength;
      if (size > MAX_BODY_BYTES) {
        reject(new RelaycastError(ErrorCode.MESSAGE_TOO_LARGE, `body over ${MAX_BODY_BYTES} bytes`));
        req.destroy();
        return;
      }
      parts.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}
