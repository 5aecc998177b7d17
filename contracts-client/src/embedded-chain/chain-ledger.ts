import { randomBytes } from 'node:crypto';
import { encodeBase58, toBase64, utf8Decode } from '@relaycast/protocol';
import { MEMO_PROGRAM_IDS as MEMO_PROGRAMS } from '@relaycast/protocol/settlement';
import { address, getTransactionDecoder, lamports as toLamports, type Transaction } from '@solana/kit';
import { VersionedTransaction } from '@solana/web3.js';
import { FailedTransactionMetadata, LiteSVM, type TransactionMetadata } from 'litesvm';
import type { Logger } from 'pino';
import { LAMPORTS_PER_SIGNATURE } from '../constants.js';
import { BlockhashWindow } from './blockhash-window.js';
import { StatePersistence, type PersistedAccount } from './state-persistence.js';
import { parseMintDecimals, parseTokenAccount, uiTokenAmount } from './token-accounts.js';
import { TransactionHistory, type InnerInstructionsJson, type TokenBalanceJson, type TransactionRecord } from './transaction-history.js';
import { checkWireTransaction } from './wire-check.js';
import { ALREADY_PROCESSED, BLOCKHASH_NOT_FOUND, SIGNATURE_FAILURE, transactionErrorJson, type TransactionErrorJson } from './tx-errors.js';

const MEMO_PROGRAM_IDS = new Set(MEMO_PROGRAMS);
/** Owners whose accounts are runtime-provided (programs, sysvars): never snapshotted, litesvm recreates them. */
const RUNTIME_OWNERS = new Set([
  'NativeLoader1111111111111111111111111111111',
  'Sysvar1111111111111111111111111111111111111',
  'BPFLoader1111111111111111111111111111111111',
  'BPFLoader2111111111111111111111111111111111',
  'BPFLoaderUpgradeab1e11111111111111111111111',
]);

export interface LedgerOptions {
  blockhashValiditySlots: number;
  maxHistoryTransactions: number;
  stateFile?: string | undefined;
  logger: Logger;
}

export interface AccountView {
  lamports: bigint;
  owner: string;
  executable: boolean;
  data: Uint8Array;
}

/** Why a transaction was refused before or during execution, in the shape a preflight failure reports. */
export interface TransactionFailure {
  err: TransactionErrorJson;
  logs: string[];
  unitsConsumed: number;
}

export type SendOutcome = { ok: true; record: TransactionRecord } | { ok: false; failure: TransactionFailure };

export interface SimulationResult {
  err: TransactionErrorJson | null;
  logs: string[];
  unitsConsumed: number;
  returnData: { programId: string; data: [string, 'base64'] } | null;
}

/** A wire transaction decoded twice: for litesvm (kit) and for rendering (web3.js message). */
export interface DecodedTransaction {
  wire: Uint8Array;
  kit: Transaction;
  signature: string;
  message: VersionedTransaction['message'];
  accountKeys: string[];
  blockhash: string;
}

/** Malformed transaction bytes (the RPC layer turns it into an invalid-params error). */
export class TransactionDecodeError extends Error {}

export function decodeWireTransaction(wire: Uint8Array): DecodedTransaction {
  const malformed = checkWireTransaction(wire);
  if (malformed !== undefined) throw new TransactionDecodeError(malformed);
  try {
    const vtx = VersionedTransaction.deserialize(wire);
    const kit = getTransactionDecoder().decode(wire);
    const first = vtx.signatures[0];
    if (first === undefined) throw new Error('transaction has no signatures');
    return {
      wire,
      kit,
      signature: encodeBase58(first),
      message: vtx.message,
      accountKeys: vtx.message.staticAccountKeys.map((k) => k.toBase58()),
      blockhash: vtx.message.recentBlockhash,
    };
  } catch (err) {
    throw new TransactionDecodeError(err instanceof Error ? err.message : String(err));
  }
}

/**
 * The chain's state machine: litesvm plus what a real cluster has and litesvm lacks (slots on a
 * clock, a recent-blockhash window, a transaction history with metadata, durable state). It owns
 * every mutation; the RPC layer only reads from it or asks it to commit.
 */
export class ChainLedger {
  readonly #svm: LiteSVM;
  readonly #window: BlockhashWindow;
  readonly #history: TransactionHistory;
  readonly #persistence: StatePersistence | undefined;
  readonly #log: Logger;
  /** Addresses any committed transaction or airdrop wrote or read: the candidates for the snapshot. */
  readonly #touched = new Set<string>();
  readonly genesisHash: string;
  #slot: number;
  #transactionCount = 0;

