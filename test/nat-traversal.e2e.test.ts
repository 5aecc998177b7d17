import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TRACKER_HTTP_PATHS } from '@relaycast/protocol';
import { afterAll, beforeAll, describe, expect, it, onTestFailed, onTestFinished } from 'vitest';
import type { TrackerStatus } from '@relaycast/tracker';
import { startCoturn, type Coturn } from './helpers/coturn.js';
import { cachedVod, linkVod, type Vod } from './helpers/media.js';
import { startMiniupnpd, type Miniupnpd } from './helpers/miniupnpd.js';
import { createTestBed, hasCommand, netnsUnavailableReason, type TestBed, type TestBedOptions } from './helpers/netns.js';
import { GiveUp, RELAY_BIN, TRACKER_BIN, relayIdOfKeypair, startProcess, waitFor, type Proc } from './helpers/processes.js';
import { useProcesses } from './helpers/use-processes.js';

useProcesses();

/**
 * Relays and viewers behind NAT, in network namespaces the test builds (see helpers/netns.ts):
 * miniupnpd is the home router's UPnP IGD / NAT-PMP, coturn the TURN and STUN server. Every party is
 * a real process: tracker, relays, origin and SDK viewers (node-datachannel WebRTC). Needs root.
 */
const unavailable =
  (await netnsUnavailableReason()) ??
  ((await hasCommand('nft')) ? undefined : 'nft (nftables) is not installed') ??
  ((await hasCommand('miniupnpd')) ? undefined : 'miniupnpd is not installed') ??
  ((await hasCommand('turnserver')) ? undefined : 'turnserver (coturn) is not installed');
if (unavailable !== undefined) process.stderr.write(`nat-traversal: skipped: ${unavailable}\n`);

const VIEWER_BIN = fileURLToPath(new URL('./helpers/viewer-process.mjs', import.meta.url));
const ORIGIN_BIN = fileURLToPath(new URL('./helpers/origin-process.mjs', import.meta.url));
const TRACKER_PORT = 8000;
const ORIGIN_PORT = 8088;
const HOME_RTC_PORT = 40_000;
const PUBLIC_RTC_PORT = 40_100;
const STATUS_PORT = 9_100;
/** The tracker's /status shows relays' addresses only to this token (issue 14 finding 10). */
const STATUS_TOKEN = randomBytes(18).toString('base64url');

interface ViewerResult {
  segments: { url: string; sha256: string; bytes: number; bytesFromRelay: number }[];
  stats: {
    bytesFromRelays: number;
    bytesFromOrigin: number;
    perRelay: Record<string, { bytes: number; path?: 'direct' | 'relayed'; reachability?: string }>;
  };
  errors: string[];
}

/** One network: bed, coturn, tracker (STUN + TURN from coturn) and origin in the public namespace. */
class World {
  bed!: TestBed;
  turn!: Coturn;
  tracker!: Proc;
  origin!: Proc;
  upnp: Miniupnpd | undefined;
  dir!: string;
  vod!: Vod;
  readonly trackerUrl: string;
  readonly originUrl: string;

  constructor(readonly options: TestBedOptions & { upnp: boolean }) {
    this.trackerUrl = `ws://11.199.0.10:${TRACKER_PORT}/`;
    this.originUrl = `http://11.199.0.10:${ORIGIN_PORT}/`;
  }

  get masterUrl(): string {
    return `${this.originUrl}vod/master.m3u8`;
  }

