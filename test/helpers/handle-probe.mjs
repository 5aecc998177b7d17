// Loaded into a relay process with NODE_OPTIONS=--import (see test/helpers/relay-probe.ts), so a
// test can count what the process holds without changing the relay. Prints {"handleProbePort": N}
// once; GET / answers {"resources": {"Timeout": 3, ...}, "liveTimers": 7}: `resources` are what keeps
// the event loop alive (ref'ed only), `liveTimers` every timer not yet fired or cleared, unref'ed
// ones included (tracked with async_hooks).
import { createHook } from 'node:async_hooks';
import { createServer } from 'node:http';

const timers = new Set();
createHook({
  init(id, type) {
    if (type === 'Timeout') timers.add(id);
  },
  destroy(id) {
    timers.delete(id);
  },
}).enable();

const server = createServer((_req, res) => {
  const resources = {};
  for (const type of process.getActiveResourcesInfo()) resources[type] = (resources[type] ?? 0) + 1;
  const body = JSON.stringify({ resources, liveTimers: timers.size });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'close' }).end(body);
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ handleProbePort: server.address().port })}\n`);
});
// The probe must never be what keeps the relay alive.
server.unref();
