/**
 * The test origin (origin-server.ts) as its own process: `origin-process.mjs ROOT HOST PORT`.
 * Prints "LISTENING <url>" once it serves, and "REQUEST <json>" for every request so the test can
 * count what reached the origin.
 */
import { startOrigin } from './origin-server.js';

const [root, host, port] = process.argv.slice(2);
if (root === undefined || host === undefined || port === undefined) {
  process.stderr.write('usage: origin-process.mjs ROOT HOST PORT\n');
  process.exit(2);
}
const origin = await startOrigin(root, { host, port: Number(port) });
let reported = 0;
setInterval(() => {
  for (const r of origin.requests.slice(reported)) process.stdout.write(`REQUEST ${JSON.stringify(r)}\n`);
  reported = origin.requests.length;
}, 100).unref();
process.stdout.write(`LISTENING ${origin.url}\n`);
const stop = (): void => void origin.close().then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
