import { getAssociatedTokenAddressSync } from '@solana/spl-token';
import { Connection, PublicKey } from '@solana/web3.js';
import { TRACKER_HTTP_PATHS } from '@relaycast/protocol';
import type { Logger } from 'pino';
import type { Child } from './child-process.js';
import { NETWORK_SNAPSHOT_MIN_INTERVAL_MS } from './constants.js';

/** One relay of the local network: its process (restartable from the page) and where to ask it. */
export interface RelaySlot {
  name: string;
  statusUrl: string;
  child: Child | undefined;
  relayId: string | undefined;
  start(): Promise<void>;
}

/**
 * What the origin (`/media/`) served, by who asked (relays say who they are in
 * `x-relaycast-relay-id`): every response, a 404 too; bytes are body bytes written to the socket.
 */
export interface OriginCounters {
  bytesToViewers: number;
  bytesToRelays: number;
  requestsFromViewers: number;
  requestsFromRelays: number;
}

export interface RelaySnapshot {
  name: string;
  relayId: string | undefined;
  /** Process running and answering its status interface. */
  up: boolean;
  /** In the tracker's registry (so handed out to viewers when healthy). */
  registered: boolean;
  health: number | undefined;
  /** The tracker's reachability verdict (public, mapped, needs-turn); undefined while untested. */
  reachability: string | undefined;
  bytesServed: number;
  viewers: number;
  requests: number;
  cacheHits: number;
  errors: number;
  /** Receipts and payouts as the relay counts them (token base units as decimal strings). */
  payments: { receipts: number; earned: string; paid: string; unpaid: string; pending: string } | undefined;
  /** The relay's token balance on chain, in tokens (decimal string). */
  balance: string | undefined;
  /** Its most recent payout transactions (signatures, newest first). */
  redemptions: string[];
}

export interface SettlementSnapshot {
  /**
   * The settler's grant policy from its `/v1/info`: 'open' on the local network (development mode:
   * anyone who can reach it gets a grant), 'jwt' for a platform's logged-in users; undefined when
   * the settler does not say.
   */
  grantAuth: string | undefined;
  mint: string;
  treasuryTokenAccount: string;
  /** Treasury token balance, in tokens (decimal string). */
  treasuryBalance: string | undefined;
  /** Payout transactions of every relay, newest first. */
  redemptions: { relay: string; signature: string }[];
}

/** The shape of `GET /api/network` (docs/DEVNET.md). */
export interface NetworkSnapshot {
  atMs: number;
  tracker: { up: boolean; viewers: number; swarms: number };
  relays: RelaySnapshot[];
  origin: OriginCounters;
  settlement: SettlementSnapshot | undefined;
}

interface ChainView {
  grantAuth: string | undefined;
  connection: Connection;
  mint: PublicKey;
  treasuryTokenAccount: PublicKey;
  decimals: number;
}

interface TrackerStatusBody {
  relays: { relayId: string; health: number; reachability?: string }[];
  viewers: number;
  swarms: number;
}

interface RelayStatusBody {
  relayId: string;
  payments?: { receipts: number; earned: string; paid: string; unpaid: string; pending: string };
  registered: boolean;
  bytesServed: number;
  viewers: number;
  requests: number;
  cacheHits: number;
  errors: number;
}

async function getJson<T>(url: string): Promise<T | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1_000) });
    return res.ok ? ((await res.json()) as T) : undefined;
  } catch {
    return undefined;
  }
}

/** Gathers the figures the dashboard shows from each component's own interface. */
export class NetworkMonitor {
  readonly origin: OriginCounters = { bytesToViewers: 0, bytesToRelays: 0, requestsFromViewers: 0, requestsFromRelays: 0 };
  private last: { at: number; snapshot: Promise<NetworkSnapshot> } | undefined;
  private chain: ChainView | undefined;

  constructor(private readonly options: { trackerHttpUrl: string; slots: RelaySlot[]; logger: Logger }) {}

  /** From now on snapshots include token balances and payouts read from the chain. */
  attachChain(view: { rpcUrl: string; mint: PublicKey; treasuryTokenAccount: PublicKey; decimals: number; grantAuth: string | undefined }): void {
    this.chain = {
      grantAuth: view.grantAuth,
      connection: new Connection(view.rpcUrl, 'confirmed'),
      mint: view.mint,
      treasuryTokenAccount: view.treasuryTokenAccount,
      decimals: view.decimals,
    };
  }

