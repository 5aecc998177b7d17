/**
 * Reads a V8 heap snapshot (tracker bench --heap-snapshot-dir) and prints where the retained
 * bytes are by node type and constructor: self size and count, largest first. One JSON object
 * on stdout, a table on stderr. `--owners-of GROUP` also groups the objects holding nodes of GROUP
 * (e.g. "array (object properties)": whose dictionary-mode properties they are).
 * Usage: tsx bench/src/heap-summary.ts <file.heapsnapshot> [--top 30] [--owners-of GROUP]
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { ErrorCode, RelaycastError } from '@relaycast/protocol';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]]; edge_fields: string[] } };
  nodes: number[];
  edges: number[];
  strings: string[];
}

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '30' }, 'owners-of': { type: 'string' } } });
const file = positionals[0];
if (file === undefined)
  throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'usage: heap-summary.ts <file.heapsnapshot> [--top N] [--owners-of "array (object properties)"]');
const snap = JSON.parse(await readFile(file, 'utf8')) as Snapshot;
const fields = snap.snapshot.meta.node_fields;
const types = snap.snapshot.meta.node_types[0];
const width = fields.length;
const typeAt = fields.indexOf('type');
const nameAt = fields.indexOf('name');
const sizeAt = fields.indexOf('self_size');
const groups = new Map<string, { bytes: number; count: number }>();
let total = 0;
const groupOf = (i: number): string => {
  const type = types[snap.nodes[i + typeAt] as number] ?? '?';
  // Strings and code are grouped by type alone: their "names" are their contents.
  const name =
    type === 'object' || type === 'closure' || type === 'native' || type === 'array' || type === 'hidden'
      ? (snap.strings[snap.nodes[i + nameAt] as number] ?? '?')
      : '';
  return `${type}${name === '' ? '' : ` ${name.slice(0, 80)}`}`;
};
for (let i = 0; i < snap.nodes.length; i += width) {
  const size = snap.nodes[i + sizeAt] as number;
  total += size;
  const key = groupOf(i);
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
for (const t of top)
  process.stderr.write(
    `${(t.share * 100).toFixed(1).padStart(6)}%  ${(t.bytes / 2 ** 20).toFixed(2).padStart(8)} MiB  ${String(t.count).padStart(8)}  ${t.name}\n`,
  );

const ownersOf = values['owners-of'];
if (ownersOf !== undefined) {
  const edgeWidth = snap.snapshot.meta.edge_fields.length;
  const toAt = snap.snapshot.meta.edge_fields.indexOf('to_node');
  const countAt = fields.indexOf('edge_count');
  const owners = new Map<string, { bytes: number; count: number }>();
  let e = 0;
  for (let i = 0; i < snap.nodes.length; i += width) {
    const edges = snap.nodes[i + countAt] as number;
    for (let k = 0; k < edges; k++, e += edgeWidth) {
      const to = snap.edges[e + toAt] as number;
      if (groupOf(to) !== ownersOf) continue;
      const key = groupOf(i);
      const g = owners.get(key) ?? { bytes: 0, count: 0 };
      g.bytes += snap.nodes[to + sizeAt] as number;
      g.count++;
      owners.set(key, g);
    }
  }
  process.stderr.write(`\nholders of ${ownersOf} (bytes of the held nodes):\n`);
  for (const [name, g] of [...owners.entries()].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, Number(values.top))) {
    process.stderr.write(`${(g.bytes / 2 ** 20).toFixed(2).padStart(8)} MiB  ${String(g.count).padStart(8)}  ${name}\n`);
  }
}
