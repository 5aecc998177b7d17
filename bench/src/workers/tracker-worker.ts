/**
 * A tracker in its own process, so its CPU and memory are its own: Relaycast's (startTracker from
 * @relaycast/tracker, limits opened up for one load-generating IP) or, as the baseline, the
 * WebSocket server of bittorrent-tracker (PeerTube's server-only build of the same code).
 */
import type { AddressInfo } from 'node:net';
import { Server as BittorrentServer } from '@peertube/bittorrent-tracker-server';
import { startTracker } from '@relaycast/tracker';
import { serveWorker } from '../lib/worker.js';

export interface TrackerWorkerConfig {
  impl: 'relaycast' | 'bittorrent';
}

/**
 * Relaycast's limits are per connection and per IP, set for the internet; every simulated client
 * here shares one IP and runs closed loops, so the bench lifts them (bittorrent-tracker has none).
 */
const OPEN_LIMITS = {
  maxConnections: 100_000,
  maxConnectionsPerIp: 100_000,
  rateLimitPerSec: 1_000_000,
  rateLimitBurst: 1_000_000,
  maxDroppedMessages: 1_000_000,
  maxViewersPerSwarm: 100_000,
};

serveWorker<TrackerWorkerConfig, { url: string }>(async (config) => {
  if (config.impl === 'relaycast') {
    const tracker = await startTracker({ host: '127.0.0.1', port: 0, limits: OPEN_LIMITS });
    return { info: { url: tracker.url }, close: () => tracker.close() };
  }
  const server = new BittorrentServer({ udp: false, http: false, ws: true, stats: false });
  // Warnings are bad client input; the load generator sends none, and they must not crash the worker.
  server.on('warning', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.ws.address() as AddressInfo).port;
  return {
    info: { url: `ws://127.0.0.1:${port}/` },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
});
