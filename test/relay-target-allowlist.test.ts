/**
 * Hardening issue, part 2: no request can make a relay fetch outside its allowlist.
 * A relay process (through its bin) serves a raw viewer over a real data channel; the allowed
 * origin runs on 127.0.0.1 (an explicitly allowlisted loopback origin, as in tests and `npm start`),
 * a second "internal" origin on another loopback port must never be reached. Every case checks the
 * typed answer the viewer gets and that no request arrived where it must not.
 */
import { lookup } from 'node:dns/promises';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, FrameType, MAX_URL_BYTES, isErrorCode, swarmIdFromUrl, type RelayFrame } from '@relaycast/protocol';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOriginPolicy } from '@relaycast/relay';
import { FUZZ_RUNS, fuzzParams } from './helpers/fuzz.js';
import { hostileUrlArb } from './helpers/fuzz-arbitraries.js';
import { cachedVod, linkVod } from './helpers/media.js';
import { startOrigin, type OriginServer } from './helpers/origin-server.js';
import { startRelayProcess, startTrackerProcess, type RelayProc, type TrackerProc } from './helpers/processes.js';
import { useProcesses } from './helpers/use-processes.js';
import { codeOf, fetchThrough as fetchOver, openRawChannel, type RawChannel } from './helpers/raw-viewer.js';