  async start(): Promise<void> {
    this.dir = await mkdtemp(join(tmpdir(), 'rc-nat-'));
    this.vod = await linkVod(await cachedVod({ durationSec: 8 }), join(this.dir, 'www', 'vod'));
    this.bed = await createTestBed({ ...this.options, signal: AbortSignal.timeout(60_000) });
    if (this.options.upnp) this.upnp = await startMiniupnpd(this.bed);
    const secret = randomBytes(24).toString('base64url');
    this.turn = await startCoturn(this.bed, { secret });
    const pub = this.bed.ns.public;
    this.tracker = startProcess(
      'tracker',
      TRACKER_BIN,
      ['--port', String(TRACKER_PORT), '--host', this.bed.addr.public, '--stun', this.turn.stunUrl, '--turn', this.turn.url, '--log-level', 'info'],
      [...this.bed.wrap(pub), 'env', `RELAYCAST_TURN_SECRET=${secret}`, `RELAYCAST_STATUS_TOKEN=${STATUS_TOKEN}`],
    );
    this.origin = startProcess('origin', ORIGIN_BIN, [join(this.dir, 'www'), this.bed.addr.public, String(ORIGIN_PORT)], this.bed.wrap(pub));
    await waitFor(
      'origin and tracker to listen',
      async () => {
        if (this.tracker.exited) throw new GiveUp(`tracker exited:\n${this.tracker.output()}`);
        if (this.origin.exited) throw new GiveUp(`origin exited:\n${this.origin.output()}`);
        if (!this.origin.output().includes('LISTENING')) return undefined;
        return (
          (await this.trackerStatus().then(
            () => true,
            () => false,
          )) || undefined
        );
      },
      30_000,
    );
  }

  async stop(): Promise<void> {
    // Each step on its own: a failed one must not leave namespaces or daemons behind.
    await this.upnp?.stop().catch(() => undefined);
    await this.turn?.stop().catch(() => undefined);
    await this.bed?.destroy();
    if (this.dir !== undefined) await rm(this.dir, { recursive: true, force: true });
  }

  /** GET inside a namespace (the test process lives outside them), by a one-line node script. */
  async fetchIn(ns: string, url: string, headers: Record<string, string> = {}): Promise<string> {
    const { stdout } = await this.bed.exec(ns, process.execPath, [
      '-e',
      `fetch(${JSON.stringify(url)}, { headers: ${JSON.stringify(headers)} }).then(async (r) => { if (!r.ok) process.exit(3); process.stdout.write(await r.text()); })`,
    ]);
    return stdout;
  }

  /** The tracker's /status with the status token (addresses included); `redacted` without it. */
  async trackerStatus(redacted = false): Promise<TrackerStatus> {
    const headers: Record<string, string> = redacted ? {} : { authorization: `Bearer ${STATUS_TOKEN}` };
    return JSON.parse(
      await this.fetchIn(this.bed.ns.public, `http://${this.bed.addr.public}:${TRACKER_PORT}${TRACKER_HTTP_PATHS.status}`, headers),
    ) as TrackerStatus;
  }

  startRelay(name: string, ns: string, bindAddress: string, rtcPort: number, extra: string[] = []): Proc {
    const args = [
      'start',
      '--tracker',
      this.trackerUrl,
      '--keypair',
      join(this.dir, `${name}.json`),
      '--allow-origin',
      this.originUrl,
      '--bind-address',
      bindAddress,
      '--rtc-port',
      String(rtcPort),
      '--status-port',
      String(STATUS_PORT),
      '--log-level',
      'debug',
      ...extra,
    ];
    const relay = startProcess(`relay ${name}`, RELAY_BIN, args, this.bed.wrap(ns));
    onTestFailed(() => {
      process.stderr.write(`\n----- coturn last output -----\n${this.turn.output()}\n----- relay ${name} last output -----\n${relay.output()}\n`);
    });
    onTestFinished(() => relay.stop('SIGKILL'));
    return relay;
  }

  /** Waits for the tracker's reachability verdict on the relay started as `name`. */
  async verdict(name: string, relay: Proc): Promise<TrackerStatus['relays'][number]> {
    const relayId = await waitFor('the relay keypair', () => relayIdOfKeypair(join(this.dir, `${name}.json`)).catch(() => undefined));
    return await waitFor(
      `reachability verdict for ${relay.name}`,
      async () => {
        if (relay.exited) throw new GiveUp(`relay exited:\n${relay.output()}`);
        const s = await this.trackerStatus();
        return s.relays.find((r) => r.relayId === relayId && r.reachability !== undefined);
      },
      45_000,
      250,
    );
  }

  async relayStatusText(ns: string): Promise<string> {
    const { stdout } = await this.bed.exec(ns, process.execPath, [RELAY_BIN, 'status', '--status-port', String(STATUS_PORT)]);
    return stdout;
  }

