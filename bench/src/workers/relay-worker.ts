/** A real relay (startRelay from @relaycast/relay) in its own process, so its CPU is measured alone. */
import { loadOrCreateKeypair, startRelay } from '@relaycast/relay';
import { pino } from 'pino';
import { serveWorker } from '../lib/worker.js';

export interface RelayWorkerConfig {
  trackerUrl: string;
  allowedOrigins: string[];
  keypairPath: string;
  /** One UDP port for every viewer; undefined = ephemeral ports. */
  rtcPort?: number | undefined;
  logLevel?: string | undefined;
}

export interface RelayWorkerInfo {
  relayId: string;
}

serveWorker<RelayWorkerConfig, RelayWorkerInfo>(async (config) => {
  const { keypair } = await loadOrCreateKeypair(config.keypairPath);
  const relay = await startRelay({
    trackerUrl: config.trackerUrl,
    allowedOrigins: config.allowedOrigins,
    keypair,
    bindAddress: '127.0.0.1',
    rtcPort: config.rtcPort,
    logger: pino({ level: config.logLevel ?? 'warn' }, pino.destination(2)),
  });
  return {
    info: { relayId: relay.relayId },
    handlers: { stats: () => relay.stats() },
    close: () => relay.close(),
  };
});
