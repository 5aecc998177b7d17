/**
 * A viewer as its own process (for network namespaces): the real SDK (node-datachannel WebRTC, ws)
 * loads every segment of every rendition of a VOD and prints one JSON line with what it got:
 * each segment's SHA-256 and where its bytes came from, and the SDK's stats (path per relay).
 *
 *   viewer-process.mjs '{"trackerUrl":"ws://…","masterUrl":"http://…/master.m3u8","bindAddress":"10.0.0.2"}'
 */
import { createHash } from 'node:crypto';
import { swarmIdFromUrl } from '@relaycast/protocol';
import { mediaPlaylist, variantUrls } from './hls.js';
import { pino } from 'pino';
import { nodeClient } from './node-client.js';

interface Args {
  trackerUrl: string;
  masterUrl: string;
  bindAddress?: string;
  /** Relays to wait for before loading. Default 1. */
  relays?: number;
  waitForRelaysMs?: number;
}

const args = JSON.parse(process.argv[2] ?? '{}') as Args;
const client = nodeClient({
  trackerUrl: args.trackerUrl,
  swarmId: swarmIdFromUrl(args.masterUrl),
  rtcConfiguration: { iceServers: [], ...(args.bindAddress === undefined ? {} : { bindAddress: args.bindAddress }) },
  // ICE through TURN takes longer than on loopback.
  connectTimeoutMs: 20_000,
  // To stderr: the test shows it when it fails; stdout carries the result.
  logger: pino({ level: process.env['RC_VIEWER_LOG_LEVEL'] ?? 'info' }, pino.destination(2)),
});
const errors: string[] = [];
client.on('error', (err) => errors.push(`${err.code}: ${err.message}`));
// For the test's failure output: which relays came and went, and why.
client.on('relay-connected', (id) => process.stderr.write(`relay-connected ${id}\n`));
client.on('relay-disconnected', (id, reason) => process.stderr.write(`relay-disconnected ${id} ${reason.code}: ${reason.message}\n`));
await client.start();
const deadline = Date.now() + (args.waitForRelaysMs ?? 30_000);
while (client.relays.length < (args.relays ?? 1) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));

const segments: { url: string; sha256: string; bytes: number; bytesFromRelay: number }[] = [];
for (const variant of variantUrls(await (await fetch(args.masterUrl)).text(), args.masterUrl)) {
  const playlist = mediaPlaylist(await (await fetch(variant)).text(), variant);
  const urls = playlist.initSegment === undefined ? playlist.segments : [playlist.initSegment, ...playlist.segments];
  for (const url of urls) {
    const r = await client.loadSegment({ url, playlistUrl: variant });
    segments.push({ url, sha256: createHash('sha256').update(r.data).digest('hex'), bytes: r.data.byteLength, bytesFromRelay: r.bytesFromRelay });
  }
}
const stats = client.getStats();
await client.close();
process.stdout.write(`RESULT ${JSON.stringify({ segments, stats, errors })}\n`);
process.exit(0);