  /** Runs an SDK viewer in `ns` that loads every segment of both renditions. */
  async view(ns: string, bindAddress: string): Promise<ViewerResult> {
    const viewer = startProcess(
      'viewer',
      VIEWER_BIN,
      [JSON.stringify({ trackerUrl: this.trackerUrl, masterUrl: this.masterUrl, bindAddress })],
      [...this.bed.wrap(ns), 'env', 'RC_VIEWER_LOG_LEVEL=debug'],
    );
    onTestFailed(() => {
      process.stderr.write(`\n----- viewer in ${ns} -----\n${viewer.output()}\n`);
    });
    await waitFor('the viewer to finish', () => viewer.exited || undefined, 120_000, 200);
    const line = viewer
      .output()
      .split('\n')
      .find((l) => l.startsWith('RESULT '));
    if (line === undefined) throw new Error(`viewer printed no result:\n${viewer.output()}`);
    return JSON.parse(line.slice('RESULT '.length)) as ViewerResult;
  }

  /** Every segment the viewer got is the origin's file, byte for byte (by SHA-256). */
  async expectIdentical(result: ViewerResult): Promise<void> {
    expect(result.segments.length).toBeGreaterThanOrEqual(8);
    for (const s of result.segments) {
      const file = await readFile(join(this.dir, 'www', new URL(s.url).pathname));
      expect(s.bytes, s.url).toBe(file.length);
      expect(s.sha256, s.url).toBe(createHash('sha256').update(file).digest('hex'));
    }
  }
}

