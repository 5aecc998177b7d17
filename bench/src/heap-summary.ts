/**
 * Reads a V8 heap snapshot (tracker bench --heap-snapshot-dir) and prints where the retained
 * bytes are by node type and constructor: self size and count, largest first. One JSON object
 * on stdout, a table on stderr. Usage: tsx bench/src/heap-summary.ts <file.heapsnapshot> [--top 30]
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '30' } } });
const file = positionals[0];
if (file === undefined) throw new Error('usage: heap-summary.ts <file.heapsnapshot> [--top N]');
const snap = JSON.parse(await readFile(file, 'utf8')) as Snapshot;
const fields = snap.snapshot.meta.node_fields;
const types = snap.snapshot.meta.node_types[0];
const width = fields.length;
const typeAt = fields.indexOf('type');
const nameAt = fields.indexOf('name');
const sizeAt = fields.indexOf('self_size');
const groups = new Map<string, { bytes: number; count: number }>();
let total = 0;
for (let i = 0; i < snap.nodes.length; i += width) {
  const type = types[snap.nodes[i + typeAt] as number] ?? '?';
  const size = snap.nodes[i + sizeAt] as number;
  total += size;
  // Strings and code are grouped by type alone: their "names" are their contents.
  const name = type === 'object' || type === 'closure' || type === 'native' ? (snap.strings[snap.nodes[i + nameAt] as number] ?? '?') : '';
  const key = `${type}${name === '' ? '' : ` ${name.slice(0, 80)}`}`;
  const g = groups.get(key) ?? { bytes: 0, count: 0 };
  g.bytes += size;
  g.count++;
  groups.set(key, g);
}
const top = [...groups.entries()]
  .sort((a, b) => b[1].bytes - a[1].bytes)
  .slice(0, Number(values.top))
  .map(([name, g]) => ({ name, bytes: g.bytes, count: g.count, share: Math.round((g.bytes / total) * 1000) / 1000 }));
process.stdout.write(`${JSON.stringify({ file, totalBytes: total, top })}\n`);
process.stderr.write(`self size by type/constructor (total ${(total / 2 ** 20).toFixed(1)} MiB):\n`);
for (const t of top) process.stderr.write(`${(t.share * 100).toFixed(1).padStart(6)}%  ${(t.bytes / 2 ** 20).toFixed(2).padStart(8)} MiB  ${String(t.count).padStart(8)}  ${t.name}\n`);