  get slots(): RelaySlot[] {
    return this.options.slots;
  }

  /** Cached for NETWORK_SNAPSHOT_MIN_INTERVAL_MS, so many open pages cost the network nothing extra. */
  snapshot(): Promise<NetworkSnapshot> {
    const now = Date.now();
    if (this.last !== undefined && now - this.last.at < NETWORK_SNAPSHOT_MIN_INTERVAL_MS) return this.last.snapshot;
    const snapshot = this.take();
    this.last = { at: now, snapshot };
    return snapshot;
  }

  private async take(): Promise<NetworkSnapshot> {
    const [tracker, ...relays] = await Promise.all([
      getJson<TrackerStatusBody>(`${this.options.trackerHttpUrl}${TRACKER_HTTP_PATHS.status}`),
      ...this.options.slots.map((s) => (s.child?.isRunning() === true ? getJson<RelayStatusBody>(s.statusUrl) : Promise.resolve(undefined))),
    ]);
    const health = new Map((tracker?.relays ?? []).map((r) => [r.relayId, r.health]));
    const reachability = new Map((tracker?.relays ?? []).map((r) => [r.relayId, r.reachability]));
    const chain = this.chain;
    const onChain = await Promise.all(
      this.options.slots.map(async (slot, i) => {
        const relayId = (relays[i] as RelayStatusBody | undefined)?.relayId ?? slot.relayId;
        if (chain === undefined || relayId === undefined) return { balance: undefined, redemptions: [] as string[] };
        return this.relayOnChain(chain, new PublicKey(relayId));
      }),
    );
    const treasuryBalance = chain === undefined ? undefined : await this.tokenBalance(chain, chain.treasuryTokenAccount);
    return {
      atMs: Date.now(),
      tracker: { up: tracker !== undefined, viewers: tracker?.viewers ?? 0, swarms: tracker?.swarms ?? 0 },
      relays: this.options.slots.map((slot, i) => {
        const s = relays[i] as RelayStatusBody | undefined;
        const relayId = s?.relayId ?? slot.relayId;
        return {
          name: slot.name,
          relayId,
          up: s !== undefined,
          registered: relayId !== undefined && health.has(relayId),
          health: relayId === undefined ? undefined : health.get(relayId),
          reachability: relayId === undefined ? undefined : reachability.get(relayId),
          bytesServed: s?.bytesServed ?? 0,
          viewers: s?.viewers ?? 0,
          requests: s?.requests ?? 0,
          cacheHits: s?.cacheHits ?? 0,
          errors: s?.errors ?? 0,
          payments:
            s?.payments === undefined
              ? undefined
              : { receipts: s.payments.receipts, earned: s.payments.earned, paid: s.payments.paid, unpaid: s.payments.unpaid, pending: s.payments.pending },
          balance: onChain[i]?.balance,
          redemptions: onChain[i]?.redemptions ?? [],
        };
      }),
      origin: { ...this.origin },
      settlement:
        chain === undefined
          ? undefined
          : {
              grantAuth: chain.grantAuth,
              mint: chain.mint.toBase58(),
              treasuryTokenAccount: chain.treasuryTokenAccount.toBase58(),
              treasuryBalance,
              redemptions: this.options.slots.flatMap((slot, i) => (onChain[i]?.redemptions ?? []).map((signature) => ({ relay: slot.name, signature }))),
            },
    };
  }

  private async relayOnChain(chain: ChainView, owner: PublicKey): Promise<{ balance: string | undefined; redemptions: string[] }> {
    const account = getAssociatedTokenAddressSync(chain.mint, owner);
    const balance = await this.tokenBalance(chain, account);
    let redemptions: string[] = [];
    try {
      // After its creation (the oldest entry), every transaction on a relay's token account is a
      // payout; the creation is only in view while the whole history fits the page.
      const sigs = await chain.connection.getSignaturesForAddress(account, { limit: 11 });
      const ok = sigs.filter((x) => x.err === null).map((x) => x.signature);
      redemptions = sigs.length < 11 ? ok.slice(0, -1) : ok.slice(0, 10);
    } catch {
      // chain restarting
    }
    return { balance, redemptions };
  }

  private async tokenBalance(chain: ChainView, account: PublicKey): Promise<string | undefined> {
    try {
      return (await chain.connection.getTokenAccountBalance(account)).value.uiAmountString ?? undefined;
    } catch {
      return undefined;
    }
  }
}
