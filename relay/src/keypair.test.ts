import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { ErrorCode, decodePublicKey, encodeBase58, utf8Encode } from '@relaycast/protocol';
import { verifyEd25519 } from '@relaycast/protocol/node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RelayKeypair, loadKeypair, loadOrCreateKeypair, parseKeypairFile } from './keypair.js';

// RFC 8032 test 1: seed 9d61...7f60 has public key d75a...511a.
const SEED = Buffer.from('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'hex');
const PUB = Buffer.from('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a', 'hex');
const RFC_SIG_EMPTY = 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b';

describe('keypair', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'relaycast-keypair-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('loads a Solana CLI keypair file and signs like RFC 8032', async () => {
    const path = join(dir, 'id.json');
    await writeFile(path, JSON.stringify([...SEED, ...PUB]), { mode: 0o600 });
    const kp = await loadKeypair(path);
    expect(kp.relayId).toBe(encodeBase58(PUB));
    expect(Buffer.from(kp.publicKey).equals(PUB)).toBe(true);
    expect(Buffer.from(kp.sign(new Uint8Array(0))).toString('hex')).toBe(RFC_SIG_EMPTY);
  });

  it('creates a missing file (0600, parent created), then reloads the same identity without overwriting', async () => {
    const path = join(dir, 'nested', 'deeper', 'relay.json');
    const first = await loadOrCreateKeypair(path);
    expect(first.created).toBe(true);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const text = await readFile(path, 'utf8');
    const bytes = JSON.parse(text) as number[];
    expect(bytes).toHaveLength(64);
    expect(Buffer.from(bytes.slice(32)).equals(Buffer.from(decodePublicKey(first.keypair.relayId)))).toBe(true);

    const second = await loadOrCreateKeypair(path);
    expect(second.created).toBe(false);
    expect(second.keypair.relayId).toBe(first.keypair.relayId);
    expect(await readFile(path, 'utf8')).toBe(text);
  });

  it('gives two racing creators the same identity', async () => {
    const path = join(dir, 'race.json');
    const [a, b] = await Promise.all([loadOrCreateKeypair(path), loadOrCreateKeypair(path)]);
    expect(a.keypair.relayId).toBe(b.keypair.relayId);
    expect([a.created, b.created].filter(Boolean)).toHaveLength(1);
  });

  it('signatures verify against the relay id', async () => {
    const { keypair } = await loadOrCreateKeypair(join(dir, 'k.json'));
    const message = utf8Encode('relaycast-register-v1:nonce');
    const sig = keypair.sign(message);
    expect(sig).toHaveLength(64);
    expect(verifyEd25519(decodePublicKey(keypair.relayId), message, sig)).toBe(true);
    expect(verifyEd25519(decodePublicKey(keypair.relayId), utf8Encode('other'), sig)).toBe(false);
  });

  it('rejects malformed files with RC_ERR_KEYPAIR_INVALID', async () => {
    const mismatched = [...SEED, ...PUB];
    mismatched[40] = (mismatched[40] as number) ^ 1;
    const cases = [
      'not json',
      '{"secretKey": []}',
      JSON.stringify([...SEED]),
      JSON.stringify([...SEED, ...PUB, 0]),
      JSON.stringify([...SEED.subarray(0, 31), 256, ...PUB]),
      JSON.stringify([...SEED.subarray(0, 31), -1, ...PUB]),
      JSON.stringify([...SEED.subarray(0, 31), 1.5, ...PUB]),
      JSON.stringify([...SEED.subarray(0, 31), '1', ...PUB]),
      JSON.stringify(mismatched),
    ];
    for (const text of cases) {
      expect(() => parseKeypairFile(text), text).toThrowError(expect.objectContaining({ code: ErrorCode.KEYPAIR_INVALID }));
      const path = join(dir, 'bad.json');
      await writeFile(path, text, { mode: 0o600 });
      await expect(loadOrCreateKeypair(path)).rejects.toMatchObject({ code: ErrorCode.KEYPAIR_INVALID });
      // A malformed file is never replaced by a fresh key.
      expect(await readFile(path, 'utf8')).toBe(text);
    }
    await expect(loadKeypair(join(dir, 'missing.json'))).rejects.toMatchObject({ code: ErrorCode.KEYPAIR_INVALID });
  });

  it('refuses a keypair file group or others may read or write (RC_ERR_KEY_PERMISSIONS); a created one is 0600 and loads', async () => {
    const path = join(dir, 'shared.json');
    await writeFile(path, JSON.stringify([...SEED, ...PUB]), { mode: 0o600 });
    for (const mode of [0o644, 0o640, 0o604, 0o620, 0o602, 0o660]) {
      await chmod(path, mode);
      await expect(loadKeypair(path), mode.toString(8)).rejects.toMatchObject({ code: ErrorCode.KEY_PERMISSIONS });
      // Never replaced by a fresh key either.
      await expect(loadOrCreateKeypair(path)).rejects.toMatchObject({ code: ErrorCode.KEY_PERMISSIONS });
      expect(JSON.parse(await readFile(path, 'utf8'))).toEqual([...SEED, ...PUB]);
    }
    await chmod(path, 0o400);
    expect((await loadKeypair(path)).relayId).toBe(encodeBase58(PUB));
    const created = join(dir, 'fresh', 'relay.json');
    expect((await loadOrCreateKeypair(created)).created).toBe(true);
    expect((await stat(created)).mode & 0o777).toBe(0o600);
    expect((await loadOrCreateKeypair(created)).created).toBe(false);
  });

  it('never reveals the secret through JSON, inspect or string conversion', async () => {
    const kp = RelayKeypair.fromSecretKey(new Uint8Array([...SEED, ...PUB]));
    const seedHex = SEED.toString('hex');
    const seedList = [...SEED].join(',');
    for (const text of [JSON.stringify(kp), inspect(kp, { depth: 10, showHidden: true }), String(kp), JSON.stringify({ kp })]) {
      expect(text).not.toContain(seedHex);
      expect(text.replace(/\s/g, '')).not.toContain(seedList);
    }
    expect(JSON.parse(JSON.stringify(kp))).toEqual({ relayId: kp.relayId });
  });
});
