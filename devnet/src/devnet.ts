import { access, mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { componentLogger } from '@relaycast/cli-kit';
import { resolveBin } from '@relaycast/cli-kit';
import { ErrorCode, RELAY_STATUS_PATHS, RelaycastError } from '@relaycast/protocol';
import { SETTLER_PATHS, decodeSettlerInfo, settlerEndpoint } from '@relaycast/protocol/settlement';
import type { Logger } from 'pino';
import { buildBrowser } from '@relaycast/player-sdk/browser-build';
import { startChild, type Child } from './child-process.js';
import { DEVNET_SETTINGS } from './devnet-settings.js';
import { loadOrCreateSigner } from '@relaycast/contracts-client/setup';
import {
  CHILD_READY_TIMEOUT_MS,
  DEFAULT_CHAIN_PORT,
  DEFAULT_SETTLER_PORT,
  SAMPLE_GRANT_BUDGET,
  SAMPLE_PRICE_PER_GIB,
  SAMPLE_REDEEM_INTERVAL_MS,
  SAMPLE_REDEEM_THRESHOLD,
  DEFAULT_RELAY_COUNT,
  DEFAULT_RELAY_STATUS_PORT_BASE,
  DEFAULT_STATE_DIR,
  DEFAULT_TRACKER_PORT,
  DEFAULT_WEB_PORT,
  SAMPLE_LIVE_DURATION_SEC,
  SAMPLE_SEGMENT_SEC,
  SAMPLE_VOD_DURATION_SEC,
} from './constants.js';
import { NetworkMonitor, type RelaySlot } from './network-monitor.js';
import { setUpPayments } from './payments-setup.js';
import { assertPortsFree } from './ports.js';
import { generateVod, startLiveStream, type LiveStream, type Rendition } from './sample-media.js';
import { startWebServer, type WebServer } from './web-server.js';

const TRACKER_BIN = resolveBin('@relaycast/tracker', 'relaycast-tracker');
const RELAY_BIN = resolveBin('@relaycast/relay', 'relaycast-relay');
const CHAIN_BIN = resolveBin('@relaycast/contracts-client', 'relaycast-chain');
const SETTLER_BIN = resolveBin('@relaycast/contracts-client', 'relaycast-settler');

/**
 * Children log JSON lines whatever their environment says: the devnet reads them (readiness),
 * keeps them in <state-dir>/logs and shows them through its own logger, pretty on a terminal.
 */
const CHILD_LOG_ARGS = ['--log-format', 'json'];

/** Three renditions, so the player has an ABR ladder to climb. */
const SAMPLE_RENDITIONS: Rendition[] = [
  { name: '480p', width: 854, height: 480, videoKbps: 1200 },
  { name: '360p', width: 640, height: 360, videoKbps: 700 },
  { name: '180p', width: 320, height: 180, videoKbps: 250 },
];

export interface DevnetOptions {
  /** Keys, media, databases and logs; reused by the next start. Default: DEFAULT_STATE_DIR ('.relaycast-devnet'). */
  stateDir?: string | undefined;
  /** Port of the page, its API and the origin. Default: DEFAULT_WEB_PORT (8080). */
  webPort?: number | undefined;
  /** Tracker port. Default: DEFAULT_TRACKER_PORT (8000). */
  trackerPort?: number | undefined;
  /** Embedded Solana chain (JSON-RPC + WebSocket on port + 1). Default: DEFAULT_CHAIN_PORT (8899). */
  chainPort?: number | undefined;
  /** Settlement service port. Default: DEFAULT_SETTLER_PORT (8090). */
  settlerPort?: number | undefined;
  /** First relay status port (relay i uses base + i). Default: DEFAULT_RELAY_STATUS_PORT_BASE (8101). */
  relayStatusPortBase?: number | undefined;
  /** Relays to run. Default: DEFAULT_RELAY_COUNT (3). */
  relays?: number | undefined;
  /** Length of the sample VOD generated on the first start. Default: SAMPLE_VOD_DURATION_SEC (60). */
  vodSeconds?: number | undefined;
  /** Aborts the start-up. Default: none. */
  signal?: AbortSignal | undefined;
  /** Logger of the devnet and, each under its own name, of the processes it starts (which also log to files under the state directory). Required. */
  logger: Logger;
}

export interface Devnet {
  /** The page: `http://127.0.0.1:<webPort>/`. */
  readonly url: string;
  readonly stateDir: string;
  /** Stops every child (SIGTERM, then SIGKILL after a grace period) and the web server. */
  close(): Promise<void>;
}

/**
 * Brings up a whole Relaycast network on this machine: sample media (generated once with ffmpeg)
 * and its origin, the tracker, relays with their own keypairs, and the page with its dashboard.
 * Every component runs as its own process through its bin, as operators run them.
 */
export async function startDevnet(options: DevnetOptions): Promise<Devnet> {
  // The bin's own table: bounds (relays 1..MAX_RELAY_COUNT, ports) hold for every caller.
  DEVNET_SETTINGS.check(options);
  const log = componentLogger(options.logger, 'devnet');
  const stateDir = resolve(options.stateDir ?? DEFAULT_STATE_DIR);
  const webPort = options.webPort ?? DEFAULT_WEB_PORT;
  const trackerPort = options.trackerPort ?? DEFAULT_TRACKER_PORT;
  const statusBase = options.relayStatusPortBase ?? DEFAULT_RELAY_STATUS_PORT_BASE;
  const relayCount = options.relays ?? DEFAULT_RELAY_COUNT;
  const chainPort = options.chainPort ?? DEFAULT_CHAIN_PORT;
  const settlerPort = options.settlerPort ?? DEFAULT_SETTLER_PORT;
  await assertPortsFree([
    { name: 'page and origin', port: webPort, flag: '--port' },
    { name: 'tracker', port: trackerPort, flag: '--tracker-port' },
    { name: 'chain', port: chainPort, flag: '--chain-port' },
    { name: 'chain websocket', port: chainPort + 1, flag: '--chain-port' },
    { name: 'settlement service', port: settlerPort, flag: '--settler-port' },
    ...Array.from({ length: relayCount }, (_, i) => ({ name: `relay-${i + 1} status`, port: statusBase + i, flag: '--relay-status-port' })),
  ]);
  const dirs = { media: join(stateDir, 'media'), keys: join(stateDir, 'keys'), logs: join(stateDir, 'logs'), sdk: join(stateDir, 'sdk') };
  for (const d of Object.values(dirs)) await mkdir(d, { recursive: true });

  const children: Child[] = [];
  let live: LiveStream | undefined;
  let web: WebServer | undefined;
  const slots: RelaySlot[] = [];
  const stopAll = async (): Promise<void> => {
    await Promise.all(slots.flatMap((s) => (s.child === undefined ? [] : [s.child.stop()])));
    await Promise.all(children.map((c) => c.stop()));
    await live?.stop();
    await web?.close();
  };

  try {
    const vodDir = join(dirs.media, 'vod');
    if (!(await exists(join(vodDir, 'master.m3u8')))) {
      log.info({ dir: vodDir }, 'generating the sample VOD with ffmpeg (first start only)');
      await generateVod(vodDir, {
        format: 'ts',
        durationSec: options.vodSeconds ?? SAMPLE_VOD_DURATION_SEC,
        segmentSec: SAMPLE_SEGMENT_SEC,
        renditions: SAMPLE_RENDITIONS,
      });
    }
    live = await startLiveStream(join(dirs.media, 'live'), { durationSec: SAMPLE_LIVE_DURATION_SEC, segmentSec: SAMPLE_SEGMENT_SEC });
    await buildBrowser(dirs.sdk, { copyHls: true });

    const monitor = new NetworkMonitor({ trackerHttpUrl: `http://127.0.0.1:${trackerPort}`, slots, logger: log });
    web = await startWebServer({ port: webPort, mediaDir: dirs.media, sdkDir: dirs.sdk, monitor, logger: log });
    const mediaOrigin = `${web.url}media/`;

    // Payments: the embedded chain, the token set-up, the platform's settlement service.
    const chain = await startChild({
      name: 'chain',
      script: CHAIN_BIN,
      args: ['--port', String(chainPort), '--host', '127.0.0.1', '--state-file', join(stateDir, 'chain-state.json'), ...CHILD_LOG_ARGS],
      logFile: join(dirs.logs, 'chain.log'),
      logger: options.logger,
      ready: (l) => l['msg'] === 'chain listening',
      readyTimeoutMs: CHILD_READY_TIMEOUT_MS,
      signal: options.signal,
    });
    children.push(chain);
    const rpcUrl = String(chain.readyLine?.['rpcUrl']);
    const relayKeys = [];
    for (let i = 0; i < relayCount; i++) relayKeys.push((await loadOrCreateSigner(join(dirs.keys, `relay-${i + 1}.json`), options.signal)).signer.publicKey);
    const pay = await setUpPayments({
      rpcUrl,
      keysDir: dirs.keys,
      stateFile: join(stateDir, 'payments.json'),
      relayOwners: relayKeys,
      logger: log,
      signal: options.signal,
    });

    // The tracker after the treasury exists: it binds viewer sessions only to grants of the payers
    // it trusts, and signs assignments with its own key (kept in the state directory, so relays
    // and the settler see the same tracker key on every start).
    const trackerKeyPath = join(dirs.keys, 'tracker.json');
    const trackerKey = (await loadOrCreateSigner(trackerKeyPath, options.signal)).signer.publicKey.toBase58();
    const tracker = await startChild({
      name: 'tracker',
      script: TRACKER_BIN,
      args: [
        '--port',
        String(trackerPort),
        '--host',
        '127.0.0.1',
        ...trackerTrustArgs({ keyPath: trackerKeyPath, payer: pay.treasury.toBase58() }),
        ...CHILD_LOG_ARGS,
      ],
      logFile: join(dirs.logs, 'tracker.log'),
      logger: options.logger,
      ready: (l) => typeof l['msg'] === 'string' && l['msg'].startsWith('tracker listening'),
      readyTimeoutMs: CHILD_READY_TIMEOUT_MS,
      signal: options.signal,
    });
    children.push(tracker);
    const trackerUrl = `ws://127.0.0.1:${trackerPort}/`;

    const settlerTrust = settlerTrustArgs({ trackerKey });
    const settler = await startChild({
      name: 'settler',
      script: SETTLER_BIN,
      args: [
        '--treasury-keypair',
        pay.treasuryKeypairPath,
        '--mint',
        pay.mint.mint.toBase58(),
        '--rpc-url',
        rpcUrl,
        '--port',
        String(settlerPort),
        '--host',
        '127.0.0.1',
        '--db',
        join(stateDir, 'settler.sqlite'),
        '--price-per-gib',
        SAMPLE_PRICE_PER_GIB.toString(),
        '--default-budget',
        SAMPLE_GRANT_BUDGET.toString(),
        '--user-budget',
        SAMPLE_GRANT_BUDGET.toString(),
        '--allow-origin',
        web.url.replace(/\/$/, ''),
        ...settlerTrust,
        ...CHILD_LOG_ARGS,
      ],
      logFile: join(dirs.logs, 'settler.log'),
      logger: options.logger,
      ready: (l) => l['msg'] === 'settler listening',
      readyTimeoutMs: CHILD_READY_TIMEOUT_MS,
      signal: options.signal,
    });
    children.push(settler);
    const settlerUrl = String(settler.readyLine?.['url']).replace(/\/?$/, '/');
    const grantAuth = await settlerGrantAuth(settlerUrl, options.signal);
    if (grantAuth === 'open') log.warn('grants are open (development mode): anyone who can reach the settlement service gets a grant');
    monitor.attachChain({ rpcUrl, mint: pay.mint.mint, treasuryTokenAccount: pay.treasuryTokenAccount, decimals: pay.mint.decimals, grantAuth });

    for (let i = 0; i < relayCount; i++) {
      const name = `relay-${i + 1}`;
      const statusPort = statusBase + i;
      const args = [
        'start',
        '--tracker',
        trackerUrl,
        '--allow-origin',
        mediaOrigin,
        '--keypair',
        join(dirs.keys, `${name}.json`),
        '--bind-address',
        '127.0.0.1',
        '--status-port',
        String(statusPort),
        '--region',
        'local',
        '--accept-payer',
        `${pay.treasury.toBase58()}=${settlerUrl}`,
        '--rpc-url',
        rpcUrl,
        '--db',
        join(stateDir, `${name}-receipts.sqlite`),
        '--redeem-threshold',
        SAMPLE_REDEEM_THRESHOLD.toString(),
        '--redeem-interval-ms',
        String(SAMPLE_REDEEM_INTERVAL_MS),
        ...CHILD_LOG_ARGS,
      ];
      const slot: RelaySlot = {
        name,
        statusUrl: `http://127.0.0.1:${statusPort}${RELAY_STATUS_PATHS.status}`,
        child: undefined,
        relayId: relayKeys[i]?.toBase58(),
        start: async () => {
          const child = await startChild({
            name,
            script: RELAY_BIN,
            args,
            logFile: join(dirs.logs, `${name}.log`),
            logger: options.logger,
            ready: (l) => l['msg'] === 'relay registered and serving',
            readyTimeoutMs: CHILD_READY_TIMEOUT_MS,
          });
          slot.child = child;
          slot.relayId = typeof child.readyLine?.['relayId'] === 'string' ? child.readyLine['relayId'] : slot.relayId;
        },
      };
      slots.push(slot);
    }
    await Promise.all(slots.map((s) => s.start()));
    web.setPageConfig({
      trackerUrl,
      grantUrl: settlerEndpoint(settlerUrl, SETTLER_PATHS.grants).href,
      grantAuth,
      streams: { vod: `${mediaOrigin}vod/master.m3u8`, live: `${mediaOrigin}live/master.m3u8` },
    });
    log.info({ url: web.url, relays: slots.map((s) => s.relayId) }, 'relaycast network up');
  } catch (err) {
    await stopAll();
    throw err;
  }
  const w = web;
  return {
    url: w.url,
    stateDir,
    close: stopAll,
  };
}

/**
 * Trust flags of the tracker bin: its signing key in the state directory and the one payer whose
 * grants bind viewer sessions (the local treasury).
 */
function trackerTrustArgs(t: { keyPath: string; payer: string }): string[] {
  return ['--key', t.keyPath, '--trusted-payer', t.payer];
}

/**
 * Trust flags of the settler bin: open grants (named on purpose: the local network has no user
 * accounts, so anyone who reaches the settler gets a grant; the page says so) and the tracker whose
 * assignments prove a relay was sent a session.
 */
function settlerTrustArgs(t: { trackerKey: string }): string[] {
  return ['--grant-auth', 'open', '--trusted-tracker', t.trackerKey];
}

/** The settler's grant policy as its `/v1/info` states it (undefined if it does not say). */
async function settlerGrantAuth(settlerUrl: string, signal: AbortSignal | undefined): Promise<string | undefined> {
  const res = await fetch(settlerEndpoint(settlerUrl, SETTLER_PATHS.info), {
    signal: signal === undefined ? AbortSignal.timeout(5_000) : AbortSignal.any([signal, AbortSignal.timeout(5_000)]),
  });
  if (!res.ok) throw new RelaycastError(ErrorCode.INTERNAL, `settler ${SETTLER_PATHS.info} answered ${res.status}`);
  return decodeSettlerInfo(await res.json()).grantAuth;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
