import { ErrorCode, RelaycastError } from './errors.js';

/**
 * STUN Binding (RFC 5389 / RFC 8489), the client side only: the request a relay sends to learn its
 * public address, and the decoder of the server's answer. No authentication, no FINGERPRINT on
 * requests (public STUN servers answer without either). Browser-safe: Uint8Array and DataView only.
 *
 * Every defect of an answer throws RC_ERR_STUN_MALFORMED (`details.reason` says which check failed,
 * for tests and logs, not for matching); a well-formed error response throws RC_ERR_STUN_ERROR_RESPONSE.
 */

/** Fixed value of bytes 4-7 of every RFC 5389 message; also the XOR key of XOR-MAPPED-ADDRESS. */
export const STUN_MAGIC_COOKIE = 0x2112a442;
/** Size of a STUN message header. */
export const STUN_HEADER_BYTES = 20;
/** Size of a STUN transaction id (RFC 5389: 96 bits). */
export const STUN_TRANSACTION_ID_BYTES = 12;

/** The STUN message types this client sends or reads. */
export const StunMessageType = {
  BINDING_REQUEST: 0x0001,
  BINDING_SUCCESS: 0x0101,
  BINDING_ERROR: 0x0111,
} as const;

/** The STUN attribute types this client reads (or recognises to skip). */
export const StunAttribute = {
  MAPPED_ADDRESS: 0x0001,
  MESSAGE_INTEGRITY: 0x0008,
  ERROR_CODE: 0x0009,
  MESSAGE_INTEGRITY_SHA256: 0x001c,
  XOR_MAPPED_ADDRESS: 0x0020,
  FINGERPRINT: 0x8028,
} as const;

/** The public address and port a STUN server saw the request come from. */
export interface StunMappedAddress {
  /** Dotted quad for IPv4; RFC 5952 text for IPv6 (IPv4-mapped ones as `::ffff:a.b.c.d`). */
  address: string;
  port: number;
  family: 4 | 6;
}

const FAMILY_IPV4 = 0x01;
const FAMILY_IPV6 = 0x02;
const FINGERPRINT_XOR = 0x5354554e;
/** RFC 8489 §14.8: the reason phrase is at most 763 bytes; more is a broken server, cut for the log. */
const MAX_REASON_BYTES = 763;

const lenientDecoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

function malformed(reason: string, message: string, details: Record<string, unknown> = {}): RelaycastError {
  return new RelaycastError(ErrorCode.STUN_MALFORMED, `STUN response: ${message}`, { details: { reason, ...details } });
}

function checkTransactionId(transactionId: Uint8Array): void {
  if (transactionId.byteLength !== STUN_TRANSACTION_ID_BYTES) {
    throw malformed('transaction-id', `transaction id must be ${STUN_TRANSACTION_ID_BYTES} bytes`);
  }
}

/** A Binding request: the 20-byte header and no attributes. */
export function encodeStunBindingRequest(transactionId: Uint8Array): Uint8Array<ArrayBuffer> {
  checkTransactionId(transactionId);
  const bytes = new Uint8Array(STUN_HEADER_BYTES);
  const view = new DataView(bytes.buffer);
  view.setUint16(0, StunMessageType.BINDING_REQUEST);
  view.setUint16(2, 0);
  view.setUint32(4, STUN_MAGIC_COOKIE);
  bytes.set(transactionId, 8);
  return bytes;
}

/**
 * Decodes the answer to a Binding request sent with `expectedTransactionId`: the mapped (public)
 * address the server saw. Prefers XOR-MAPPED-ADDRESS, falls back to MAPPED-ADDRESS (pre-5389
 * servers). `bytes` must be exactly one message (one UDP datagram).
 */
