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
    const res = await fetch(`${server?.url}/status`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ bytesServed: 42, cap: 0 });
  });

  it('changes the upload cap with PUT /limits', async () => {
    const { caps } = await start();
    const res = await fetch(`${server?.url}/limits`, { method: 'PUT', body: JSON.stringify({ maxUploadBytesPerSec: 50_000 }) });
    expect(res.status).toBe(200);
    expect(caps).toEqual([50_000]);
    expect(((await (await fetch(`${server?.url}/status`)).json()) as { cap: number }).cap).toBe(50_000);
  });

  it('refuses malformed and oversized bodies with typed errors and changes nothing', async () => {
    const { caps } = await start();
    const bad = await fetch(`${server?.url}/limits`, { method: 'PUT', body: 'nope' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { code: string }).code).toBe('RC_ERR_CONFIG_INVALID');
    const wrongType = await fetch(`${server?.url}/limits`, { method: 'PUT', body: JSON.stringify({ maxUploadBytesPerSec: 'fast' }) });
    expect(wrongType.status).toBe(400);
    const big = await fetch(`${server?.url}/limits`, { method: 'PUT', body: 'x'.repeat(10_000) }).catch(() => undefined);
    if (big !== undefined) expect(big.status).toBe(400);
    expect(caps).toEqual([]);
    expect((await fetch(`${server?.url}/nope`)).status).toBe(404);
    expect((await fetch(`${server?.url}/status`, { method: 'DELETE' })).status).toBe(405);
  });
});
