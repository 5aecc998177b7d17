import { encodeBase58 } from '@relaycast/protocol';
import { formatDecimalAmount } from '../amounts.js';

/** The two SPL token programs litesvm preloads; their account layouts share the first 165 bytes. */
export const TOKEN_PROGRAM_ID = 'TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA';
export const TOKEN_2022_PROGRAM_ID = 'TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb';

const TOKEN_ACCOUNT_BYTES = 165;
const MINT_BYTES = 82;
/** Token-2022 puts an account-type byte after the base layout when extensions follow. */
const ACCOUNT_TYPE_OFFSET = 165;
const ACCOUNT_TYPE_MINT = 1;

export interface TokenAccountFields {
  mint: string;
  owner: string;
  amount: bigint;
  programId: string;
}

export interface UiTokenAmount {
  amount: string;
  decimals: number;
  uiAmount: number | null;
  uiAmountString: string;
}

function isTokenProgram(owner: string): boolean {
  return owner === TOKEN_PROGRAM_ID || owner === TOKEN_2022_PROGRAM_ID;
}

/** Reads an initialised SPL token account; undefined for anything else (mints, other programs' data). */
export function parseTokenAccount(owner: string, data: Uint8Array): TokenAccountFields | undefined {
  if (!isTokenProgram(owner) || data.byteLength < TOKEN_ACCOUNT_BYTES) return undefined;
  if (data.byteLength > TOKEN_ACCOUNT_BYTES && data[ACCOUNT_TYPE_OFFSET] === ACCOUNT_TYPE_MINT) return undefined;
  const state = data[108];
  if (state === 0) return undefined;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return {
    mint: encodeBase58(data.subarray(0, 32)),
    owner: encodeBase58(data.subarray(32, 64)),
    amount: view.getBigUint64(64, true),
    programId: owner,
  };
}

/** Decimals of an initialised mint; undefined when the account is not one. */
export function parseMintDecimals(owner: string, data: Uint8Array): number | undefined {
  if (!isTokenProgram(owner) || data.byteLength < MINT_BYTES) return undefined;
  if (data.byteLength === TOKEN_ACCOUNT_BYTES) return undefined;
  if (data[45] !== 1) return undefined; // is_initialized
  return data[44];
}

/** The RPC's uiTokenAmount: exact decimal string plus its (lossy) float. */
export function uiTokenAmount(amount: bigint, decimals: number): UiTokenAmount {
  const uiAmountString = formatDecimalAmount(amount, decimals);
  return { amount: amount.toString(), decimals, uiAmount: Number(uiAmountString), uiAmountString };
}
