/**
 * A viewer that stops reading: it opens a data channel to a relay, sends `count` REQUEST frames
 * for `url`, then stops its own process (SIGSTOP). A stopped process reads nothing at any layer
 * (its SCTP receive window fills and stays full), which is what a viewer that never reads looks
 * like to the relay; the parent test kills it with SIGKILL.
 *
 * Run: node --import tsx test/helpers/slow-viewer.ts <trackerUrl> <swarmId> <url> <count>
 * Prints one line `{"ready":true,"relayId":...}` just before it stops.
 */
import { FrameType, encodeFrame } from '@relaycast/protocol';
import { openRawChannel } from './raw-viewer.js';

/** Time for the requests to leave the SCTP stack before the process stops (a handful of packets). */
const FLUSH_MS = 50;

const [trackerUrl, swarmId, url, countText] = process.argv.slice(2);
if (trackerUrl === undefined || swarmId === undefined || url === undefined || countText === undefined) {
  process.stderr.write('usage: slow-viewer.ts <trackerUrl> <swarmId> <url> <count>\n');
  process.exit(2);
}
const ch = await openRawChannel(trackerUrl, swarmId);
for (let i = 1; i <= Number(countText); i++) ch.send(encodeFrame({ type: FrameType.REQUEST, requestId: i, url }));
await new Promise((r) => setTimeout(r, FLUSH_MS));
process.stdout.write(`${JSON.stringify({ ready: true, relayId: ch.relayId })}\n`);
process.kill(process.pid, 'SIGSTOP');
