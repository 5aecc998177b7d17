/**
 * Reads V8 CPU profiles (written by a bench's --cpu-prof-dir) and prints where the time went:
 * self time per function and per file, as one JSON object on stdout and a table on stderr.
 * Usage: tsx bench/src/profile-summary.ts <file.cpuprofile> [--top 25]
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { ErrorCode, RelaycastError } from '@relaycast/protocol';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '25' } } });
const file = positionals[0];
if (file === undefined) throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'usage: profile-summary.ts <file.cpuprofile> [--top N]');
const profile = JSON.parse(await readFile(file, 'utf8')) as Profile;
const top = Number(values.top);

const selfUs = new Map<number, number>();
for (let i = 0; i < profile.samples.length; i++) {
  const id = profile.samples[i] as number;
  selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
}
const totalUs = profile.endTime - profile.startTime;
const byFunction = new Map<string, number>();
const byFile = new Map<string, number>();
for (const node of profile.nodes) {
  const us = selfUs.get(node.id) ?? 0;
  if (us === 0) continue;
  const { functionName, url, lineNumber } = node.callFrame;
  const shortUrl = url.replace(/^file:\/\/.*?\/(node_modules|relay|tracker|protocol|player-sdk|bench)\//, '$1/');
  const fn = `${functionName || '(anonymous)'} ${shortUrl === '' ? '' : `${shortUrl}:${lineNumber + 1}`}`.trim();
  byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
  const where = shortUrl === '' ? `(${functionName})` : shortUrl.replace(/^node_modules\/((@[^/]+\/)?[^/]+)\/.*/, 'node_modules/$1');
  byFile.set(where, (byFile.get(where) ?? 0) + us);
}
const rank = (m: Map<string, number>): { name: string; ms: number; share: number }[] =>
  [...m.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, us]) => ({ name, ms: Math.round(us / 100) / 10, share: Math.round((us / totalUs) * 1000) / 1000 }));
const result = { file, totalMs: Math.round(totalUs / 1000), functions: rank(byFunction), files: rank(byFile) };
process.stdout.write(`${JSON.stringify(result)}\n`);
for (const section of ['files', 'functions'] as const) {
  process.stderr.write(`\n${section} by self time (of ${result.totalMs} ms):\n`);
  for (const r of result[section]) process.stderr.write(`${(r.share * 100).toFixed(1).padStart(6)}%  ${String(r.ms).padStart(9)} ms  ${r.name}\n`);
}
