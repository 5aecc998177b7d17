/**
 * Soak run (a script, not part of CI): `npm run soak -- [--minutes 10] [--viewers 20]`.
 *
 * A live stream with published digests, one origin, the tracker, two paid relays, the embedded
 * chain and the settlement service, all as real processes; N Node viewers (the SDK with session
 * grants) join over the first 10 s and follow the live edge, checking every segment against the
 * origin's file; a relay is killed (SIGKILL) and restarted at random every 20-40 s. At the end the
 * relays redeem, and the run checks: zero corrupted segments, every receipt a relay stored paid
 * exactly once (on-chain balance = Σ newest receipt amounts the relay kept), payouts never above
 * what viewers signed for their verified bytes, and relay memory (RSS) flat. Prints one JSON line
 * and exits non-zero when a check fails.
 */
import { readFileSync } from 'node:fs';
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { amountForBytes, decodePublicKey, swarmIdFromUrl } from '@relaycast/protocol';
import { SETTLER_PATHS } from '@relaycast/protocol/settlement';
import { ReceiptStore } from '@relaycast/relay';
import { mediaPlaylist, waitForLivePlaylist } from './helpers/hls.js';
import { startLiveStream } from './helpers/media.js';
import { nodeClient } from './helpers/node-client.js';
import { startOrigin } from './helpers/origin-server.js';
import {
  relayRedeem,
  setUpRelayWallet,
  setUpTreasury,
  startChainProcess,
  startSettlerProcess,
  tokenBalance,
  trackerKeyFile,
} from './helpers/payments-world.js';
import { startRelayProcess, startTrackerProcess, stopAll, type RelayProc } from './helpers/processes.js';

const { values } = parseArgs({ options: { minutes: { type: 'string', default: '10' }, viewers: { type: 'string', default: '20' } } });
const minutes = Number(values.minutes);
const viewerCount = Number(values.viewers);
const PRICE_PER_GIB = 1_000n * 10n ** 6n;

const rss = (pid: number | undefined): number => {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
};

const dir = await mkdtemp(join(tmpdir(), 'rc-soak-'));
const live = await startLiveStream(join(dir, 'media', 'live'), { durationSec: minutes * 60 + 120 });
const origin = await startOrigin(dir);
const chain = await startChainProcess();
const setup = await setUpTreasury(chain.rpcUrl, dir, 1_000_000);
const trackerKey = await trackerKeyFile(setup, join(dir, 'tracker.json'));
const settler = await startSettlerProcess(setup, join(dir, 'settler.sqlite'), PRICE_PER_GIB, {
  trustedTrackers: [trackerKey],
  extra: ['--user-budget', '1000000000000'],
});
const tracker = await startTrackerProcess(['--heartbeat-interval-ms', '1000', '--key', join(dir, 'tracker.json'), '--trusted-payer', settler.payer]);
interface Slot {
  keypair: string;
  db: string;
  proc: RelayProc;
  rssSamples: number[];
  restarts: number;
}
const slots: Slot[] = [];
const startRelay = (keypair: string, db: string): Promise<RelayProc> =>
  startRelayProcess(tracker, {
    keypair,
    allowOrigin: [`${origin.url}media/`],
    extra: [
      '--accept-payer',
      `${settler.payer}=${settler.url}`,
      '--db',
      db,
      '--rpc-url',
      setup.rpcUrl,
      '--redeem-threshold',
      '1000',
      '--redeem-interval-ms',
      '10000',
    ],
  });
for (const name of ['a', 'b']) {
  const keypair = join(dir, `relay-${name}.json`);
  await setUpRelayWallet(setup, keypair);
  const db = join(dir, `relay-${name}.sqlite`);
  slots.push({ keypair, db, proc: await startRelay(keypair, db), rssSamples: [], restarts: 0 });
}
const before = await Promise.all(slots.map((s) => tokenBalance(setup, s.proc.relayId)));

const master = `${origin.url}media/live/${live.master}`;
const mediaUrl = `${origin.url}media/live/${live.media}`;
await waitForLivePlaylist(mediaUrl, 60_000);