  constructor(options: LedgerOptions) {
    this.#log = options.logger;
    // litesvm's own blockhash check accepts only its latest hash; the window below replaces it.
    this.#svm = new LiteSVM().withBlockhashCheck(false);
    this.#window = new BlockhashWindow(options.blockhashValiditySlots);
    this.#history = new TransactionHistory(options.maxHistoryTransactions);
    this.#persistence = options.stateFile === undefined ? undefined : new StatePersistence(options.stateFile, options.maxHistoryTransactions);
    const loaded = this.#persistence?.load();
    if (loaded === undefined) {
      this.genesisHash = encodeBase58(randomBytes(32));
      this.#slot = 0;
    } else {
      this.genesisHash = loaded.genesisHash;
      this.#slot = loaded.slot;
      for (const [addr, acc] of Object.entries(loaded.accounts)) this.#restoreAccount(addr, acc);
      for (const record of loaded.history) this.#history.add(record);
      // A full restored history may have lost older records before it was saved.
      if (loaded.history.length >= options.maxHistoryTransactions && loaded.history.length > 0) this.#history.markForgottenBefore(loaded.history[0]!.slot + 1);
      this.#transactionCount = loaded.history.length;
      this.#log.info({ accounts: Object.keys(loaded.accounts).length, transactions: loaded.history.length, slot: loaded.slot }, 'chain state restored');
    }
    this.tick();
  }

  get slot(): number {
    return this.#slot;
  }

  get transactionCount(): number {
    return this.#transactionCount;
  }

  /** Advances one slot: new clock, new blockhash appended to the window. */
  tick(): number {
    this.#slot++;
    this.#svm.warpToSlot(BigInt(this.#slot));
    this.#svm.expireBlockhash();
    this.#window.push(this.#svm.latestBlockhash(), this.#slot);
    return this.#slot;
  }

  latestBlockhash(): { blockhash: string; lastValidBlockHeight: number } {
    return this.#window.latest();
  }

  isBlockhashValid(blockhash: string): boolean {
    return this.#window.isValid(blockhash, this.#slot);
  }

  rentExemptMinimum(dataBytes: number): bigint {
    return this.#svm.minimumBalanceForRentExemption(BigInt(dataBytes));
  }

  getAccount(addr: string): AccountView | null {
    const acc = this.#svm.getAccount(address(addr));
    if (!acc.exists) return null;
    return { lamports: acc.lamports, owner: acc.programAddress, executable: acc.executable, data: Uint8Array.from(acc.data) };
  }