describe('relay as a target: the origin allowlist', () => {
  useProcesses();
  let dir: string;
  let origin: OriginServer;
  let internal: OriginServer;
  let tracker: TrackerProc;
  let relay: RelayProc;
  let ch: RawChannel;
  let swarmId: string;
  /** This machine's own host name: a real DNS name (system resolver) that resolves to loopback. */
  const localName = hostname();
  let nextId = 1;

  beforeAll(async () => {
    // The cases below need a name the system resolver maps to an internal address only.
    const addresses = await lookup(localName, { all: true });
    const probe = createOriginPolicy(['https://example.com/']);
    expect(addresses.length).toBeGreaterThan(0);
    for (const a of addresses) expect(probe.allowsAddress(localName, a.address, 443), `${localName} -> ${a.address}`).toBe(false);

    dir = await mkdtemp(join(tmpdir(), 'rc-target-'));
    await linkVod(await cachedVod({ format: 'ts' }), join(dir, 'vod'));
    origin = await startOrigin(dir);
    internal = await startOrigin(dir);
    const internalPort = new URL(internal.url).port;
    tracker = await startTrackerProcess();
    relay = await startRelayProcess(tracker, {
      keypair: join(dir, 'keys', 'r.json'),
      // The internal origin is allowlisted by name only: the name resolves to loopback, which the
      // allowlist names as an IP literal for the other origin's port, not for this one.
      allowOrigin: [`${origin.url}vod/`, `http://${localName}:${internalPort}/vod/`],
    });
    swarmId = swarmIdFromUrl(`${origin.url}vod/master.m3u8`);
    ch = await openRawChannel(tracker.url, swarmId);
  });

  afterAll(async () => {
    ch?.close();
    await origin?.close();
    await internal?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  /** One request; every frame until its last must be this request's. */
  const fetchThrough = (url: string): Promise<{ last: RelayFrame; data: Uint8Array }> => fetchOver(ch, nextId++, url, { strict: true });

  /** Every request the allowed origin got was under /vod/ with no dot segment left after decoding. */
  function originSawOnlyAllowedPaths(): void {
    for (const r of origin.requests) {
      expect(r.path.startsWith('/vod/'), r.path).toBe(true);
      expect(r.path.split('/').includes('..'), r.path).toBe(false);
    }
  }

  it('keeps the explicitly allowlisted loopback origin working', async () => {
    const { last, data } = await fetchThrough(`${origin.url}vod/180p/seg000.ts`);
    expect(last.type).toBe(FrameType.END);
    expect(Buffer.compare(Buffer.from(data), await readFile(join(dir, 'vod/180p/seg000.ts')))).toBe(0);
  });

  it('refuses absolute-URL tricks, dot segments, encodings, userinfo and IPv6 literals without any outgoing request', async () => {
    const o = new URL(origin.url);
    const port = o.port;
    const seg = 'vod/180p/seg000.ts';
    const cases = [
      // not absolute, or not http(s)
      `/${seg}`,
      seg,
      `//127.0.0.1:${port}/${seg}`,
      `file:///etc/passwd`,
      `ftp://127.0.0.1:${port}/${seg}`,
      `http:/127.0.0.1:${port}/${seg}`,
      // dot segments, plain, encoded and as servlet path parameters
      `${origin.url}vod/../${seg}`,
      `${origin.url}vod/180p/../../other/secret`,
      `${origin.url}vod/%2e%2e/vod/180p/seg000.ts`,
      `${origin.url}vod/.%2E/x`,
      `${origin.url}vod/..;/x`,
      `${origin.url}vod/%2e%2e;jsessionid=1/x`,
      // encoded separators and NUL, backslashes, whitespace
      `${origin.url}vod/180p%2fseg000.ts`,
      `${origin.url}vod/..%2fother`,
      `${origin.url}vod/..%5cother`,
      `${origin.url}vod/seg000.ts%00.m3u8`,
      `${origin.url}vod\\..\\other`,
      `${origin.url}vod/180p/seg000.ts\r\nX-Injected: 1`,
      `${origin.url}v\tod/180p/seg000.ts`,
      // userinfo, in every spelling
      `http://user:pw@127.0.0.1:${port}/${seg}`,
      `http://@127.0.0.1:${port}/${seg}`,
      `http://127.0.0.1:${port}@evil.example/${seg}`,
      `http://evil.example#@127.0.0.1:${port}/${seg}`,
      // the same machine under names and literals the allowlist does not give
      `http://localhost:${port}/${seg}`,
      `http://${localName}:${port}/${seg}`,
      `http://[::1]:${port}/${seg}`,
      `http://[::ffff:127.0.0.1]:${port}/${seg}`,
      `http://[::ffff:7f00:1]:${port}/${seg}`,
      `http://[0:0:0:0:0:0:0:1]:${port}/${seg}`,
      `http://[fe80::1]:${port}/${seg}`,
      `http://0.0.0.0:${port}/${seg}`,
      `http://127.0.0.2:${port}/${seg}`,
      `http://169.254.169.254/latest/meta-data/`,
      `http://127.0.0.1:${new URL(internal.url).port}/${seg}`,
    ];
    const before = origin.requests.length;
    for (const url of cases) {
      const { last } = await fetchThrough(url);
      expect(codeOf(last), url).toBe(ErrorCode.ORIGIN_NOT_ALLOWED);
    }
    expect(origin.requests.length - before).toBe(0);
    expect(internal.requests).toHaveLength(0);
  });

  it('refuses a DNS name on the allowlist when it resolves to an internal address the allowlist does not name', async () => {
    const { last } = await fetchThrough(`http://${localName}:${new URL(internal.url).port}/vod/180p/seg000.ts`);
    expect(codeOf(last)).toBe(ErrorCode.ORIGIN_NOT_ALLOWED);
    expect(internal.requests).toHaveLength(0);
  });

  it('refuses redirects to loopback names and literals and to allowlisted names resolving to internal addresses', async () => {
    const internalPort = new URL(internal.url).port;
    const targets = [
      `http://localhost:${internalPort}/vod/180p/seg000.ts`,
      `http://127.0.0.1:${internalPort}/vod/180p/seg000.ts`,
      `http://[::1]:${internalPort}/vod/180p/seg000.ts`,
      `http://${localName}:${internalPort}/vod/180p/seg000.ts`,
      `http://169.254.169.254/latest/meta-data/`,
      '/other/secret.ts',
    ];
    for (const [i, target] of targets.entries()) {
      origin.redirect(`/vod/hop${i}.ts`, target);
      const { last } = await fetchThrough(`${origin.url}vod/hop${i}.ts`);
      expect(codeOf(last), target).toBe(ErrorCode.ORIGIN_NOT_ALLOWED);
      expect(origin.count(`/vod/hop${i}.ts`, relay.relayId)).toBe(1);
    }
    expect(internal.requests).toHaveLength(0);
    originSawOnlyAllowedPaths();
  });

  it('answers generated hostile URLs over the real data channel with typed frames and never leaves the allowlist', async () => {
    // One data-channel round trip per input, so a sample of the run count (the handler-level fuzz
    // in fuzz-relay-channel.test.ts takes the full count).
    const numRuns = Math.max(200, Math.floor(FUZZ_RUNS / 20));
    const urls = hostileUrlArb(`${origin.url}vod/`).filter((u) => u.length > 0 && Buffer.byteLength(u) <= MAX_URL_BYTES);
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(urls, async (url) => {
        const { last } = await fetchThrough(url);
        if (last.type === FrameType.ERROR) {
          expect(isErrorCode(last.code), last.code).toBe(true);
          expect(last.code).not.toBe(ErrorCode.INTERNAL);
          if (last.code === ErrorCode.ORIGIN_NOT_ALLOWED) refused++;
        }
      }),
      fuzzParams({ numRuns }),
    );
    expect(refused).toBeGreaterThan(0);
    expect(internal.requests).toHaveLength(0);
    originSawOnlyAllowedPaths();
    // The channel survived every refusal and still serves.
    expect((await fetchThrough(`${origin.url}vod/360p/seg001.ts`)).last.type).toBe(FrameType.END);
  }, 300_000);
});
