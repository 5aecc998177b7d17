import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from './errors.js';

const doc = readFileSync(new URL('../../docs/ERRORS.md', import.meta.url), 'utf8');

/** Codes that head a table row: "| `RC_ERR_X` | where | what |". */
function tableCodes(text: string): string[] {
  const codes: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^\|\s*`(RC_ERR_[A-Z0-9_]+)`\s*\|/.exec(line);
    if (m !== null) codes.push(m[1]!);
  }
  return codes;
}

describe('docs/ERRORS.md', () => {
  const documented = tableCodes(doc);
  const known = Object.values(ErrorCode) as string[];

  it('documents every ErrorCode in a table row', () => {
    const missing = known.filter((c) => !documented.includes(c));
    expect(missing, `codes missing from docs/ERRORS.md: ${missing.join(', ')}`).toEqual([]);
  });

  it('lists no code that does not exist, and none twice', () => {
    const unknown = documented.filter((c) => !known.includes(c));
    expect(unknown, `docs/ERRORS.md lists codes that ErrorCode does not have: ${unknown.join(', ')}`).toEqual([]);
    expect(documented.length).toBe(new Set(documented).size);
    // Mentions in prose must name real codes too (a trailing `*` marks a prefix, not a code).
    const mentioned = [...doc.matchAll(/RC_ERR_[A-Z0-9_]*[A-Z0-9](?![A-Z0-9_]*\*)/g)].map((m) => m[0]);
    expect(mentioned.filter((c) => !known.includes(c))).toEqual([]);
  });

  it('every row says where the code arises and what to do', () => {
    for (const line of doc.split('\n').filter((l) => /^\|\s*`RC_ERR_/.test(l))) {
      const cells = line
        .split('|')
        .slice(1, -1)
        .map((c) => c.trim());
      expect(cells, line).toHaveLength(3);
      expect(cells[1]!.length, line).toBeGreaterThan(10);
      expect(cells[2]!.length, line).toBeGreaterThan(5);
    }
  });
});