  /** Every account owned by `program`, with its address (litesvm scans all accounts: fine at development scale). */
  programAccounts(program: string): (AccountView & { address: string })[] {
    return this.#svm.getProgramAccounts(address(program)).map((acc) => ({
      address: acc.address,
      lamports: acc.lamports,
      owner: acc.programAddress,
      executable: acc.executable,
      data: Uint8Array.from(acc.data),
    }));
  }

  getBalance(addr: string): bigint {
    return this.#svm.getBalance(address(addr)) ?? 0n;
  }

  /** Lowest slot whose history is complete (getFirstAvailableBlock, minimumLedgerSlot). */
  get firstAvailableSlot(): number {
    return this.#history.firstAvailableSlot;
  }

  getRecord(signature: string): TransactionRecord | undefined {
    return this.#history.get(signature);
  }

  signaturesForAddress(addr: string, query: Parameters<TransactionHistory['signaturesForAddress']>[1]): TransactionRecord[] {
    return this.#history.signaturesForAddress(addr, query);
  }

  /** Credits `lamports` from litesvm's faucet; returns the airdrop's signature. */
  airdrop(to: string, lamports: bigint): { signature: string } | { failure: TransactionFailure } {
    let result = this.#svm.airdrop(address(to), toLamports(lamports));
    // The faucet signs the same transaction for the same recipient and amount within one
    // blockhash; roll litesvm's blockhash (the window is unaffected) so repeats are new transactions.
    if (result instanceof FailedTransactionMetadata && transactionErrorJson(result) === ALREADY_PROCESSED) {
      this.#svm.expireBlockhash();
      result = this.#svm.airdrop(address(to), toLamports(lamports));
    }
    if (result === null) return { failure: { err: 'InvalidAccountForFee', logs: [], unitsConsumed: 0 } };
    if (result instanceof FailedTransactionMetadata) return { failure: this.#failure(result) };
    const signature = encodeBase58(result.signature());
    this.#touched.add(to);
    this.#commit({
      signature,
      slot: this.#slot,
      blockTime: Math.floor(Date.now() / 1000),
      // Not indexed by address: there is no transaction body to show for it.
      accountKeys: [],
      err: null,
      fee: 0,
      preBalances: [],
      postBalances: [],
      preTokenBalances: [],
      postTokenBalances: [],
      logMessages: result.logs(),
      innerInstructions: [],
      computeUnitsConsumed: Number(result.computeUnitsConsumed()),
      memo: null,
    });
    return { signature };
  }

  /**
   * Executes and commits a transaction. With preflight, a transaction that would fail is refused
   * without any state change; without it, a failure that charged the fee is committed (with `err`)
   * as on a real cluster, and one that could not even be charged is refused.
   */
  send(tx: DecodedTransaction, skipPreflight: boolean): SendOutcome {
    const refused = this.#precheck(tx);
    if (refused !== undefined) return { ok: false, failure: refused };
    if (!skipPreflight) {
      const sim = this.#svm.simulateTransaction(tx.kit);
      if (sim instanceof FailedTransactionMetadata) return { ok: false, failure: this.#failure(sim) };
    }
    const preBalances = tx.accountKeys.map((k) => Number(this.getBalance(k)));
    const preTokenBalances = this.#tokenBalances(tx.accountKeys);
    const result = this.#svm.sendTransaction(tx.kit);
    const postBalances = tx.accountKeys.map((k) => Number(this.getBalance(k)));
    const failed = result instanceof FailedTransactionMetadata;
    if (failed && preBalances[0] === postBalances[0]) return { ok: false, failure: this.#failure(result) };
    const meta: TransactionMetadata = failed ? result.meta() : result;
    for (const k of tx.accountKeys) this.#touched.add(k);
    const record: TransactionRecord = {
      signature: tx.signature,
      slot: this.#slot,
      blockTime: Math.floor(Date.now() / 1000),
      accountKeys: tx.accountKeys,
      wireBase64: toBase64(tx.wire),
      err: failed ? transactionErrorJson(result) : null,
      fee: LAMPORTS_PER_SIGNATURE * tx.message.header.numRequiredSignatures,
      preBalances,
      postBalances,
      preTokenBalances,
      postTokenBalances: this.#tokenBalances(tx.accountKeys),
      logMessages: meta.logs(),
      innerInstructions: innerInstructionsJson(meta),
      computeUnitsConsumed: Number(meta.computeUnitsConsumed()),
      memo: memoField(tx),
    };
    this.#commit(record);
    return { ok: true, record };
  }

  simulate(tx: DecodedTransaction, options: { sigVerify: boolean; replaceRecentBlockhash: boolean }): SimulationResult {
    if (!options.replaceRecentBlockhash || this.#history.has(tx.signature)) {
      const refused = this.#precheck(tx, options.sigVerify);
      if (refused !== undefined) return { ...refused, returnData: null };
    } else if (options.sigVerify && Object.values(tx.kit.signatures).some((s) => s === null)) {
      return { err: SIGNATURE_FAILURE, logs: [], unitsConsumed: 0, returnData: null };
    }
    // Clients simulate unsigned transactions with sigVerify false (web3.js does when given no signers).
    if (!options.sigVerify) this.#svm.withSigverify(false);
    try {
      const sim = this.#svm.simulateTransaction(tx.kit);
      if (sim instanceof FailedTransactionMetadata) return { ...this.#failure(sim), returnData: null };
      const meta = sim.meta();
      const ret = meta.returnData();
      const data = ret.data();
      return {
        err: null,
        logs: meta.logs(),
        unitsConsumed: Number(meta.computeUnitsConsumed()),
        returnData: data.byteLength === 0 ? null : { programId: encodeBase58(ret.programId()), data: [toBase64(data), 'base64'] },
      };
    } finally {
      if (!options.sigVerify) this.#svm.withSigverify(true);
    }
  }

  /** Checks a real cluster makes before execution that litesvm does not make here. */
  #precheck(tx: DecodedTransaction, sigVerify = true): TransactionFailure | undefined {
    // litesvm's wrapper throws (instead of failing the transaction) when a signature is missing.
    if (sigVerify && Object.values(tx.kit.signatures).some((s) => s === null)) return { err: SIGNATURE_FAILURE, logs: [], unitsConsumed: 0 };
    if (this.#history.has(tx.signature)) return { err: ALREADY_PROCESSED, logs: [], unitsConsumed: 0 };
    if (!this.isBlockhashValid(tx.blockhash)) return { err: BLOCKHASH_NOT_FOUND, logs: [], unitsConsumed: 0 };
    return undefined;
  }

  #failure(failed: FailedTransactionMetadata): TransactionFailure {
    const meta = failed.meta();
    return { err: transactionErrorJson(failed), logs: meta.logs(), unitsConsumed: Number(meta.computeUnitsConsumed()) };
  }

  #tokenBalances(keys: string[]): TokenBalanceJson[] {
    const out: TokenBalanceJson[] = [];
    const decimalsOf = new Map<string, number | undefined>();
    keys.forEach((key, accountIndex) => {
      const acc = this.getAccount(key);
      if (acc === null) return;
      const token = parseTokenAccount(acc.owner, acc.data);
      if (token === undefined) return;
      if (!decimalsOf.has(token.mint)) {
        const mint = this.getAccount(token.mint);
        decimalsOf.set(token.mint, mint === null ? undefined : parseMintDecimals(mint.owner, mint.data));
      }
      const decimals = decimalsOf.get(token.mint);
      if (decimals === undefined) return;
      out.push({ accountIndex, mint: token.mint, owner: token.owner, programId: token.programId, uiTokenAmount: uiTokenAmount(token.amount, decimals) });
    });
    return out;
  }

  /**
   * Writes the snapshot with the current slot. Commits write it anyway; this is for a clean stop,
   * so a restarted chain continues from the slot clients last saw instead of the last commit's.
   */
  flush(): void {
    this.#writeSnapshot();
  }

  #commit(record: TransactionRecord): void {
    this.#history.add(record);
    this.#transactionCount++;
    this.#persistence?.appendRecord(record);
    this.#writeSnapshot();
  }

  #writeSnapshot(): void {
    if (this.#persistence === undefined) return;
    this.#persistence.writeSnapshot({ genesisHash: this.genesisHash, slot: this.#slot, accounts: this.#snapshotAccounts() }, () => this.#history.records());
  }

  #snapshotAccounts(): Record<string, PersistedAccount> {
    const accounts: Record<string, PersistedAccount> = {};
    for (const addr of this.#touched) {
      const acc = this.getAccount(addr);
      if (acc === null || acc.executable || RUNTIME_OWNERS.has(acc.owner)) continue;
      accounts[addr] = { lamports: acc.lamports.toString(), owner: acc.owner, executable: false, data: toBase64(acc.data) };
    }
    return accounts;
  }

  #restoreAccount(addr: string, acc: PersistedAccount): void {
    const data = Buffer.from(acc.data, 'base64');
    this.#svm.setAccount({
      address: address(addr),
      lamports: toLamports(BigInt(acc.lamports)),
      programAddress: address(acc.owner),
      executable: acc.executable,
      data,
      space: BigInt(data.byteLength),
    });
    this.#touched.add(addr);
  }
}

function innerInstructionsJson(meta: TransactionMetadata): InnerInstructionsJson[] {
  const out: InnerInstructionsJson[] = [];
  meta.innerInstructions().forEach((list, index) => {
    if (list.length === 0) return;
    out.push({
      index,
      instructions: list.map((inner) => {
        const ix = inner.instruction();
        return { programIdIndex: ix.programIdIndex(), accounts: [...ix.accounts()], data: encodeBase58(ix.data()), stackHeight: inner.stackHeight() };
      }),
    });
  });
  return out;
}

/** getSignaturesForAddress's memo text, formatted like a real cluster: "[<bytes>] <memo>" joined by "; ". */
function memoField(tx: DecodedTransaction): string | null {
  const memos: string[] = [];
  for (const ix of tx.message.compiledInstructions) {
    const program = tx.accountKeys[ix.programIdIndex];
    if (program === undefined || !MEMO_PROGRAM_IDS.has(program)) continue;
    memos.push(`[${ix.data.byteLength}] ${utf8Decode(ix.data)}`);
  }
  return memos.length === 0 ? null : memos.join('; ');
}
