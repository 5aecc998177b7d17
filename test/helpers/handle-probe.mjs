// Loaded into a relay process with NODE_OPTIONS=--import (see test/helpers/relay-probe.ts), so a
// test can count what keeps its event loop busy (timers, sockets, handles) without changing the
// relay. Prints {"handleProbePort": N} once; GET / answers {"resources": {"Timeout": 3, ...}}.
import { createServer } from 'node:http';

const server = createServer((_req, res) => {
  const resources = {};
  for (const type of process.getActiveResourcesInfo()) resources[type] = (resources[type] ?? 0) + 1;
  const body = JSON.stringify({ resources });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'close' }).end(body);
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ handleProbePort: server.address().port })}\n`);
});
// The probe must never be what keeps the relay alive.
server.unref();
