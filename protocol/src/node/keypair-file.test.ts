import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../errors.js';
import { expectRelaycastError } from '../testing/errors.js';
import { formatKeypairText, generateSecretKey, parseKeypairText, readKeypairFile, writeNewKeypairFile } from './keypair-file.js';

describe('keypair file codec', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'relaycast-keypair-file-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('round-trips a generated key through text', () => {
    const secret = generateSecretKey();
    expect(parseKeypairText(formatKeypairText(secret))).toEqual(secret);
  });

  it('rejects a file whose public half is not the seed’s, and non-arrays', () => {
    const secret = generateSecretKey();
    secret[63] = secret[63]! ^ 1;
    expectRelaycastError(() => parseKeypairText(JSON.stringify([...secret])), ErrorCode.KEYPAIR_INVALID);
    expectRelaycastError(() => parseKeypairText('[1,2,3]'), ErrorCode.KEYPAIR_INVALID);
    expectRelaycastError(() => parseKeypairText('not json'), ErrorCode.KEYPAIR_INVALID);
  });

  it('writes 0600, never overwrites, and reads back', async () => {
    const path = join(dir, 'sub', 'id.json');
    const first = generateSecretKey();
    expect(await writeNewKeypairFile(path, first)).toBe(true);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(await writeNewKeypairFile(path, generateSecretKey())).toBe(false);
    const read = await readKeypairFile(path);
    expect(read.secretKey).toEqual(first);
    expect(read.readableByOthers).toBe(false);
    expect(JSON.parse(await readFile(path, 'utf8'))).toHaveLength(64);
  });
});
