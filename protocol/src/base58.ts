import { ErrorCode, RelaycastError } from './errors.js';

/** Bitcoin/Solana base58 alphabet. */
const ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
const INDEX = new Int8Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) INDEX[ALPHABET.charCodeAt(i)] = i;

/** Encodes bytes as base58 (the textual form of Solana addresses and relay ids). */
export function encodeBase58(bytes: Uint8Array): string {
  let zeros = 0;
  while (zeros < bytes.length && bytes[zeros] === 0) zeros++;
  const digits: number[] = [];
  for (let i = zeros; i < bytes.length; i++) {
    let carry = bytes[i] as number;
    for (let j = 0; j < digits.length; j++) {
      carry += (digits[j] as number) << 8;
      digits[j] = carry % 58;
      carry = (carry / 58) | 0;
    }
    while (carry > 0) {
      digits.push(carry % 58);
      carry = (carry / 58) | 0;
    }
  }
  let out = '1'.repeat(zeros);
  for (let i = digits.length - 1; i >= 0; i--) out += ALPHABET[digits[i] as number];
  return out;
}

/** Decodes base58; throws RC_ERR_MESSAGE_FIELD on any character outside the alphabet. */
export function decodeBase58(text: string): Uint8Array {
  let zeros = 0;
  while (zeros < text.length && text[zeros] === '1') zeros++;
  const bytes: number[] = [];
  for (let i = zeros; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const value = c < 128 ? (INDEX[c] as number) : -1;
    if (value < 0) throw new RelaycastError(ErrorCode.MESSAGE_FIELD, 'invalid base58 character');
    let carry = value;
    for (let j = 0; j < bytes.length; j++) {
      carry += (bytes[j] as number) * 58;
      bytes[j] = carry & 0xff;
      carry >>= 8;
    }
    while (carry > 0) {
      bytes.push(carry & 0xff);
      carry >>= 8;
    }
  }
  const out = new Uint8Array(zeros + bytes.length);
  for (let i = 0; i < bytes.length; i++) out[out.length - 1 - i] = bytes[i] as number;
  return out;
}

/** Decodes a base58 ed25519 public key (a Solana address / relay id) of exactly 32 bytes. */
export function decodePublicKey(text: string): Uint8Array {
  if (text.length < 32 || text.length > 44) {
    throw new RelaycastError(ErrorCode.MESSAGE_FIELD, 'public key must be 32-44 base58 characters');
  }
  const bytes = decodeBase58(text);
  if (bytes.length !== 32) throw new RelaycastError(ErrorCode.MESSAGE_FIELD, 'public key must decode to 32 bytes');
  return bytes;
}