export function decodeStunBindingResponse(bytes: Uint8Array, expectedTransactionId: Uint8Array): StunMappedAddress {
  checkTransactionId(expectedTransactionId);
  if (bytes.byteLength < STUN_HEADER_BYTES) throw malformed('truncated', `${bytes.byteLength} bytes, shorter than the header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const type = view.getUint16(0);
  // The two zero bits set STUN apart from RTP/DTLS on a shared port: anything else is not STUN.
  if ((type & 0xc000) !== 0) throw malformed('not-stun', 'leading bits are not zero');
  if (view.getUint32(4) !== STUN_MAGIC_COOKIE) throw malformed('cookie', 'wrong magic cookie');
  const length = view.getUint16(2);
  if (length % 4 !== 0) throw malformed('length', `message length ${length} is not a multiple of 4`);
  if (STUN_HEADER_BYTES + length !== bytes.byteLength) {
    throw malformed('length', `message length ${length} does not match the ${bytes.byteLength - STUN_HEADER_BYTES} bytes after the header`);
  }
  for (let i = 0; i < STUN_TRANSACTION_ID_BYTES; i++) {
    if (bytes[8 + i] !== expectedTransactionId[i]) throw malformed('transaction', 'transaction id does not match the request');
  }
  if (type !== StunMessageType.BINDING_SUCCESS && type !== StunMessageType.BINDING_ERROR) {
    throw malformed('type', `message type 0x${type.toString(16).padStart(4, '0')} is not a Binding response`, { messageType: type });
  }

  let xorMapped: StunMappedAddress | undefined;
  let mapped: StunMappedAddress | undefined;
  let errorCode: { code: number; reason: string } | undefined;
  // RFC 8489 §14.5/14.6: only FINGERPRINT may follow MESSAGE-INTEGRITY, and nothing follows FINGERPRINT.
  let integritySeen = false;
  let offset = STUN_HEADER_BYTES;
  while (offset < bytes.byteLength) {
    if (offset + 4 > bytes.byteLength) throw malformed('attribute', 'attribute header runs past the message');
    const attrType = view.getUint16(offset);
    const attrLength = view.getUint16(offset + 2);
    const valueStart = offset + 4;
    const next = valueStart + ((attrLength + 3) & ~3);
    if (next > bytes.byteLength) throw malformed('attribute', `attribute 0x${attrType.toString(16)} of ${attrLength} bytes runs past the message`);
    const value = bytes.subarray(valueStart, valueStart + attrLength);
    if (attrType === StunAttribute.FINGERPRINT) {
      if (attrLength !== 4) throw malformed('fingerprint', 'FINGERPRINT is not 4 bytes');
      if (next !== bytes.byteLength) throw malformed('fingerprint', 'FINGERPRINT is not the last attribute');
      const expected = (crc32(bytes.subarray(0, offset)) ^ FINGERPRINT_XOR) >>> 0;
      if (view.getUint32(valueStart) !== expected) throw malformed('fingerprint', 'FINGERPRINT does not match');
    } else if (!integritySeen) {
      switch (attrType) {
        case StunAttribute.XOR_MAPPED_ADDRESS:
          // RFC 8489 §5: only the first of repeated attributes counts.
          xorMapped ??= decodeAddress(value, bytes.subarray(4, STUN_HEADER_BYTES));
          break;
        case StunAttribute.MAPPED_ADDRESS:
          mapped ??= decodeAddress(value, undefined);
          break;
        case StunAttribute.ERROR_CODE:
          errorCode ??= decodeErrorCode(value);
          break;
        case StunAttribute.MESSAGE_INTEGRITY:
        case StunAttribute.MESSAGE_INTEGRITY_SHA256:
          integritySeen = true;
          break;
        default:
          // Unknown comprehension-required attributes should fail the transaction (RFC 8489 §7.3.3),
          // but servers still send RFC 3489's SOURCE-ADDRESS/CHANGED-ADDRESS (0x0004/0x0005) and
          // the address is all we need, so anything unknown is skipped.
          break;
      }
    }
    offset = next;
  }

  if (type === StunMessageType.BINDING_ERROR) {
    if (errorCode === undefined) throw malformed('error-code', 'error response without ERROR-CODE');
    throw new RelaycastError(ErrorCode.STUN_ERROR_RESPONSE, `STUN server answered ${errorCode.code} ${errorCode.reason}`.trimEnd(), {
      details: { stunCode: errorCode.code, reason: errorCode.reason },
    });
  }
  const result = xorMapped ?? mapped;
  if (result === undefined) throw malformed('no-address', 'success response without XOR-MAPPED-ADDRESS or MAPPED-ADDRESS');
  return result;
}

/** MAPPED-ADDRESS layout; with `xorKey` (cookie + transaction id) the XOR-MAPPED-ADDRESS one. */
function decodeAddress(value: Uint8Array, xorKey: Uint8Array | undefined): StunMappedAddress {
  if (value.byteLength < 4) throw malformed('address', 'address attribute shorter than 4 bytes');
  const family = value[1];
  const portBytes = ((value[2] as number) << 8) | (value[3] as number);
  const port = xorKey === undefined ? portBytes : portBytes ^ (STUN_MAGIC_COOKIE >>> 16);
  const addressLength = family === FAMILY_IPV4 ? 4 : family === FAMILY_IPV6 ? 16 : -1;
  if (addressLength < 0) throw malformed('address', `unknown address family ${family}`, { family });
  if (value.byteLength !== 4 + addressLength) {
    throw malformed('address', `IPv${addressLength === 4 ? 4 : 6} address attribute of ${value.byteLength} bytes`);
  }
  const raw = new Uint8Array(addressLength);
  for (let i = 0; i < addressLength; i++) raw[i] = (value[4 + i] as number) ^ (xorKey === undefined ? 0 : (xorKey[i] as number));
  return addressLength === 4 ? { address: raw.join('.'), port, family: 4 } : { address: formatIpv6(raw), port, family: 6 };
}

function decodeErrorCode(value: Uint8Array): { code: number; reason: string } {
  if (value.byteLength < 4) throw malformed('error-code', 'ERROR-CODE shorter than 4 bytes');
  const errorClass = (value[2] as number) & 0x07;
  const number = value[3] as number;
  if (errorClass < 3 || errorClass > 6 || number > 99) throw malformed('error-code', `ERROR-CODE class ${errorClass} number ${number} out of range`);
  // The phrase is only shown to people, so invalid UTF-8 becomes U+FFFD rather than a failure.
  const reason = lenientDecoder.decode(value.subarray(4, 4 + MAX_REASON_BYTES));
  return { code: errorClass * 100 + number, reason };
}

/** RFC 5952 text: lower case, no leading zeros, the longest run (≥ 2) of zero groups as `::`. */
function formatIpv6(raw: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((raw[i] as number) << 8) | (raw[i + 1] as number));
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${raw[12]}.${raw[13]}.${raw[14]}.${raw[15]}`;
  }
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (gs: number[]): string => gs.map((g) => g.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLength))}`;
}

let crcTable: Uint32Array | undefined;

/** CRC-32 (ISO 3309, as zlib), for FINGERPRINT; the table is built on first use. */
function crc32(bytes: Uint8Array): number {
  if (crcTable === undefined) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (const b of bytes) crc = (crcTable[(crc ^ b) & 0xff] as number) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
