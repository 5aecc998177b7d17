/** Baseline: the same segments from a plain node:http server, out of memory, in its own process. */
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { serveWorker } from '../lib/worker.js';

export interface HttpWorkerConfig {
  dir: string;
  files: string[];
}

serveWorker<HttpWorkerConfig, { url: string }>(async (config) => {
  const bodies = new Map<string, Buffer>();
  for (const f of config.files) bodies.set(`/${f}`, await readFile(join(config.dir, f)));
  const server = createServer((req, res) => {
    const body = bodies.get(req.url ?? '');
    if (body === undefined) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.byteLength }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    info: { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/` },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
});
