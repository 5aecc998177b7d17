import { Counter, Gauge, Registry } from 'prom-client';
import type { TrackerStatus } from './tracker-hub.js';

/**
 * Prometheus metrics of one tracker (`GET /metrics`). Each tracker has its own registry, so
 * several trackers in one process (tests, embedding) never mix their figures.
 */
export class TrackerMetrics {
  readonly registry = new Registry();
  readonly messages = new Counter({
    name: 'relaycast_tracker_messages_total',
    help: 'Client messages accepted, by type',
    labelNames: ['type'],
    registers: [this.registry],
  });
  readonly errors = new Counter({
    name: 'relaycast_tracker_errors_total',
    help: 'Error replies sent, by error code',
    labelNames: ['code'],
    registers: [this.registry],
  });
  readonly signalsForwarded = new Counter({
    name: 'relaycast_tracker_signals_forwarded_total',
    help: 'Signaling messages forwarded between a viewer and a relay',
    registers: [this.registry],
  });
  readonly shortlists = new Counter({ name: 'relaycast_tracker_shortlists_total', help: 'Shortlists sent to viewers', registers: [this.registry] });
  readonly reachability = new Counter({
    name: 'relaycast_tracker_reachability_tests_total',
    help: 'Relay reachability tests, by result',
    labelNames: ['result'],
    registers: [this.registry],
  });
  readonly reports = new Counter({
    name: 'relaycast_tracker_integrity_reports_total',
    help: 'Integrity reports from viewers, by outcome',
    labelNames: ['outcome'],
    registers: [this.registry],
  });

  constructor(status: () => TrackerStatus) {
    const gauge = (name: string, help: string, read: (s: TrackerStatus) => number): void => {
      new Gauge({
        name,
        help,
        registers: [this.registry],
        collect() {
          this.set(read(status()));
        },
      });
    };
    gauge('relaycast_tracker_connections', 'Open WebSocket connections', (s) => s.connections);
    gauge('relaycast_tracker_viewers', 'Connections that joined a swarm', (s) => s.viewers);
    gauge('relaycast_tracker_swarms', 'Swarms with at least one viewer', (s) => s.swarms);
    gauge('relaycast_tracker_relays', 'Registered relays', (s) => s.relays.length);
    gauge(
      'relaycast_tracker_relays_needing_turn',
      'Registered relays that failed the reachability test',
      (s) => s.relays.filter((r) => r.reachability === 'needs-turn').length,
    );
    gauge('relaycast_tracker_relays_unhealthy', 'Registered relays under full health (integrity reports)', (s) => s.relays.filter((r) => r.health < 1).length);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
