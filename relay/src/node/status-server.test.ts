import { RELAY_STATUS_PATHS } from '@relaycast/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { startStatusServer, type StatusServer } from './status-server.js';

describe('relay status server', () => {
  let server: StatusServer | undefined;
  afterEach(async () => {
    await server?.close();
  });

  async function start(): Promise<{ caps: number[] }> {
    const caps: number[] = [];
    server = await startStatusServer(
      {
        stats: () => ({ bytesServed: 42, cap: caps.at(-1) ?? 0 }),
        setMaxUploadBytesPerSec: (n) => {
          if (n < 0) throw Object.assign(new Error('negative'), {});
          caps.push(n);
        },
      },
      { port: 0 },
    );
    return { caps };
  }

  it('serves the relay stats and binds loopback only', async () => {
    await start();
    expect(server?.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(`${server?.url}${RELAY_STATUS_PATHS.status}`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ bytesServed: 42, cap: 0 });
  });

  it('changes the upload cap with PUT /limits', async () => {
    const { caps } = await start();
    const res = await fetch(`${server?.url}${RELAY_STATUS_PATHS.limits}`, { method: 'PUT', body: JSON.stringify({ maxUploadBytesPerSec: 50_000 }) });
    expect(res.status).toBe(200);
    expect(caps).toEqual([50_000]);
    expect(((await (await fetch(`${server?.url}${RELAY_STATUS_PATHS.status}`)).json()) as { cap: number }).cap).toBe(50_000);
  });

  it('refuses malformed and oversized bodies with typed errors and changes nothing', async () => {
    const { caps } = await start();
    const bad = await fetch(`${server?.url}${RELAY_STATUS_PATHS.limits}`, { method: 'PUT', body: 'nope' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { code: string }).code).toBe('RC_ERR_CONFIG_INVALID');
    const wrongType = await fetch(`${server?.url}${RELAY_STATUS_PATHS.limits}`, { method: 'PUT', body: JSON.stringify({ maxUploadBytesPerSec: 'fast' }) });
    expect(wrongType.status).toBe(400);
    const big = await fetch(`${server?.url}${RELAY_STATUS_PATHS.limits}`, { method: 'PUT', body: 'x'.repeat(10_000) }).catch(() => undefined);
    if (big !== undefined) expect(big.status).toBe(400);
    expect(caps).toEqual([]);
    expect((await fetch(`${server?.url}/nope`)).status).toBe(404);
    expect((await fetch(`${server?.url}${RELAY_STATUS_PATHS.status}`, { method: 'DELETE' })).status).toBe(405);
  });
});

describe('relay status server: Host and Origin checks (DNS rebinding)', () => {
  let server: StatusServer | undefined;
  afterEach(async () => {
    await server?.close();
  });

  /** Raw HTTP/1.1 with chosen headers (fetch does not let a test set Host). */
  async function raw(method: string, path: string, headers: Record<string, string>, body = ''): Promise<{ status: number; body: string }> {
    const { request } = await import('node:http');
    const url = new URL(server?.url as string);
    return new Promise((resolve, reject) => {
      const req = request(
        { host: url.hostname, port: url.port, method, path, headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) }, setHost: false },
        (res) => {
          const parts: Buffer[] = [];
          res.on('data', (c: Buffer) => parts.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString() }));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  it('answers only loopback Host values with its own port, and never a rebinding page', async () => {
    const caps: number[] = [];
    server = await startStatusServer({ stats: () => ({ ok: true }), setMaxUploadBytesPerSec: (n) => void caps.push(n) }, { port: 0 });
    const port = new URL(server.url).port;
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST:${port}`, `[::1]:${port}`]) {
      expect((await raw('GET', RELAY_STATUS_PATHS.status, { host })).status, host).toBe(200);
    }
    for (const host of [
      'evil.example',
      `evil.example:${port}`,
      `127.0.0.1:${Number(port) + 1}`,
      '127.0.0.1',
      `127.0.0.2:${port}`,
      `localhost.evil.example:${port}`,
    ]) {
      const res = await raw('GET', RELAY_STATUS_PATHS.status, { host });
      expect(res.status, host).toBe(403);
      expect((JSON.parse(res.body) as { code: string }).code).toBe('RC_ERR_HOST_REFUSED');
    }
    const rebound = await raw(
      'PUT',
      RELAY_STATUS_PATHS.limits,
      { host: `attacker.example:${port}`, 'content-type': 'text/plain' },
      JSON.stringify({ maxUploadBytesPerSec: 1 }),
    );
    expect(rebound.status).toBe(403);
    // No Host at all: node's HTTP/1.1 parser answers 400 before the handler runs.
    expect([400, 403]).toContain((await raw('GET', RELAY_STATUS_PATHS.status, {})).status);
    expect(caps).toEqual([]);
  });

  it('refuses a state-changing request carrying Origin, even with a loopback Host; reads and the operator tools pass', async () => {
    const caps: number[] = [];
    server = await startStatusServer({ stats: () => ({ ok: true }), setMaxUploadBytesPerSec: (n) => void caps.push(n) }, { port: 0 });
    const host = new URL(server.url).host;
    const body = JSON.stringify({ maxUploadBytesPerSec: 7 });
    for (const origin of ['http://evil.example', `http://${host}`, 'null']) {
      const res = await raw('PUT', RELAY_STATUS_PATHS.limits, { host, origin }, body);
      expect(res.status, origin).toBe(403);
      expect((JSON.parse(res.body) as { code: string }).code).toBe('RC_ERR_HOST_REFUSED');
    }
    expect(caps).toEqual([]);
    expect((await raw('GET', RELAY_STATUS_PATHS.status, { host, origin: 'http://evil.example' })).status).toBe(200);
    expect((await raw('PUT', RELAY_STATUS_PATHS.limits, { host }, body)).status).toBe(200);
    expect(caps).toEqual([7]);
  });
});
