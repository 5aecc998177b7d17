import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  identityOfKeypair,
  relayRedeem,
  setUpRelayWallet,
  setUpTreasury,
  startChainProcess,
  startSettlerProcess,
  trackerKeyFile,
  type PaymentSetup,
  type SettlerProc,
  type TestIdentity,
} from './payments-world.js';
import { relayStatus, startRelayWithStatus, startTrackerProcess, type StatusRelayProc, type TrackerProc } from './processes.js';

/**
 * A paid network as real processes over loopback: the embedded chain, a treasury holding 1,000
 * tokens, a tracker key, a settler that pays only sessions that key assigned, and a tracker (with
 * that key) that binds sessions of the settler's grants. Paid relays join it with startPaidRelay.
 */
export interface PaidNetwork {
  setup: PaymentSetup;
  settler: SettlerProc;
  tracker: TrackerProc;
  /** The tracker's keypair file (its --key). */
  trackerKeyPath: string;
  /** The tracker's public key (base58): what the settler trusts. */
  trackerKey: string;
}

export interface PaidNetworkOptions {
  /** The chain's slot length (see startChainProcess). */
  slotMs?: number;
  /** More settler flags (e.g. --default-budget). */
  settlerExtra?: string[];
}

/** Starts the chain, treasury, settler and tracker of a paid network; files go under `dir`. */
export async function startPaidNetwork(dir: string, pricePerGiB: bigint, o: PaidNetworkOptions = {}): Promise<PaidNetwork> {
  const chain = await startChainProcess(o.slotMs);
  const setup = await setUpTreasury(chain.rpcUrl, dir, 1_000);
  const trackerKeyPath = join(dir, 'tracker.json');
  const trackerKey = await trackerKeyFile(setup, trackerKeyPath);
  const settler = await startSettlerProcess(setup, join(dir, 'settler.sqlite'), pricePerGiB, { trustedTrackers: [trackerKey], extra: o.settlerExtra });
  const tracker = await startTrackerProcess(['--key', trackerKeyPath, '--trusted-payer', settler.payer]);
  return { setup, settler, tracker, trackerKeyPath, trackerKey };
}

/** `--accept-payer` of the network's settler, as a relay's start and redeem take it. */
export function acceptPayer(net: PaidNetwork, settlerUrl = net.settler.url): string[] {
  return ['--accept-payer', `${net.settler.payer}=${settlerUrl}`];
}

/** A relay process paid by the network's settler: its wallet (keypair), receipt database and status port. */
export interface PaidRelay {
  proc: StatusRelayProc;
  id: string;
  keypair: string;
  db: string;
  statusPort: number;
}

/**
 * A relay wallet in `dir`/`name`/ (relay.json, with its token account) and a relay process on it
 * that accepts the network's settler, keeps receipts in receipts.sqlite there and serves its status.
 */
export async function startPaidRelay(net: PaidNetwork, dir: string, name: string, o: { allowOrigin: string[]; extra?: string[] }): Promise<PaidRelay> {
  await mkdir(join(dir, name));
  const keypair = join(dir, name, 'relay.json');
  const id = await setUpRelayWallet(net.setup, keypair);
  const db = join(dir, name, 'receipts.sqlite');
  const proc = await startRelayWithStatus(net.tracker, { keypair, allowOrigin: o.allowOrigin, extra: [...acceptPayer(net), '--db', db, ...(o.extra ?? [])] });
  return { proc, id, keypair, db, statusPort: proc.statusPort };
}

/** `relaycast-relay redeem` of `relay`'s receipts from the network's settler (at `settlerUrl`, e.g. a proxy). */
export function redeemPaidRelay(net: PaidNetwork, relay: { keypair: string; db: string }, settlerUrl = net.settler.url): ReturnType<typeof relayRedeem> {
  return relayRedeem(['--keypair', relay.keypair, '--db', relay.db, '--rpc-url', net.setup.rpcUrl, ...acceptPayer(net, settlerUrl)]);
}

/** The `payments` part of a relay's /status. */
export async function relayPayments(statusPort: number): Promise<Record<string, unknown>> {
  return (await relayStatus<{ payments: Record<string, unknown> }>(statusPort)).payments;
}

/**
 * The settler alone for a test that plays tracker, viewers and relay itself: the chain, a treasury
 * holding 1,000 tokens, a settler trusting `tracker` (a key the test signs assignments with) that
 * reaches the chain at `settlerRpcUrl(chain's RPC URL)` (default: directly), and a relay wallet
 * (`dir`/`relayName`.json with its token account) whose key the test holds.
 */
export async function startSettlerForTestRelay(
  dir: string,
  pricePerGiB: bigint,
  tracker: TestIdentity,
  o: { relayName: string; dbPath?: string; settlerExtra?: string[]; settlerRpcUrl?: (rpcUrl: string) => Promise<string> },
): Promise<{ setup: PaymentSetup; settler: SettlerProc; relay: TestIdentity }> {
  const chain = await startChainProcess();
  const setup = await setUpTreasury(chain.rpcUrl, dir, 1_000);
  const rpcUrl = o.settlerRpcUrl === undefined ? setup.rpcUrl : await o.settlerRpcUrl(setup.rpcUrl);
  const settler = await startSettlerProcess({ ...setup, rpcUrl }, o.dbPath ?? join(dir, 'settler.sqlite'), pricePerGiB, {
    trustedTrackers: [tracker.id],
    extra: o.settlerExtra,
  });
  const keypair = join(dir, `${o.relayName}.json`);
  await setUpRelayWallet(setup, keypair);
  return { setup, settler, relay: await identityOfKeypair(keypair) };
}
