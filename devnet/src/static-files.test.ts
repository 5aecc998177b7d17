import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveStaticFile } from './static-files.js';

let root: string;
let server: Server;
let base: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'relaycast-static-'));
  await mkdir(join(root, 'dir'));
  await writeFile(join(root, 'seg.ts'), Buffer.from('0123456789'));
  server = createServer((req, res) => {
    void serveStaticFile(root, new URL(req.url ?? '/', 'http://x').pathname, req, res).then((served) => {
      if (!served) res.writeHead(404).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
  await rm(root, { recursive: true, force: true });
});

describe('serveStaticFile', () => {
  it('serves a file whole and by byte range, and refuses a range past the end with 416', async () => {
    expect(await (await fetch(`${base}/seg.ts`)).text()).toBe('0123456789');
    const part = await fetch(`${base}/seg.ts`, { headers: { range: 'bytes=2-4' } });
    expect([part.status, part.headers.get('content-range'), await part.text()]).toEqual([206, 'bytes 2-4/10', '234']);
    const tail = await fetch(`${base}/seg.ts`, { headers: { range: 'bytes=-3' } });
    expect(await tail.text()).toBe('789');
    expect((await fetch(`${base}/seg.ts`, { headers: { range: 'bytes=10-' } })).status).toBe(416);
  });

  it('answers nothing for a directory, a missing file or a path outside its root', async () => {
    expect((await fetch(`${base}/dir`)).status).toBe(404);
    expect((await fetch(`${base}/missing.ts`)).status).toBe(404);
    expect((await fetch(`${base}/..%2F..%2Fetc%2Fpasswd`)).status).toBe(404);
  });

  it('never pairs one version of a file renamed into place with the length of another', async () => {
    // The digest writer replaces a sidecar by rename; every body served must be one whole version.
    const versions = Array.from({ length: 8 }, (_, i) => JSON.stringify({ version: i, pad: 'x'.repeat(100 + i * 300) }));
    await writeFile(join(root, 'side.json'), versions[0]!);
    let stop = false;
    const writer = (async () => {
      for (let i = 1; !stop; i++) {
        const tmp = join(root, `side.json.${i}.tmp`);
        await writeFile(tmp, versions[i % versions.length]!);
        await rename(tmp, join(root, 'side.json'));
      }
    })();
    try {
      for (let i = 0; i < 400; i++) {
        const body = await (await fetch(`${base}/side.json`)).text();
        expect(versions).toContain(body);
      }
    } finally {
      stop = true;
      await writer;
    }
  });
});
