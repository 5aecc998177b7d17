import { randomBytes } from 'node:crypto';
import type { Reachability, NatReport, SignalPayload } from '@relaycast/protocol';
import type { Logger } from 'pino';
import type { ProbeSession, StartProbe } from './reachability-probe.js';

/** Reachability testing; see TrackerOptions.reachability. */
export interface ReachabilityOptions {
  /** Test every registering relay with a WebRTC probe from the tracker. Default: true. */
  enabled: boolean;
  /** Probe deadline. Default: DEFAULT_REACHABILITY_TIMEOUT_MS (8 s). */
  timeoutMs: number;
  /** Probes at once. Default: DEFAULT_REACHABILITY_MAX_CONCURRENT (4). */
  maxConcurrent: number;
  /** Probes waiting for a slot; more are dropped and retried at a later heartbeat. Default: DEFAULT_REACHABILITY_MAX_QUEUED (256). */
  maxQueued: number;
  /** Age after which a relay is tested again. Default: DEFAULT_REACHABILITY_RETEST_MS (10 min). */
  retestMs: number;
  /** Least time between two tests of one relay when its port mapping changes. Default: DEFAULT_REACHABILITY_MIN_RETEST_MS (30 s). */
  minRetestMs: number;
}

/** What the tester needs from the hub for one relay. */
export interface ProbeTarget {
  relayId: string;
  /** The relay's tracker connection (its peer id); probe signals go there. */
  connectionId: string;
  nat: NatReport | undefined;
}

export interface ReachabilityVerdict {
  reachability: Reachability;
  address?: string | undefined;
}

/** Peer id the probe signals from: the relay answers to it like to any viewer. */
function probePeerId(): string {
  return `probe${randomBytes(12).toString('base64url')}`;
}

/**
 * Schedules reachability probes with bounded concurrency and a bounded queue, routes the relays'
 * answers to them and turns outcomes into verdicts: reachable through a port mapping the relay
 * reported ⇒ `mapped`, reachable otherwise ⇒ `public`, not reachable ⇒ `needs-turn`.
 */
export class ReachabilityTester {
  private readonly queue = new Map<string, ProbeTarget>();
  /** Probes in flight by probe peer id. */
  private readonly active = new Map<string, { target: ProbeTarget; session: ProbeSession }>();
  private readonly abort = new AbortController();

  constructor(
    private readonly options: ReachabilityOptions,
    private readonly startProbe: StartProbe,
    private readonly sendToRelay: (target: ProbeTarget, fromPeerId: string, connectionId: string, signal: SignalPayload) => void,
    private readonly onVerdict: (target: ProbeTarget, verdict: ReachabilityVerdict) => void,
    private readonly log: Logger,
  ) {}

  /** Whether a peer id is one of the probes (signals to it go to deliver()). */
  isProbe(peerId: string): boolean {
    return this.active.has(peerId);
  }

  /** Queues a test of this relay; a newer request for the same relay replaces a queued one in its place. */
  schedule(target: ProbeTarget): void {
    if (!this.options.enabled || this.abort.signal.aborted) return;
    for (const a of this.active.values()) if (a.target.relayId === target.relayId && a.target.connectionId === target.connectionId) return;
    if (!this.queue.has(target.relayId) && this.queue.size >= this.options.maxQueued) {
      this.log.warn({ relayId: target.relayId, queued: this.queue.size }, 'reachability queue full; relay stays untested for now');
      return;
    }
    this.queue.set(target.relayId, target);
    this.pump();
  }

  deliver(probePeerId: string, connectionId: string, signal: SignalPayload): void {
    const a = this.active.get(probePeerId);
    if (a !== undefined && connectionId === probePeerId) a.session.deliver(signal);
  }

  close(): void {
    this.abort.abort();
    this.queue.clear();
  }

  private pump(): void {
    while (this.active.size < this.options.maxConcurrent && this.queue.size > 0) {
      const [relayId, target] = this.queue.entries().next().value as [string, ProbeTarget];
      this.queue.delete(relayId);
      const id = probePeerId();
      let session: ProbeSession;
      try {
        session = this.startProbe({
          id,
          timeoutMs: this.options.timeoutMs,
          signal: this.abort.signal,
          send: (s) => this.sendToRelay(target, id, id, s),
        });
      } catch (err) {
        this.log.error({ err, relayId }, 'could not start a reachability probe');
        continue;
      }
      this.active.set(id, { target, session });
      void session.result.then((r) => {
        this.active.delete(id);
        if (!this.abort.signal.aborted) {
          const mapped = target.nat !== undefined && (target.nat.portMapping === 'upnp' || target.nat.portMapping === 'nat-pmp');
          const verdict: ReachabilityVerdict = r.reachable
            ? { reachability: mapped ? 'mapped' : 'public', address: r.address }
            : { reachability: 'needs-turn' };
          this.log.info({ relayId: target.relayId, ...verdict }, 'reachability tested');
          this.onVerdict(target, verdict);
        }
        this.pump();
      });
    }
  }
}
