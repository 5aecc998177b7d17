import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { ErrorCode, RelaycastError } from '@relaycast/protocol';
import type { TransactionRecord } from './transaction-history.js';

/**
 * The chain's state file format. Two files:
 * - `<stateFile>`: one JSON snapshot (genesis hash, slot, every account the chain's transactions
 *   and airdrops touched), replaced atomically (temporary file + rename) after every commit;
 * - `<stateFile>.history.jsonl`: the transaction records, one JSON line each, append-only.
 * The snapshot says how many history lines it covers (`historyCount`); lines past that number
 * were appended by a commit whose snapshot never landed (a crash in between) and are dropped on
 * load, so balances and history always describe the same set of transactions.
 * Writes are synchronous on purpose: the next request must not run before its predecessor's
 * state is on disk, and the chain is single-threaded anyway.
 */
export const STATE_FORMAT = 'relaycast-chain-state';
export const STATE_VERSION = 1;

export interface PersistedAccount {
  /** Decimal string: lamports can exceed 2^53. */
  lamports: string;
  owner: string;
  executable: boolean;
  /** Account data, base64. */
  data: string;
}

export interface ChainSnapshot {
  genesisHash: string;
  slot: number;
  accounts: Record<string, PersistedAccount>;
}

export interface LoadedChainState extends ChainSnapshot {
  history: TransactionRecord[];
}

interface SnapshotFile extends ChainSnapshot {
  format: string;
  version: number;
  historyCount: number;
}

function invalid(path: string, why: string, cause?: unknown): RelaycastError {
  return new RelaycastError(ErrorCode.CHAIN_STATE_INVALID, `chain state file ${path}: ${why}`, { cause, details: { path } });
}

function historyPath(stateFile: string): string {
  return `${stateFile}.history.jsonl`;
}

function writeAtomically(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

function isSnapshotFile(v: unknown): v is SnapshotFile {
  if (typeof v !== 'object' || v === null) return false;
  const s = v as Record<string, unknown>;
  return (
    s['format'] === STATE_FORMAT &&
    s['version'] === STATE_VERSION &&
    typeof s['genesisHash'] === 'string' &&
    Number.isSafeInteger(s['slot']) &&
    Number.isSafeInteger(s['historyCount']) &&
    typeof s['accounts'] === 'object' &&
    s['accounts'] !== null
  );
}

/** Owns the state files of one chain: loads them once, then records every commit. */
export class StatePersistence {
  readonly #stateFile: string;
  readonly #maxHistory: number;
  #historyLines = 0;

  constructor(stateFile: string, maxHistoryTransactions: number) {
    this.#stateFile = stateFile;
    this.#maxHistory = maxHistoryTransactions;
  }

  /**
   * Reads the state; undefined when there is none yet. Rewrites the history file to exactly the
   * lines the snapshot covers (dropping a torn tail and anything beyond the history bound).
   */
  load(): LoadedChainState | undefined {
    if (!existsSync(this.#stateFile)) return undefined;
    let snapshot: unknown;
    try {
      snapshot = JSON.parse(readFileSync(this.#stateFile, 'utf8'));
    } catch (err) {
      throw invalid(this.#stateFile, 'cannot read or parse it', err);
    }
    if (!isSnapshotFile(snapshot)) throw invalid(this.#stateFile, `not a ${STATE_FORMAT} v${STATE_VERSION} snapshot`);
    for (const [address, acc] of Object.entries(snapshot.accounts)) {
      const a = acc as Partial<PersistedAccount>;
      if (
        typeof a.lamports !== 'string' ||
        !/^\d+$/.test(a.lamports) ||
        typeof a.owner !== 'string' ||
        typeof a.data !== 'string' ||
        typeof a.executable !== 'boolean'
      ) {
        throw invalid(this.#stateFile, `account ${address} is malformed`);
      }
    }
    const history: TransactionRecord[] = [];
    const hp = historyPath(this.#stateFile);
    if (existsSync(hp)) {
      const lines = readFileSync(hp, 'utf8').split('\n');
      for (let i = 0; i < snapshot.historyCount && i < lines.length; i++) {
        try {
          history.push(JSON.parse(lines[i]!) as TransactionRecord);
        } catch (err) {
          throw invalid(hp, `line ${i + 1} is not JSON`, err);
        }
      }
    }
    const kept = history.slice(-this.#maxHistory);
    this.#rewriteHistory(kept);
    return { genesisHash: snapshot.genesisHash, slot: snapshot.slot, accounts: snapshot.accounts, history: kept };
  }

  /** Appends the record of a commit; call before `writeSnapshot` of the state that includes it. */
  appendRecord(record: TransactionRecord): void {
    const fd = openSync(historyPath(this.#stateFile), 'a', 0o600);
    try {
      writeSync(fd, `${JSON.stringify(record)}\n`);
    } finally {
      closeSync(fd);
    }
    this.#historyLines++;
  }

  /**
   * Replaces the snapshot. `history` is the in-memory history after the commit: when the file has
   * grown to twice the bound it is compacted to those records first.
   */
  writeSnapshot(snapshot: ChainSnapshot, history: () => TransactionRecord[]): void {
    if (this.#historyLines > 2 * this.#maxHistory) this.#rewriteHistory(history());
    const file: SnapshotFile = { format: STATE_FORMAT, version: STATE_VERSION, historyCount: this.#historyLines, ...snapshot };
    writeAtomically(this.#stateFile, JSON.stringify(file));
  }

  #rewriteHistory(records: TransactionRecord[]): void {
    writeAtomically(historyPath(this.#stateFile), records.map((r) => `${JSON.stringify(r)}\n`).join(''));
    this.#historyLines = records.length;
  }
}