describe.skipIf(unavailable !== undefined)('relays and viewers behind NAT', () => {
  describe('home router with UPnP and NAT-PMP (miniupnpd), port-preserving NAT', () => {
    const world = new World({ upnp: true, viewerNat: true });
    beforeAll(() => world.start(), 120_000);
    afterAll(() => world.stop());

    it('maps the relay port over UPnP, the tracker finds it reachable through the mapping, and a public viewer streams from it directly, byte-identical; the lease is renewed and removed on shutdown', async () => {
      const { bed } = world;
      const relay = world.startRelay('home', bed.ns.home, bed.addr.home, HOME_RTC_PORT, ['--map-port', '--map-port-ttl-ms', '4000']);
      const verdict = await world.verdict('home', relay);
      expect(verdict.reachability, relay.output()).toBe('mapped');
      expect(verdict.reachableAddress).toBe(`${bed.addr.routerWan}:${HOME_RTC_PORT}`);
      expect(verdict.nat).toMatchObject({ portMapping: 'upnp', publicAddress: bed.addr.routerWan, mappedPort: HOME_RTC_PORT });
      expect(await world.upnp!.mappings()).toContainEqual({
        protocol: 'udp',
        externalPort: HOME_RTC_PORT,
        internalHost: bed.addr.home,
        internalPort: HOME_RTC_PORT,
      });
      // Anyone else reading /status sees neither the relay's home address nor its mapped port.
      const redacted = (await world.trackerStatus(true)).relays.find((r) => r.relayId === verdict.relayId);
      expect(redacted?.reachability).toBe('mapped');
      expect(redacted?.reachableAddress).toBeUndefined();
      expect(redacted?.nat).toEqual({ portMapping: 'upnp' });

      // TURN on need only: a directly reachable relay costs no TURN allocation.
      const allocationsBefore = world.turn.allocations();
      const result = await world.view(bed.ns.public, bed.addr.public);
      await world.expectIdentical(result);
      const relayId = verdict.relayId;
      expect(result.stats.perRelay[relayId]?.path, JSON.stringify(result.stats)).toBe('direct');
      expect(result.stats.perRelay[relayId]?.reachability).toBe('mapped');
      expect(result.stats.bytesFromRelays).toBeGreaterThan(0);
      expect(result.stats.perRelay[relayId]?.bytes).toBe(result.stats.bytesFromRelays);
      expect(world.turn.allocations()).toBe(allocationsBefore);

      // Renewal seen on the router: the lease's expiry moves forward (4 s lease, renewed every 2 s).
      const leaseOf = async (): Promise<number | undefined> => (await world.upnp!.leases()).find((l) => l.externalPort === HOME_RTC_PORT)?.expiresAtUnixSec;
      const first = await waitFor('a lease for the relay port', leaseOf, 10_000);
      const later = await waitFor(
        'the lease to be renewed',
        async () => {
          const e = await leaseOf();
          return e !== undefined && e > first ? e : undefined;
        },
        15_000,
        250,
      );
      expect(later).toBeGreaterThan(first);
      const status = await world.relayStatusText(bed.ns.home);
      expect(status).toMatch(/network\s+mapped; public address 11\.199\.0\.1; upnp 11\.199\.0\.1:40000 \(renewed [1-9]\d*x\)/);
      expect(status).toContain('viewers connect directly');

      await relay.stop('SIGTERM');
      expect(relay.child.exitCode, relay.output()).toBe(0);
      expect(await world.upnp!.mappings()).toEqual([]);
      expect((await world.upnp!.leases()).filter((l) => l.externalPort === HOME_RTC_PORT)).toEqual([]);
    }, 240_000);

    it('a viewer behind its own NAT reaches a relay on a public address directly, byte-identical', async () => {
      const { bed } = world;
      const relay = world.startRelay('public', bed.ns.public, bed.addr.public, PUBLIC_RTC_PORT);
      const verdict = await world.verdict('public', relay);
      expect(verdict.reachability, relay.output()).toBe('public');
      const allocationsBefore = world.turn.allocations();
      const result = await world.view(bed.ns.viewerHome!, bed.addr.viewerHome);
      await world.expectIdentical(result);
      expect(result.stats.perRelay[verdict.relayId]?.path, JSON.stringify(result.stats)).toBe('direct');
      expect(result.stats.perRelay[verdict.relayId]?.bytes).toBe(result.stats.bytesFromRelays);
      expect(result.stats.bytesFromRelays).toBeGreaterThan(0);
      // No TURN credential was asked for or used: the relay was reachable directly.
      expect(world.turn.allocations()).toBe(allocationsBefore);
      await relay.stop('SIGTERM');
    }, 240_000);
  });

  describe('home router without UPnP or NAT-PMP, symmetric NAT (as carrier-grade NATs map)', () => {
    const world = new World({ upnp: false, viewerNat: true, homeNatMapping: 'symmetric' });
    beforeAll(() => world.start(), 120_000);
    afterAll(() => world.stop());

    it('the relay fails the reachability test, reports that it needs TURN with a hint, is not listed as directly reachable, and a viewer behind NAT gets every segment through coturn', async () => {
      const { bed } = world;
      const relay = world.startRelay('home', bed.ns.home, bed.addr.home, HOME_RTC_PORT, ['--map-port']);
      const verdict = await world.verdict('home', relay);
      expect(verdict.reachability, relay.output()).toBe('needs-turn');
      expect(verdict.reachableAddress).toBeUndefined();
      expect(verdict.nat?.portMapping).toBe('failed');
      expect(verdict.nat?.publicAddress).toBe(bed.addr.routerWan); // from STUN (coturn)
      const status = await world.relayStatusText(bed.ns.home);
      expect(status).toContain('network   needs-turn');
      expect(status).toContain(`forward UDP port ${HOME_RTC_PORT} to ${bed.addr.home}:${HOME_RTC_PORT}`);

      const allocationsBefore = world.turn.allocations();
      const result = await world.view(bed.ns.viewerHome!, bed.addr.viewerHome);
      await world.expectIdentical(result);
      expect(result.stats.perRelay[verdict.relayId]?.path, JSON.stringify(result.stats)).toBe('relayed');
      // Handed out, but not as directly reachable.
      expect(result.stats.perRelay[verdict.relayId]?.reachability).toBe('needs-turn');
      expect(result.stats.perRelay[verdict.relayId]?.bytes).toBe(result.stats.bytesFromRelays);
      expect(result.stats.bytesFromRelays).toBeGreaterThan(0);
      expect(world.turn.allocations()).toBeGreaterThan(allocationsBefore);

      // A viewer on a public address still gets every segment from it: ICE finds the way the
      // relay's own checks open (the direct path is preferred when there is one).
      const pub = await world.view(bed.ns.public, bed.addr.public);
      await world.expectIdentical(pub);
      expect(pub.stats.perRelay[verdict.relayId]?.bytes).toBeGreaterThan(0);
      await relay.stop('SIGTERM');
    }, 300_000);
  });
});
