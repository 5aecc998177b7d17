import { cp, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_ENTRIES, REPORT_FOLDER, runApiReports, summarize, type ApiEntry } from '../api-reports/api-report.ts';
import { REPO_ROOT, ensureBuilt } from './helpers/tarballs.js';

/**
 * The checked-in API reports (api-reports/*.api.md) are what `npm run build` holds the built
 * declarations against in CI. Here: they match the current build, and the check does catch an
 * added export, a changed signature and an undocumented export (on a temp copy of protocol's dist).
 */
let tmp: string;

beforeAll(async () => {
  await ensureBuilt();
  tmp = await mkdtemp(join(tmpdir(), 'relaycast-api-reports-'));
}, 120_000);

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('API reports', () => {
  it('match the built declarations of every recorded entry point', () => {
    const results = runApiReports({ mode: 'check' });
    expect(results.map((r) => r.reportFile)).toEqual(API_ENTRIES.map((e) => `api-reports/${e.report}.api.md`));
    for (const r of results) {
      expect(r.problems, r.name).toEqual([]);
      expect(r.changed, `${r.reportFile}: ${r.diff ?? ''}`).toBe(false);
    }
    expect(summarize(results, 'check').failed).toBe(false);
  });

  it('fail the check on an unrecorded change and name the report; update mode rewrites it', async () => {
    // A copy of @relaycast/protocol's package.json and dist/ whose ./settlement API differs from the
    // checked-in report three ways: a documented export added, an undocumented one, a changed signature.
    const pkg = join(tmp, 'protocol');
    await cp(join(REPO_ROOT, 'protocol', 'dist'), join(pkg, 'dist'), { recursive: true });
    await cp(join(REPO_ROOT, 'protocol', 'package.json'), join(pkg, 'package.json'));
    const index = join(pkg, 'dist', 'settlement', 'index.d.ts');
    await writeFile(
      index,
      `${await readFile(index, 'utf8')}/** A probe the report does not know. */\nexport declare const API_REPORT_PROBE: number;\nexport declare function apiReportUndocumented(): void;\n`,
    );
    const redeem = join(pkg, 'dist', 'settlement', 'redeem.d.ts');
    const before = await readFile(redeem, 'utf8');
    const changed = before.replace('decodeRedeemBody(raw: Uint8Array): RedeemBody;', 'decodeRedeemBody(raw: Uint8Array, strict?: boolean): RedeemBody;');
    expect(changed).not.toBe(before);
    await writeFile(redeem, changed);
    const entry: ApiEntry = { report: 'protocol-settlement', packageDir: pkg, subpath: './settlement' };

    const [checked] = runApiReports({ mode: 'check', entries: [entry] });
    expect(checked?.changed).toBe(true);
    expect(checked?.updated).toBe(false);
    expect(checked?.reportFile).toBe('api-reports/protocol-settlement.api.md');
    expect(checked?.diff).toContain('+export const API_REPORT_PROBE: number;');
    expect(checked?.diff).toContain('+export function decodeRedeemBody(raw: Uint8Array, strict?: boolean): RedeemBody;');
    expect(checked?.problems).toHaveLength(1);
    expect(checked?.problems[0]).toMatch(/ae-undocumented.*apiReportUndocumented/);
    const outcome = summarize(checked === undefined ? [] : [checked], 'check');
    expect(outcome.failed).toBe(true);
    expect(outcome.err.join('\n')).toContain('api-reports/protocol-settlement.api.md does not match the public API of @relaycast/protocol ./settlement');
    expect(outcome.err.join('\n')).toContain('run `npm run api-report` locally');
    // The check never writes the checked-in report.
    expect(await readFile(join(REPORT_FOLDER, 'protocol-settlement.api.md'), 'utf8')).not.toContain('API_REPORT_PROBE');

    // Locally (update mode) the report is rewritten: here a copy in a temp report folder.
    const reports = join(tmp, 'reports');
    await cp(join(REPORT_FOLDER, 'protocol-settlement.api.md'), join(reports, 'protocol-settlement.api.md'));
    const [updated] = runApiReports({ mode: 'update', entries: [entry], reportFolder: reports });
    expect(updated?.updated).toBe(true);
    const rewritten = await readFile(join(reports, 'protocol-settlement.api.md'), 'utf8');
    expect(rewritten).toContain('export const API_REPORT_PROBE: number;');
    expect(rewritten).toContain('strict?: boolean');
    const [again] = runApiReports({ mode: 'check', entries: [entry], reportFolder: reports });
    expect(again?.changed).toBe(false);
  });

  it('list every name the READMEs and docs import from player-sdk and protocol', async () => {
    // Which report records each importable subpath (the browser builds carry the same declarations).
    const reportOf: Record<string, string> = {
      '@relaycast/player-sdk': 'player-sdk',
      '@relaycast/player-sdk/browser': 'player-sdk',
      '@relaycast/player-sdk/hls': 'player-sdk-hls',
      '@relaycast/player-sdk/browser/hls': 'player-sdk-hls',
      '@relaycast/protocol': 'protocol',
      '@relaycast/protocol/node': 'protocol-node',
      '@relaycast/protocol/settlement': 'protocol-settlement',
    };
    const docs = ['README.md', ...(await readdir(join(REPO_ROOT, 'docs'))).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
    for (const dir of await readdir(REPO_ROOT, { withFileTypes: true })) {
      if (!dir.isDirectory() || dir.name.startsWith('.') || dir.name === 'node_modules') continue;
      if ((await readdir(join(REPO_ROOT, dir.name))).includes('README.md')) docs.push(`${dir.name}/README.md`);
    }
    const missing: string[] = [];
    let checked = 0;
    for (const doc of docs) {
      const text = await readFile(join(REPO_ROOT, doc), 'utf8');
      for (const m of text.matchAll(/import\s+(?:type\s+)?\{([^}]*)\}\s+from\s+'(@relaycast\/(?:player-sdk|protocol)[^']*)'/g)) {
        const report = reportOf[m[2] as string];
        if (report === undefined) continue; // the testing kits are not recorded
        const api = await readFile(join(REPORT_FOLDER, `${report}.api.md`), 'utf8');
        for (const name of (m[1] as string)
          .split(',')
          .map((n) => n.replace(/^\s*type\s+/, '').trim())
          .filter((n) => n !== '')) {
          checked++;
          const exported = new RegExp(
            `^export (?:declare )?(?:abstract )?(?:class|function|interface|type|const|enum|namespace) ${name}\\b|^export \\{ ${name} \\}`,
            'm',
          );
          if (!exported.test(api)) missing.push(`${doc}: ${name} from '${m[2] as string}'`);
        }
      }
    }
    expect(checked).toBeGreaterThan(0);
    expect(missing).toEqual([]);
  });
});
