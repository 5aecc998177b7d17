import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ErrorCode, RelaycastError } from '@relaycast/protocol';

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
 */
export async function startStatusServer(target: StatusTarget, options: StatusServerOptions): Promise<StatusServer> {
  const server: Server = createServer((req, res) => {
    void handle(target, req, res);
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new RelaycastError(ErrorCode.CONFIG_INVALID, err.code === 'EADDRINUSE' ? `status port ${options.port} is already in use` : err.message, { cause: err })),
    );
    server.listen(options.port, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function handle(target: StatusTarget, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  try {
    if (path === '/status' && req.method === 'GET') return send(res, 200, target.stats());
    if (path === '/metrics' && req.method === 'GET' && target.metrics !== undefined) {
      const text = await target.metrics();
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'cache-control': 'no-store' }).end(text);
      return;
    }
    if (path === '/limits' && req.method === 'PUT') {
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
    return send(res, path === '/status' || path === '/limits' ? 405 : 404, { error: 'not found' });
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