const endAt = Date.now() + minutes * 60_000;
let corrupted = 0;
let segmentsChecked = 0;
let loadErrors = 0;
const clients = Array.from({ length: viewerCount }, () =>
  nodeClient({ trackerUrl: tracker.url, swarmId: swarmIdFromUrl(master), payments: { grantUrl: `${settler.url}${SETTLER_PATHS.grants}` } }),
);
const viewers = clients.map(async (client, i) => {
  await new Promise((r) => setTimeout(r, (i * 10_000) / viewerCount));
  await client.start();
  const seen = new Set<string>();
  while (Date.now() < endAt) {
    try {
      const playlist = mediaPlaylist(await (await fetch(mediaUrl)).text(), mediaUrl);
      const fresh = seen.size === 0 ? playlist.segments.slice(-2) : playlist.segments.filter((s) => !seen.has(s));
      for (const url of fresh) {
        seen.add(url);
        const file = await readFile(join(dir, new URL(url).pathname)).catch(() => undefined);
        if (file === undefined) continue; // slid out of the window before we got to it
        const r = await client.loadSegment({ url, playlistUrl: mediaUrl });
        segmentsChecked++;
        if (Buffer.compare(Buffer.from(r.data), file) !== 0) corrupted++;
      }
    } catch {
      loadErrors++;
    }
    await new Promise((r) => setTimeout(r, 1_000));
  }
});

const chaos = (async () => {
  while (Date.now() < endAt - 30_000) {
    await new Promise((r) => setTimeout(r, 20_000 + Math.random() * 20_000));
    const slot = slots[Math.floor(Math.random() * slots.length)] as Slot;
    await slot.proc.stop('SIGKILL');
    await new Promise((r) => setTimeout(r, 2_000));
    slot.proc = await startRelay(slot.keypair, slot.db);
    slot.restarts++;
  }
})();
const sampler = setInterval(() => {
  for (const s of slots) s.rssSamples.push(rss(s.proc.child.pid));
}, 10_000);

await Promise.all([...viewers, chaos]);
clearInterval(sampler);
// Let the last receipts land, then close the viewers and redeem what is left.
await new Promise((r) => setTimeout(r, 2_000));
const viewerStats = clients.map((c) => c.getStats());
await Promise.all(clients.map((c) => c.close()));
const expectedFromViewers = slots.map((s) =>
  viewerStats.reduce((a, st) => a + amountForBytes(st.perRelay[s.proc.relayId]?.bytesVerified ?? 0, PRICE_PER_GIB), 0n),
);
const stored: bigint[] = [];
for (const s of slots) {
  await s.proc.stop('SIGTERM');
  await relayRedeem(['--keypair', s.keypair, '--db', s.db, '--rpc-url', setup.rpcUrl, '--accept-payer', `${settler.payer}=${settler.url}`]);
  // What the relay kept: the newest receipt of every session, as stored durably before counting.
  const store = ReceiptStore.open({ path: s.db, relayId: s.proc.relayId }, decodePublicKey(s.proc.relayId));
  stored.push(store.totals(settler.payer).earned);
  store.close();
}
const paid = await Promise.all(slots.map(async (s, i) => (await tokenBalance(setup, s.proc.relayId)) - (before[i] as bigint)));

const rssGrowth = slots.map((s) => {
  const xs = s.rssSamples.filter((x) => x > 0).slice(-12);
  return xs.length < 2 ? 1 : (xs[xs.length - 1] as number) / (xs[0] as number);
});
const checks = {
  noCorruptedSegments: corrupted === 0,
  everyStoredReceiptPaidOnce: paid.every((p, i) => p === stored[i]),
  neverPaidMoreThanSigned: paid.every((p, i) => p <= (expectedFromViewers[i] as bigint)),
  memoryFlat: rssGrowth.every((g) => g < 1.3),
};
const result = {
  bench: 'soak',
  minutes,
  viewers: viewerCount,
  segmentsChecked,
  corrupted,
  loadErrors,
  relayRestarts: slots.map((s) => s.restarts),
  paid: paid.map(String),
  storedReceiptsWorth: stored.map(String),
  signedForVerifiedBytes: expectedFromViewers.map(String),
  relayRssMiB: slots.map((s) => s.rssSamples.map((x) => Math.round(x / 1048576))),
  checks,
};
process.stdout.write(`${JSON.stringify(result)}\n`);
process.stderr.write(
  `soak: ${minutes} min, ${viewerCount} viewers, ${segmentsChecked} segments checked, ${corrupted} corrupted, ${slots.reduce((a, s) => a + s.restarts, 0)} relay restarts, paid ${paid.join(' + ')} base units; ${
    Object.entries(checks)
      .filter(([, ok]) => !ok)
      .map(([k]) => `FAILED ${k}`)
      .join(', ') || 'all checks passed'
  }\n`,
);
await live.stop();
await stopAll();
await origin.close();
await rm(dir, { recursive: true, force: true });
process.exit(Object.values(checks).every(Boolean) ? 0 : 1);
