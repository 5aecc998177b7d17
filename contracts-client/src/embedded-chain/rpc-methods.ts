import { decodeBase58, encodeBase58, fromBase64, toBase64 } from '@relaycast/protocol';
import { isAddress } from '@solana/kit';
import { VersionedMessage, VersionedTransaction } from '@solana/web3.js';
import {
  CHAIN_SOLANA_CORE_VERSION,
  LAMPORTS_PER_SIGNATURE,
  MAX_MULTIPLE_ACCOUNTS,
  MAX_SIGNATURE_STATUSES,
  MAX_SIGNATURES_FOR_ADDRESS_LIMIT,
} from '../constants.js';
import { TransactionDecodeError, decodeWireTransaction, type AccountView, type ChainLedger, type DecodedTransaction } from './chain-ledger.js';
import { RpcError, RpcErrorCode } from './json-rpc.js';
import { TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID, parseMintDecimals, parseTokenAccount, uiTokenAmount } from './token-accounts.js';
import type { TransactionRecord } from './transaction-history.js';
import { SIGNATURE_FAILURE, transactionErrorMessage, type TransactionErrorJson } from './tx-errors.js';

/** What a method handler may use besides the ledger. */
export interface RpcContext {
  ledger: ChainLedger;
  maxAirdropLamports: number;
  /** Called after every commit so WebSocket subscribers hear about it. */
  onCommitted(signature: string, err: TransactionErrorJson | null): void;
}

export type RpcMethod = (params: unknown[], ctx: RpcContext) => unknown;

/** Largest serialized transaction a cluster accepts (one packet). */
const PACKET_DATA_SIZE = 1232;
const SLOTS_PER_EPOCH = 432_000;
/**
 * Rent epoch of a rent-exempt account, as a real cluster reports it (u64::MAX). A JSON number read
 * into a double: 2^64 is the double that u64::MAX becomes, in this server and in every client.
 */
const RENT_EXEMPT_EPOCH = 2 ** 64;

function invalidParams(message: string): RpcError {
  return new RpcError(RpcErrorCode.INVALID_PARAMS, message);
}

function config(params: unknown[], index: number): Record<string, unknown> {
  const c = params[index];
  if (c === undefined || c === null) return {};
  if (typeof c !== 'object' || Array.isArray(c)) throw invalidParams(`Invalid params: argument ${index} must be an object`);
  return c as Record<string, unknown>;
}

function stringParam(params: unknown[], index: number, what: string): string {
  const v = params[index];
  if (typeof v !== 'string') throw invalidParams(`Invalid params: ${what} must be a string`);
  return v;
}

function addressParam(value: unknown): string {
  if (typeof value !== 'string' || !isAddress(value)) throw invalidParams('Invalid param: Invalid');
  return value;
}

function signatureParam(value: unknown): string {
  if (typeof value !== 'string' || decodeBase58(value)?.byteLength !== 64) throw invalidParams('Invalid param: Invalid');
  return value;
}

function context(ctx: RpcContext): { slot: number; apiVersion: string } {
  return { slot: ctx.ledger.slot, apiVersion: CHAIN_SOLANA_CORE_VERSION };
}

function withContext(ctx: RpcContext, value: unknown): { context: { slot: number; apiVersion: string }; value: unknown } {
  return { context: context(ctx), value };
}

function accountJson(acc: AccountView | null, encoding: unknown): unknown {
  if (acc === null) return null;
  // jsonParsed falls back to binary, as a real node does for accounts it cannot parse.
  const data = encoding === 'base58' ? [encodeBase58(acc.data), 'base58'] : [toBase64(acc.data), 'base64'];
  if (encoding !== undefined && encoding !== 'base58' && encoding !== 'base64' && encoding !== 'jsonParsed') {
    throw invalidParams(`Invalid params: unsupported encoding ${String(encoding)}`);
  }
  return {
    data,
    executable: acc.executable,
    lamports: Number(acc.lamports),
    owner: acc.owner,
    rentEpoch: RENT_EXEMPT_EPOCH,
    space: acc.data.byteLength,
  };
}

