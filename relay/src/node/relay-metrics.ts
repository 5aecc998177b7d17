import { Counter, Gauge, Registry } from 'prom-client';
import type { RelayStats } from './relay-node.js';

/**
 * Prometheus exposition of a relay's own counters (`GET /metrics` on the status port), read from
 * stats() at scrape time, so nothing is counted twice. One registry per relay: several relays in
 * one process (tests) never mix.
 */
export function createRelayMetrics(stats: () => RelayStats): Registry {
  const registry = new Registry();
  const counter = (name: string, help: string, read: (s: RelayStats) => number): void => {
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(read(stats()));
      },
    });
  };
  const gauge = (name: string, help: string, read: (s: RelayStats) => number): void => {
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read(stats()));
      },
    });
  };
  counter('relaycast_relay_bytes_served_total', 'DATA bytes sent to viewers', (s) => s.bytesServed);
  counter('relaycast_relay_requests_total', 'Segment requests accepted', (s) => s.requests);
  counter('relaycast_relay_cache_hits_total', 'Requests served from a complete cached copy', (s) => s.cacheHits);
  gauge('relaycast_relay_cache_hit_ratio', 'cache hits / requests since start', (s) => (s.requests === 0 ? 0 : s.cacheHits / s.requests));
  gauge('relaycast_relay_viewers', 'Viewer data channels open (active sessions)', (s) => s.viewers);
  gauge('relaycast_relay_peers', 'WebRTC peers open', (s) => s.peers);
  gauge('relaycast_relay_registered', '1 while registered with the tracker', (s) => (s.registered ? 1 : 0));
  gauge('relaycast_relay_receipt_sessions', 'Sessions with a stored receipt', (s) => s.payments?.receipts ?? 0);
  counter('relaycast_relay_receipts_accepted_total', 'Receipts verified and stored', (s) => s.payments?.receiptsAccepted ?? 0);
  gauge('relaycast_relay_unpaid_base_units', 'Earned but not yet paid, token base units (all payers)', (s) => Number(s.payments?.unpaid ?? 0));
  gauge('relaycast_relay_paid_base_units', 'Confirmed payouts, token base units (all payers)', (s) => Number(s.payments?.paid ?? 0));
  new Counter({
    name: 'relaycast_relay_errors_total',
    help: 'ERROR frames sent for requests, by error code',
    labelNames: ['code'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [code, n] of Object.entries(stats().errorsByCode)) this.inc({ code }, n);
    },
  });
  return registry;
}
