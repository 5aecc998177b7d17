import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RELAY_STATUS_PATHS } from '@relaycast/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestBed, hasCommand, netnsUnavailableReason, type TestBed } from './helpers/netns.js';
import { startMiniupnpd, type Miniupnpd } from './helpers/miniupnpd.js';
import { GiveUp, RELAY_BIN, TRACKER_BIN, startProcess, waitFor, type Proc } from './helpers/processes.js';
import { useProcesses } from './helpers/use-processes.js';

useProcesses();

// Decided before the tests are collected so the skip reason shows in the report.
const unavailable =
  (await netnsUnavailableReason()) ??
  ((await hasCommand('nft')) ? undefined : 'nft (nftables) is not installed') ??
  ((await hasCommand('miniupnpd')) ? undefined : 'miniupnpd is not installed');
if (unavailable !== undefined) process.stderr.write(`nat-port-mapping: skipped: ${unavailable}\n`);

const TRACKER_PORT = 18_000;
const RTC_PORT = 40_000;

const STATUS_PORT = 9_100;

describe.skipIf(unavailable !== undefined).each([
  { protocol: 'upnp', router: { upnp: true, natpmp: false } },
  { protocol: 'nat-pmp', router: { upnp: false, natpmp: true } },
] as const)('relay behind a home NAT router that offers only $protocol', ({ protocol, router }) => {
  let bed: TestBed;
  let upnp: Miniupnpd;
  let dir: string;

  beforeAll(async () => {
    bed = await createTestBed({ signal: AbortSignal.timeout(60_000) });
    upnp = await startMiniupnpd(bed, router);
    dir = await mkdtemp(join(tmpdir(), 'rc-nat-'));
  });
  afterAll(async () => {
    // Each step on its own: a failed one must not leave namespaces or daemons behind.
    await upnp?.stop().catch(() => undefined);
    await bed?.destroy();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('maps --rtc-port on the router while running and removes the mapping on shutdown', async () => {
    const tracker: Proc = startProcess(
      'tracker',
      TRACKER_BIN,
      ['--port', String(TRACKER_PORT), '--host', bed.addr.public, '--log-level', 'info'],
      bed.wrap(bed.ns.public),
    );
    const relayArgs = [
      'start',
      '--tracker',
      `ws://${bed.addr.public}:${TRACKER_PORT}/`,
      '--keypair',
      join(dir, 'relay.json'),
      '--allow-origin',
      `http://${bed.addr.public}:1/`,
      '--bind-address',
      bed.addr.home,
      '--rtc-port',
      String(RTC_PORT),
      '--map-port',
      '--status-port',
      String(STATUS_PORT),
      '--log-level',
      'info',
    ];
    const relay = startProcess('relay', RELAY_BIN, relayArgs, bed.wrap(bed.ns.home));

    const mapped = await waitFor(
      'the relay port forward on the router',
      async () => {
        if (relay.exited) throw new GiveUp(`relay exited:\n${relay.output()}`);
        if (tracker.exited) throw new GiveUp(`tracker exited:\n${tracker.output()}`);
        return (await upnp.mappings()).find((m) => m.protocol === 'udp' && m.externalPort === RTC_PORT);
      },
      60_000,
    );
    expect(mapped).toEqual({ protocol: 'udp', externalPort: RTC_PORT, internalHost: bed.addr.home, internalPort: RTC_PORT });
    // The relay says which protocol mapped it, with the router's external address.
    const { stdout } = await bed.exec(bed.ns.home, process.execPath, [
      '-e',
      `fetch('http://127.0.0.1:${STATUS_PORT}${RELAY_STATUS_PATHS.status}').then(async (r) => process.stdout.write(await r.text()))`,
    ]);
    const status = JSON.parse(stdout) as { nat: { portMapping: { status: string; method: string; externalHost: string; externalPort: number } } };
    expect(status.nat.portMapping).toMatchObject({ status: 'mapped', method: protocol, externalHost: bed.addr.routerWan, externalPort: RTC_PORT });

    await relay.stop('SIGTERM');
    expect(relay.child.exitCode).toBe(0);
    expect(await upnp.mappings(), `mapping left after the relay stopped; relay output:\n${relay.output()}`).toEqual([]);
    await tracker.stop();
  });
});
