import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode } from '@relaycast/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { loadOrCreateTrackerKey, parseRelayAllowlist } from './tracker-files.js';
import { makeRelayKey } from './testing/clients.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe('tracker key file', () => {
  it('creates a 0600 Solana keypair file once and loads the same key after', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rc-tkey-'));
    dirs.push(dir);
    const path = join(dir, 'sub', 'tracker.json');
    const first = await loadOrCreateTrackerKey(path);
    expect(first.created).toBe(true);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const again = await loadOrCreateTrackerKey(path);
    expect(again.created).toBe(false);
    expect(again.secretKey).toEqual(first.secretKey);
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual([...first.secretKey]);
  });

  it('refuses a key file others may read (RC_ERR_KEY_PERMISSIONS) and a malformed one (RC_ERR_KEYPAIR_INVALID)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rc-tkey-'));
    dirs.push(dir);
    const path = join(dir, 'tracker.json');
    await loadOrCreateTrackerKey(path);
    await chmod(path, 0o640);
    await expect(loadOrCreateTrackerKey(path)).rejects.toMatchObject({ code: ErrorCode.KEY_PERMISSIONS });
    const bad = join(dir, 'bad.json');
    await writeFile(bad, '[1,2,3]', { mode: 0o600 });
    await expect(loadOrCreateTrackerKey(bad)).rejects.toMatchObject({ code: ErrorCode.KEYPAIR_INVALID });
  });
});

describe('relay allowlist', () => {
  it('reads one base58 id per line with comments and blank lines; names the first bad line', () => {
    const a = makeRelayKey().relayId;
    const b = makeRelayKey().relayId;
    expect(parseRelayAllowlist(`# operators we vouch for\n${a}\n\n  ${b}   # second\r\n`)).toEqual([a, b]);
    expect(() => parseRelayAllowlist(`${a}\nnot-a-key\n`)).toThrow(/line 2/);
    try {
      parseRelayAllowlist('xyz');
    } catch (err) {
      expect((err as { code: string }).code).toBe(ErrorCode.CONFIG_INVALID);
    }
  });
});
