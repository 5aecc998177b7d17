import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * Plain JSON HTTP endpoints beside the WebSocket: `/healthz` for load balancers, `/status` for
 * people and scripts. Unknown paths are 404 whatever the method; known paths accept GET and HEAD.
 */
export function handleHttp(req: IncomingMessage, res: ServerResponse, status: () => unknown): void {
  const path = (req.url ?? '/').split('?')[0];
  const known = path === '/healthz' || path === '/status';
  if (!known) return send(res, 404, { error: 'not found' });
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD');
    return send(res, 405, { error: 'method not allowed' });
  }
  send(res, 200, path === '/healthz' ? { ok: true } : status());
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
