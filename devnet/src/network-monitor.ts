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

/** Bytes the origin served, by who asked (relays say who they are in `x-relaycast-relay-id`). */
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
  bytesServed: number;
  viewers: number;
  requests: number;
  cacheHits: number;
  errors: number;
}

/** The shape of `GET /api/network` (docs/DEVNET.md). */
export interface NetworkSnapshot {
  atMs: number;
  tracker: { up: boolean; viewers: number; swarms: number };
  relays: RelaySnapshot[];
  origin: OriginCounters;
}

interface TrackerStatusBody {
  relays: { relayId: string; health: number }[];
  viewers: number;
  swarms: number;
}

interface RelayStatusBody {
  relayId: string;
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

  constructor(private readonly options: { trackerHttpUrl: string; slots: RelaySlot[]; logger: Logger }) {}

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
      getJson<TrackerStatusBody>(`${this.options.trackerHttpUrl}/status`),
      ...this.options.slots.map((s) => (s.child?.isRunning() === true ? getJson<RelayStatusBody>(s.statusUrl) : Promise.resolve(undefined))),
    ]);
    const health = new Map((tracker?.relays ?? []).map((r) => [r.relayId, r.health]));
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
          bytesServed: s?.bytesServed ?? 0,
          viewers: s?.viewers ?? 0,
          requests: s?.requests ?? 0,
          cacheHits: s?.cacheHits ?? 0,
          errors: s?.errors ?? 0,
        };
      }),
      origin: { ...this.origin },
    };
  }
}
