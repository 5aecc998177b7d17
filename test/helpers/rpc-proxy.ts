import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** 'fail': HTTP 503 without forwarding; 'hang': no answer at all; 'drop-answer': forwarded, the answer lost. */
export type RpcFault = 'fail' | 'hang' | 'drop-answer';

export interface RpcProxy {
  url: string;
  close(): Promise<void>;
}

/**
 * A JSON-RPC proxy in front of `target` (a chain's RPC URL) that misbehaves the way a flaky
 * provider does: `fault` sees each request's body first and may return a fault for it; otherwise
 * the call is forwarded and its answer passed on.
 */
export async function startRpcProxy(target: string, fault: (body: Buffer) => RpcFault | undefined): Promise<RpcProxy> {
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const body = Buffer.concat(chunks);
        const f = fault(body);
        if (f === 'fail') return void res.writeHead(503).end('unavailable');
        if (f === 'hang') return; // the caller's timeout has to deal with it
        const upstream = await fetch(target, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
        const text = await upstream.text();
        if (f === 'drop-answer') return void res.destroy();
        res.writeHead(upstream.status, { 'content-type': 'application/json' }).end(text);
      })().catch(() => res.destroy());
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
