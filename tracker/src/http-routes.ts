import type { IncomingMessage, ServerResponse } from 'node:http';
import { TRACKER_HTTP_PATHS } from '@relaycast/protocol';

/**
 * Plain HTTP endpoints beside the WebSocket: `/healthz` for load balancers, `/status` (JSON) for
 * people and scripts, `/metrics` for Prometheus. Unknown paths are 404 whatever the method; known
 * paths accept GET and HEAD. `status` gets the request so it can decide what the caller may see
 * (relays' addresses only with the status token).
 */
export function handleHttp(req: IncomingMessage, res: ServerResponse, status: (req: IncomingMessage) => unknown, metrics?: () => Promise<string>): void {
  const path = (req.url ?? '/').split('?')[0];
  const known = path === TRACKER_HTTP_PATHS.health || path === TRACKER_HTTP_PATHS.status || (path === TRACKER_HTTP_PATHS.metrics && metrics !== undefined);
  if (!known) return send(res, 404, { error: 'not found' });
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD');
    return send(res, 405, { error: 'method not allowed' });
  }
  if (path === TRACKER_HTTP_PATHS.metrics && metrics !== undefined) {
    metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'cache-control': 'no-store' }).end(text);
      },
      () => send(res, 500, { error: 'metrics unavailable' }),
    );
    return;
  }
  send(res, 200, path === TRACKER_HTTP_PATHS.health ? { ok: true } : status(req));
}

function send(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}
