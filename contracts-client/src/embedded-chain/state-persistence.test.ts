import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, isRelaycastError } from '@relaycast/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StatePersistence, type ChainSnapshot } from './state-persistence.js';
import type { TransactionRecord } from './transaction-history.js';

function record(signature: string): TransactionRecord {
  return {
    signature,
    slot: 1,
    blockTime: 1,
    accountKeys: ['A'],
    err: null,
    fee: 5_000,
    preBalances: [],
    postBalances: [],
    preTokenBalances: [],
    postTokenBalances: [],
    logMessages: [],
    innerInstructions: [],
    computeUnitsConsumed: 0,
    memo: null,
  };
}

const snapshot = (slot: number): ChainSnapshot => ({
  genesisHash: 'G',
  slot,
  accounts: { A: { lamports: '18446744073709551615', owner: '11111111111111111111111111111111', executable: false, data: '' } },
});

describe('StatePersistence', () => {
  let dir: string;
  let file: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'relaycast-state-'));
    file = join(dir, 'state.json');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('returns nothing for a fresh path and round-trips snapshot and history', () => {
    const p = new StatePersistence(file, 10);
    expect(p.load()).toBeUndefined();
    p.appendRecord(record('s1'));
    p.writeSnapshot(snapshot(5), () => [record('s1')]);
    const loaded = new StatePersistence(file, 10).load();
    expect(loaded?.slot).toBe(5);
    expect(loaded?.accounts['A']?.lamports).toBe('18446744073709551615');
    expect(loaded?.history.map((r) => r.signature)).toEqual(['s1']);
  });

  it('drops history lines the snapshot does not cover (a crash between append and snapshot), torn tail included', async () => {
    const p = new StatePersistence(file, 10);
    p.appendRecord(record('s1'));
    p.writeSnapshot(snapshot(5), () => [record('s1')]);
    p.appendRecord(record('s2'));
    await appendFile(`${file}.history.jsonl`, '{"signature":"torn');
    const loaded = new StatePersistence(file, 10).load();
    expect(loaded?.history.map((r) => r.signature)).toEqual(['s1']);
    expect((await readFile(`${file}.history.jsonl`, 'utf8')).trim().split('\n')).toHaveLength(1);
  });

  it('refuses a snapshot of another format with RC_ERR_CHAIN_STATE_INVALID', async () => {
    await writeFile(file, '{"format":"something-else"}');
    let caught: unknown;
    try {
      new StatePersistence(file, 10).load();
    } catch (err) {
      caught = err;
    }
    expect(isRelaycastError(caught, ErrorCode.CHAIN_STATE_INVALID)).toBe(true);
  });
});