function decodeTransactionParam(params: unknown[], encoding: unknown): DecodedTransaction {
  const text = stringParam(params, 0, 'transaction');
  const enc = encoding ?? 'base58';
  const wire = enc === 'base64' ? fromBase64(text) : enc === 'base58' ? decodeBase58(text) : undefined;
  if (enc !== 'base64' && enc !== 'base58') throw invalidParams(`Invalid params: unsupported encoding ${String(enc)}`);
  if (wire === undefined) throw invalidParams(`invalid ${enc} encoding`);
  if (wire.byteLength > PACKET_DATA_SIZE) {
    throw invalidParams(
      `${enc} encoded solana_sdk::transaction::versioned::VersionedTransaction too large: ${wire.byteLength} bytes (max: ${PACKET_DATA_SIZE} bytes)`,
    );
  }
  try {
    return decodeWireTransaction(wire);
  } catch (err) {
    if (err instanceof TransactionDecodeError) {
      throw invalidParams(`failed to deserialize solana_sdk::transaction::versioned::VersionedTransaction: ${err.message}`);
    }
    throw err;
  }
}

function preflightFailure(err: TransactionErrorJson, logs: string[], unitsConsumed: number): RpcError {
  if (err === SIGNATURE_FAILURE) return new RpcError(RpcErrorCode.TRANSACTION_SIGNATURE_VERIFICATION_FAILURE, 'Transaction signature verification failure');
  return new RpcError(RpcErrorCode.SEND_TRANSACTION_PREFLIGHT_FAILURE, `Transaction simulation failed: ${transactionErrorMessage(err)}`, {
    accounts: null,
    err,
    innerInstructions: null,
    logs,
    replacementBlockhash: null,
    returnData: null,
    unitsConsumed,
  });
}

/** Slots a node's status cache covers (getSignatureStatuses without searchTransactionHistory). */
const STATUS_CACHE_SLOTS = 300;

function statusJson(record: TransactionRecord): unknown {
  return {
    slot: record.slot,
    confirmations: null,
    err: record.err,
    status: record.err === null ? { Ok: null } : { Err: record.err },
    confirmationStatus: 'finalized',
  };
}

function transactionJson(record: TransactionRecord, cfg: Record<string, unknown>): unknown {
  if (record.wireBase64 === undefined) return null;
  const wire = fromBase64(record.wireBase64)!;
  const vtx = VersionedTransaction.deserialize(wire);
  const maxVersion = cfg['maxSupportedTransactionVersion'];
  if (vtx.version !== 'legacy' && (typeof maxVersion !== 'number' || maxVersion < vtx.version)) {
    throw new RpcError(
      RpcErrorCode.UNSUPPORTED_TRANSACTION_VERSION,
      `Transaction version (${vtx.version}) is not supported by the requesting client. Please try the request again with the following configuration parameter: "maxSupportedTransactionVersion": ${vtx.version}`,
    );
  }
  const encoding = cfg['encoding'] ?? 'json';
  let transaction: unknown;
  if (encoding === 'base64') {
    transaction = [record.wireBase64, 'base64'];
  } else if (encoding === 'json') {
    const m = vtx.message;
    transaction = {
      signatures: vtx.signatures.map((s) => encodeBase58(s)),
      message: {
        accountKeys: m.staticAccountKeys.map((k) => k.toBase58()),
        header: m.header,
        recentBlockhash: m.recentBlockhash,
        instructions: m.compiledInstructions.map((ix) => ({
          programIdIndex: ix.programIdIndex,
          accounts: ix.accountKeyIndexes,
          data: encodeBase58(ix.data),
          stackHeight: null,
        })),
        ...(vtx.version === 'legacy'
          ? {}
          : {
              addressTableLookups: m.addressTableLookups.map((l) => ({
                accountKey: l.accountKey.toBase58(),
                writableIndexes: l.writableIndexes,
                readonlyIndexes: l.readonlyIndexes,
              })),
            }),
      },
    };
  } else {
    throw invalidParams(`Invalid params: unsupported encoding ${String(encoding)} (json and base64 are supported)`);
  }
  return {
    slot: record.slot,
    blockTime: record.blockTime,
    transaction,
    meta: {
      err: record.err,
      status: record.err === null ? { Ok: null } : { Err: record.err },
      fee: record.fee,
      preBalances: record.preBalances,
      postBalances: record.postBalances,
      innerInstructions: record.innerInstructions,
      logMessages: record.logMessages,
      preTokenBalances: record.preTokenBalances,
      postTokenBalances: record.postTokenBalances,
      rewards: [],
      loadedAddresses: { writable: [], readonly: [] },
      computeUnitsConsumed: record.computeUnitsConsumed,
    },
    ...(maxVersion === undefined ? {} : { version: vtx.version }),
  };
}

