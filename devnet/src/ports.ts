import { createServer } from 'node:net';
import { ErrorCode, RelaycastError } from '@relaycast/protocol';

/** Throws RC_ERR_CONFIG_INVALID naming the first port of `ports` that is already in use. */
export async function assertPortsFree(ports: { name: string; port: number; flag: string }[]): Promise<void> {
  for (const p of ports) {
    const free = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(p.port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (!free) {
      throw new RelaycastError(ErrorCode.CONFIG_INVALID, `port ${p.port} (${p.name}) is already in use: stop what uses it, or pick another with ${p.flag}`, {
        details: { port: p.port },
      });
    }
  }
}
