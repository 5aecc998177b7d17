import type { IncomingMessage, ServerResponse } from 'node:http';

/** Plain JSON HTTP endpoints beside the WebSocket: health for load balancers, status for people and scripts. */
export function handleHttp(req: IncomingMessage, res: ServerResponse, status: () => unknown): void {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    send(res, 405, { error: 'method not allowed' });
  } else if (path === '/healthz') {
    send(res, 200, { ok: true });
  } else if (path === '/status') {
    send(res, 200, status());
  } else {
    send(res, 404, { error: 'not found' });
  }
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