/** Fee of a base64 message, or null when its blockhash is not (or no longer) valid, as on a node. */
function feeForMessage(ctx: RpcContext, messageBase64: string): number | null {
  const bytes = fromBase64(messageBase64);
  let message;
  try {
    if (bytes === undefined) throw new Error('not base64');
    message = VersionedMessage.deserialize(bytes);
  } catch {
    throw invalidParams('Invalid params: message is not base64 of a transaction message');
  }
  if (!ctx.ledger.isBlockhashValid(message.recentBlockhash)) return null;
  return LAMPORTS_PER_SIGNATURE * message.header.numRequiredSignatures;
}

export const RPC_METHODS: Readonly<Record<string, RpcMethod>> = {
  getHealth: () => 'ok',
  getVersion: () => ({ 'solana-core': CHAIN_SOLANA_CORE_VERSION, 'feature-set': 0 }),
  getGenesisHash: (_p, ctx) => ctx.ledger.genesisHash,
  getSlot: (_p, ctx) => ctx.ledger.slot,
  getBlockHeight: (_p, ctx) => ctx.ledger.slot,
  getTransactionCount: (_p, ctx) => ctx.ledger.transactionCount,
  getEpochInfo: (_p, ctx) => {
    const slot = ctx.ledger.slot;
    return {
      absoluteSlot: slot,
      blockHeight: slot,
      epoch: Math.floor(slot / SLOTS_PER_EPOCH),
      slotIndex: slot % SLOTS_PER_EPOCH,
      slotsInEpoch: SLOTS_PER_EPOCH,
      transactionCount: ctx.ledger.transactionCount,
    };
  },
  getLatestBlockhash: (_p, ctx) => withContext(ctx, ctx.ledger.latestBlockhash()),
  isBlockhashValid: (p, ctx) => withContext(ctx, ctx.ledger.isBlockhashValid(stringParam(p, 0, 'blockhash'))),
  getFeeForMessage: (p, ctx) => withContext(ctx, feeForMessage(ctx, stringParam(p, 0, 'message'))),
  getMinimumBalanceForRentExemption: (p, ctx) => {
    const size = p[0];
    if (!Number.isSafeInteger(size) || (size as number) < 0 || (size as number) > 10 * 1024 * 1024) throw invalidParams('Invalid params: data length');
    return Number(ctx.ledger.rentExemptMinimum(size as number));
  },
  getBalance: (p, ctx) => withContext(ctx, Number(ctx.ledger.getBalance(addressParam(p[0])))),
  getAccountInfo: (p, ctx) => withContext(ctx, accountJson(ctx.ledger.getAccount(addressParam(p[0])), config(p, 1)['encoding'])),
  getMultipleAccounts: (p, ctx) => {
    const list = p[0];
    if (!Array.isArray(list) || list.length > MAX_MULTIPLE_ACCOUNTS) throw invalidParams(`Invalid params: at most ${MAX_MULTIPLE_ACCOUNTS} addresses`);
    const encoding = config(p, 1)['encoding'];
    return withContext(
      ctx,
      list.map((a) => accountJson(ctx.ledger.getAccount(addressParam(a)), encoding)),
    );
  },
  getTokenAccountBalance: (p, ctx) => {
    const acc = ctx.ledger.getAccount(addressParam(p[0]));
    const token = acc === null ? undefined : parseTokenAccount(acc.owner, acc.data);
    if (token === undefined) throw invalidParams('Invalid param: not a Token account');
    const mint = ctx.ledger.getAccount(token.mint);
    const decimals = mint === null ? undefined : parseMintDecimals(mint.owner, mint.data);
    if (decimals === undefined) throw invalidParams('Invalid param: could not find mint');
    return withContext(ctx, uiTokenAmount(token.amount, decimals));
  },
  getTokenAccountsByOwner: (p, ctx) => {
    const owner = addressParam(p[0]);
    const filter = config(p, 1);
    const mint = filter['mint'] === undefined ? undefined : addressParam(filter['mint']);
    const programId = filter['programId'] === undefined ? undefined : addressParam(filter['programId']);
    if ((mint === undefined) === (programId === undefined)) throw invalidParams('Invalid params: give exactly one of mint or programId');
    const encoding = config(p, 2)['encoding'];
    if (encoding === 'jsonParsed') throw invalidParams('Invalid params: jsonParsed is not supported by the embedded chain');
    const programs = programId !== undefined ? [programId] : [TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID];
    const found = programs.flatMap((program) =>
      ctx.ledger.programAccounts(program).filter((acc) => {
        const token = parseTokenAccount(acc.owner, acc.data);
        return token !== undefined && token.owner === owner && (mint === undefined || token.mint === mint);
      }),
    );
    return withContext(
      ctx,
      found.map((acc) => ({ pubkey: acc.address, account: accountJson(acc, encoding) })),
    );
  },
  requestAirdrop: (p, ctx) => {
    const to = addressParam(p[0]);
    const amount = p[1];
    if (!Number.isSafeInteger(amount) || (amount as number) <= 0) throw invalidParams('Invalid params: lamports must be a positive integer');
    if ((amount as number) > ctx.maxAirdropLamports) {
      throw new RpcError(RpcErrorCode.INTERNAL_ERROR, `airdrop request exceeds the limit of ${ctx.maxAirdropLamports} lamports per request`);
    }
    const result = ctx.ledger.airdrop(to, BigInt(amount as number));
    if ('failure' in result) throw new RpcError(RpcErrorCode.INTERNAL_ERROR, `airdrop failed: ${transactionErrorMessage(result.failure.err)}`);
    ctx.onCommitted(result.signature, null);
    return result.signature;
  },
  sendTransaction: (p, ctx) => {
    const cfg = config(p, 1);
    const tx = decodeTransactionParam(p, cfg['encoding']);
    const outcome = ctx.ledger.send(tx, cfg['skipPreflight'] === true);
    if (!outcome.ok) throw preflightFailure(outcome.failure.err, outcome.failure.logs, outcome.failure.unitsConsumed);
    ctx.onCommitted(outcome.record.signature, outcome.record.err);
    return outcome.record.signature;
  },
  simulateTransaction: (p, ctx) => {
    const cfg = config(p, 1);
    const replace = cfg['replaceRecentBlockhash'] === true;
    if (replace && cfg['sigVerify'] === true) throw invalidParams('sigVerify may not be used with replaceRecentBlockhash');
    const tx = decodeTransactionParam(p, cfg['encoding']);
    const sim = ctx.ledger.simulate(tx, { sigVerify: cfg['sigVerify'] === true, replaceRecentBlockhash: replace });
    if (sim.err === SIGNATURE_FAILURE) throw preflightFailure(sim.err, [], 0);
    return withContext(ctx, {
      err: sim.err,
      logs: sim.logs,
      accounts: null,
      unitsConsumed: sim.unitsConsumed,
      returnData: sim.returnData,
      innerInstructions: null,
      replacementBlockhash: replace ? ctx.ledger.latestBlockhash() : null,
    });
  },
  getSignatureStatuses: (p, ctx) => {
    const list = p[0];
    if (!Array.isArray(list) || list.length > MAX_SIGNATURE_STATUSES) throw invalidParams(`Invalid params: at most ${MAX_SIGNATURE_STATUSES} signatures`);
    // As on a node: without searchTransactionHistory only the recent status cache is searched;
    // with it, the whole kept history (an old payout is found by its id however much came after).
    const searchHistory = config(p, 1)['searchTransactionHistory'] === true;
    const oldest = ctx.ledger.slot - STATUS_CACHE_SLOTS;
    return withContext(
      ctx,
      list.map((s) => {
        const record = ctx.ledger.getRecord(signatureParam(s));
        return record === undefined || (!searchHistory && record.slot < oldest) ? null : statusJson(record);
      }),
    );
  },
  getFirstAvailableBlock: (_p, ctx) => ctx.ledger.firstAvailableSlot,
  minimumLedgerSlot: (_p, ctx) => ctx.ledger.firstAvailableSlot,
  getTransaction: (p, ctx) => {
    const signature = signatureParam(p[0]);
    // The second parameter may be a bare encoding string (old clients).
    const cfg = typeof p[1] === 'string' ? { encoding: p[1] } : config(p, 1);
    const record = ctx.ledger.getRecord(signature);
    return record === undefined ? null : transactionJson(record, cfg);
  },
  getSignaturesForAddress: (p, ctx) => {
    const addr = addressParam(p[0]);
    const cfg = config(p, 1);
    const limit = cfg['limit'] ?? MAX_SIGNATURES_FOR_ADDRESS_LIMIT;
    if (!Number.isSafeInteger(limit) || (limit as number) < 1 || (limit as number) > MAX_SIGNATURES_FOR_ADDRESS_LIMIT) {
      throw invalidParams(`Invalid limit; max ${MAX_SIGNATURES_FOR_ADDRESS_LIMIT}`);
    }
    const before = cfg['before'] === undefined ? undefined : signatureParam(cfg['before']);
    const until = cfg['until'] === undefined ? undefined : signatureParam(cfg['until']);
    return ctx.ledger.signaturesForAddress(addr, { limit: limit as number, before, until }).map((r) => ({
      signature: r.signature,
      slot: r.slot,
      err: r.err,
      memo: r.memo,
      blockTime: r.blockTime,
      confirmationStatus: 'finalized',
    }));
  },
};
