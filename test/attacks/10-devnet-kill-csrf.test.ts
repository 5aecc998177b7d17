import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEVNET_ACTION_HEADER, NetworkMonitor, startChild, startWebServer, type RelaySlot, type WebServer } from '@relaycast/devnet';
import { ErrorCode } from '@relaycast/protocol';
import { pino } from 'pino';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../helpers/browser.js';
import { RELAY_BIN, startTrackerProcess, stopAll, waitFor, type TrackerProc } from '../helpers/processes.js';

/**
 * Issue 14, finding 10: "The local network's kill endpoint can be posted from any web page."
 *
 * The page server of `npm start` (the launcher's own web server, the same code) with one real relay
 * process in its slot, as devnet.ts wires it. A foreign page can make the user's browser send a
 * "simple" POST (form or text/plain body, no custom headers, no preflight) to 127.0.0.1, or reach
 * the port under its own name after re-pointing it at 127.0.0.1 (DNS rebinding). Each such request
 * is now refused with RC_ERR_HOST_REFUSED (403) and the relay keeps running; the page's own
 * request (same origin, JSON, the page's header) still kills and restarts it.
 */

interface Answer {
  status: number;
  body: { error?: { code?: string; message?: string }; name?: string; running?: boolean };
}

/** A raw HTTP request with exactly the headers given (fetch would add or forbid some: Host, Origin). */
function post(port: number, path: string, headers: Record<string, string>, body: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, method: 'POST', headers: { 'content-length': String(Buffer.byteLength(body)), ...headers } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Answer['body'] });
          } catch (err) {
            reject(new Error(`not JSON (${res.statusCode}): ${text}`, { cause: err }));
          }
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('finding 10: the local network kill endpoint refuses cross-site requests', () => {
  let dir: string;
  let tracker: TrackerProc;
  let web: WebServer;
  let port: number;
  let browser: Browser;
  const slot: RelaySlot = { name: 'relay-1', statusUrl: '', child: undefined, relayId: undefined, start: async () => undefined };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rc-attack-10-'));
    await mkdir(join(dir, 'media'), { recursive: true });
    const logger = pino({ level: 'silent' });
    tracker = await startTrackerProcess();
    const monitor = new NetworkMonitor({ trackerHttpUrl: tracker.httpUrl, slots: [slot], logger });
    web = await startWebServer({ port: 0, mediaDir: join(dir, 'media'), sdkDir: join(dir, 'media'), monitor, logger });
    port = Number(new URL(web.url).port);
    slot.start = async () => {
      slot.child = await startChild({
        name: 'relay-1',
        script: RELAY_BIN,
        args: ['start', '--tracker', tracker.url, '--allow-origin', `${web.url}media/`, '--keypair', join(dir, 'relay-1.json'), '--bind-address', '127.0.0.1'],
        logFile: join(dir, 'relay-1.log'),
        ready: (l) => l['msg'] === 'relay registered and serving',
        readyTimeoutMs: 30_000,
      });
    };
    await slot.start();
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await slot.child?.stop('SIGKILL');
    await web?.close();
    await stopAll();
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses every request another site can make a browser send, and the relay keeps running', async () => {
    const page = `127.0.0.1:${port}`;
    const kill = '/api/relays/relay-1/kill';
    const attacks: { what: string; headers: Record<string, string>; body: string }[] = [
      // What a <form method=post action="http://127.0.0.1:8080/api/relays/relay-1/kill"> sends.
      {
        what: 'form post',
        headers: { host: page, origin: 'http://evil.example', 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'cross-site' },
        body: 'a=b',
      },
      // fetch(url, { method: 'POST', mode: 'no-cors', body: 'x' }): text/plain, no preflight.
      {
        what: 'no-cors text/plain fetch',
        headers: { host: page, origin: 'http://evil.example', 'content-type': 'text/plain;charset=UTF-8', 'sec-fetch-site': 'cross-site' },
        body: 'x',
      },
      { what: 'multipart form', headers: { host: page, origin: 'http://evil.example', 'content-type': 'multipart/form-data; boundary=x' }, body: '--x--' },
      // A JSON body needs a preflight cross-site, but a server must not rely on the browser alone.
      {
        what: 'JSON from a foreign origin',
        headers: { host: page, origin: 'http://evil.example', 'content-type': 'application/json', [DEVNET_ACTION_HEADER]: '1' },
        body: '{}',
      },
      // Sandboxed iframes and file: pages send Origin: null.
      { what: 'Origin null', headers: { host: page, origin: 'null', 'content-type': 'application/json' }, body: '{}' },
      // An older browser may send no Origin at all: a form post then lacks the JSON type and the header.
      { what: 'no Origin, form type', headers: { host: page, 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=b' },
      { what: 'no Origin, JSON but no page header', headers: { host: page, 'content-type': 'application/json' }, body: '{}' },
      // DNS rebinding: evil.example now resolves to 127.0.0.1, so the browser calls it same-origin.
      {
        what: 'DNS rebinding',
        headers: {
          host: `evil.example:${port}`,
          origin: `http://evil.example:${port}`,
          'content-type': 'application/json',
          [DEVNET_ACTION_HEADER]: '1',
          'sec-fetch-site': 'same-origin',
        },
        body: '{}',
      },
      // Right Origin claimed, but the browser says the request came from another site.
      {
        what: 'cross-site per Sec-Fetch-Site',
        headers: { host: page, origin: `http://${page}`, 'content-type': 'application/json', 'sec-fetch-site': 'cross-site' },
        body: '{}',
      },
    ];
    for (const a of attacks) {
      for (const path of [kill, '/api/relays/relay-1/restart']) {
        const answer = await post(port, path, a.headers, a.body);
        expect({ what: a.what, path, status: answer.status, code: answer.body.error?.code }).toEqual({
          what: a.what,
          path,
          status: 403,
          code: ErrorCode.HOST_REFUSED,
        });
      }
    }
    // The read-only API is refused under a foreign Host too (a rebound page could read it).
    const read = await new Promise<number>((resolve, reject) =>
      request({ host: '127.0.0.1', port, path: '/api/network', headers: { host: `evil.example:${port}` } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
        .on('error', reject)
        .end(),
    );
    expect(read).toBe(403);

    // A real browser on a foreign page posting a form to the kill endpoint (a top-level navigation,
    // which no browser blocks): refused, relay alive.
    const tab = await browser.newPage();
    try {
      await tab.route('http://evil.example/**', (route) =>
        route.fulfill({
          contentType: 'text/html',
          body: `<form id="f" method="post" action="http://127.0.0.1:${port}${kill}"><input name="a" value="b"></form><script>document.getElementById('f').submit()</script>`,
        }),
      );
      const answered = tab.waitForResponse((r) => r.url().endsWith(kill));
      await tab.goto('http://evil.example/');
      const response = await answered;
      expect(response.status()).toBe(403);
      expect(((await response.json()) as Answer['body']).error?.code).toBe(ErrorCode.HOST_REFUSED);
    } finally {
      await tab.close();
    }

    expect(slot.child?.isRunning()).toBe(true);
    expect(await tracker.relayIds()).toHaveLength(1);
  });

  it("the page's own request still kills and restarts the relay", async () => {
    const tab = await browser.newPage();
    try {
      // Any document of the page's origin; the page's app.js sends exactly this.
      await tab.goto(`${web.url}style.css`);
      const send = (action: string): Promise<Answer> =>
        tab.evaluate(
          async ([a, header]) => {
            const res = await fetch(`/api/relays/relay-1/${a}`, {
              method: 'POST',
              headers: { 'content-type': 'application/json', [header as string]: '1' },
              body: '{}',
            });
            return { status: res.status, body: await res.json() };
          },
          [action, DEVNET_ACTION_HEADER],
        );
      const relayId = (await tracker.relayIds())[0];
      const killed = await send('kill');
      expect(killed).toEqual({ status: 200, body: { name: 'relay-1', running: false } });
      expect(slot.child?.isRunning()).toBe(false);
      await waitFor('the killed relay to leave the tracker', async () => ((await tracker.relayIds()).length === 0 ? true : undefined), 30_000, 250);

      const restarted = await send('restart');
      expect(restarted).toEqual({ status: 200, body: { name: 'relay-1', running: true } });
      await waitFor(
        'the restarted relay back in the tracker',
        async () => ((await tracker.relayIds()).includes(relayId as string) ? true : undefined),
        30_000,
        250,
      );
    } finally {
      await tab.close();
    }
    // A client without a browser (curl) names itself with the header: accepted without Origin.
    const curl = await post(
      port,
      '/api/relays/relay-1/kill',
      { host: `127.0.0.1:${port}`, 'content-type': 'application/json', [DEVNET_ACTION_HEADER]: '1' },
      '{}',
    );
    expect(curl).toEqual({ status: 200, body: { name: 'relay-1', running: false } });
  });
});
