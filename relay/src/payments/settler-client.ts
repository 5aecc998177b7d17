import { ErrorCode, RelaycastError, concatBytes, fromBase64, isErrorCode, isRelaycastError, throwIfAborted, toBase64, utf8Decode } from '@relaycast/protocol';
import {
  REDEEM_SIGNATURE_HEADER,
  SETTLER_PATHS,
  decodeRedeemResponse,
  decodeRelayPayoutsResponse,
  decodeSettlerError,
  decodeSettlerInfo,
  encodeRedeemBody,
  redeemSigningBytes,
  redeemItemsFitting,
  relayPayoutsPath,
  type RejectedItem,
  type SettlerInfo,
} from '@relaycast/protocol/settlement';
import { DEFAULT_SETTLER_TIMEOUT_MS, SETTLER_MAX_RESPONSE_BYTES } from '../constants.js';
import type { ItemCredit } from './receipt-store.js';

/** Signs as the relay (its keypair); the secret stays inside. */
export interface RelayPaymentSigner {
  readonly relayId: string;
  readonly publicKey: Uint8Array;
  sign(message: Uint8Array): Uint8Array;
}

/** A redeem answer with its amounts as numbers and its transaction as bytes (wire format: RedeemResponse). */
export type RedeemAnswer =
  | { status: 'nothing-owed'; cumulativePaid: bigint; rejected: RejectedItem[]; credited: ({ index: number } & ItemCredit)[] }
  | {
      status: 'payout';
      /** Fully signed by the treasury owner, its fee payer; the relay signs nothing. */
      transaction: Uint8Array;
      /** The transaction id (the treasury owner's fee-payer signature), base58. */
      signature: string;
      amount: bigint;
      cumulativePaid: bigint;
      merkleRoot: string;
      lastValidBlockHeight: number;
      rejected: RejectedItem[];
      credited: ({ index: number } & ItemCredit)[];
    };

export interface RedeemItemBytes {
  signedGrant: Uint8Array;
  signedReceipt: Uint8Array;
  /** The tracker's signed assignment the grant was bound with (the settler requires it). */
  assignment?: Uint8Array | undefined;
}

export interface SettlerClientOptions {
  /** Settlement service base URL (http:// or https://). Required. */
  baseUrl: string;
  /** The relay's key: it authenticates redeem requests. Required. */
  signer: RelayPaymentSigner;
  /** Time one request may take. Default: DEFAULT_SETTLER_TIMEOUT_MS (15 s). */
  timeoutMs?: number | undefined;
}

const unavailable = (message: string, cause?: unknown): RelaycastError =>
  new RelaycastError(ErrorCode.SETTLEMENT_UNAVAILABLE, message, cause === undefined ? {} : { cause });

/** Decodes an answer; a malformed one is the settler's trouble (RC_ERR_SETTLEMENT_UNAVAILABLE, retried). */
function decoded<T>(what: string, decode: () => T): T {
  try {
    return decode();
  } catch (err) {
    throw unavailable(`settler answered a malformed ${what}: ${(err as Error).message}`, err);
  }
}

function toAnswer(r: ReturnType<typeof decodeRedeemResponse>): RedeemAnswer {
  const rejected = r.rejected ?? [];
  const credited = r.credited.map((c) => ({
    index: c.index,
    credited: BigInt(c.credited),
    ...(c.shortfall === undefined ? {} : { shortfall: { code: c.shortfall.code, amount: BigInt(c.shortfall.amount) } }),
  }));
  if (r.status === 'nothing-owed') return { status: 'nothing-owed', cumulativePaid: BigInt(r.cumulativePaid), rejected, credited };
  return {
    status: 'payout',
    transaction: fromBase64(r.transaction)!,
    signature: r.signature,
    amount: BigInt(r.amount),
    cumulativePaid: BigInt(r.cumulativePaid),
    merkleRoot: r.merkleRoot,
    lastValidBlockHeight: r.lastValidBlockHeight,
    rejected,
    credited,
  };
}

/** HTTP client of one payer's settlement service (docs/PAYMENTS.md "Settlement service HTTP API"). */
export class SettlerClient {
  private readonly base: URL;
  private readonly timeoutMs: number;

  constructor(private readonly options: SettlerClientOptions) {
    try {
      this.base = new URL(options.baseUrl.endsWith('/') ? options.baseUrl : `${options.baseUrl}/`);
    } catch {
      throw new RelaycastError(ErrorCode.CONFIG_INVALID, `settler URL "${options.baseUrl}" is not a URL`);
    }
    if (this.base.protocol !== 'http:' && this.base.protocol !== 'https:')
      throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'settler URL must be http:// or https://');
    this.timeoutMs = options.timeoutMs ?? DEFAULT_SETTLER_TIMEOUT_MS;
  }

  async info(signal: AbortSignal): Promise<SettlerInfo> {
    const body = await this.call('GET', SETTLER_PATHS.info, undefined, signal);
    return decoded(SETTLER_PATHS.info, () => decodeSettlerInfo(body));
  }

  /**
   * `GET /v1/relays/:relay/payouts`: the relay's confirmed payouts as the settler records them
   * (ids to check on chain; the relay counts none it has not verified itself).
   */
  async payouts(signal: AbortSignal): Promise<{ signature: string; amount: bigint; cumulativePaid: bigint }[]> {
    const path = relayPayoutsPath(this.options.signer.relayId);
    const body = await this.call('GET', path, undefined, signal);
    const list = decoded('payout list', () => decodeRelayPayoutsResponse(body)).payouts;
    return list.map((p) => ({ signature: p.signature, amount: BigInt(p.amount), cumulativePaid: BigInt(p.cumulativePaid) }));
  }

  /**
   * `POST /v1/redeem` with the relay's newest receipts: the first of `items` that one request
   * carries (redeemItemsFitting: the settler's body and item limits); `sent` says how many, the
   * answer's indexes are theirs, and the caller sends the rest next.
   */
  async redeem(items: readonly RedeemItemBytes[], signal: AbortSignal): Promise<{ sent: number; answer: RedeemAnswer }> {
    const request = {
      relay: this.options.signer.relayId,
      requestedAtMs: Date.now(),
      items: items.map((i) => ({
        grant: toBase64(i.signedGrant),
        receipt: toBase64(i.signedReceipt),
        ...(i.assignment === undefined ? {} : { assignment: toBase64(i.assignment) }),
      })),
    };
    const sent = redeemItemsFitting(request);
    if (sent === 0 && items.length > 0) throw new RelaycastError(ErrorCode.MESSAGE_TOO_LARGE, 'one redeem item alone exceeds the settler’s body limit');
    const raw = encodeRedeemBody({ ...request, items: request.items.slice(0, sent) });
    const signature = this.options.signer.sign(redeemSigningBytes(raw));
    const body = await this.call('POST', SETTLER_PATHS.redeem, raw, signal, { [REDEEM_SIGNATURE_HEADER]: toBase64(signature) });
    return { sent, answer: toAnswer(decoded('redeem answer', () => decodeRedeemResponse(body))) };
  }

  /** `path` is one of SETTLER_PATHS (absolute); resolved without its leading slash, so a base URL's path prefix is kept. */
  private async call(method: string, path: string, body: Uint8Array | undefined, signal: AbortSignal, headers: Record<string, string> = {}): Promise<unknown> {
    throwIfAborted(signal);
    const url = new URL(path.replace(/^\//, ''), this.base);
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : new Uint8Array(body),
        redirect: 'error',
        signal: AbortSignal.any([signal, AbortSignal.timeout(this.timeoutMs)]),
      });
    } catch (err) {
      throwIfAborted(signal);
      throw unavailable(`settler ${url.origin} did not answer: ${(err as Error).message}`, err);
    }
    let text: string;
    try {
      text = await readLimited(res, SETTLER_MAX_RESPONSE_BYTES);
    } catch (err) {
      throwIfAborted(signal);
      if (isRelaycastError(err)) throw err;
      throw unavailable(`settler ${url.origin} answer broke off: ${(err as Error).message}`, err);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw unavailable(`settler ${url.origin} answered ${res.status} with a body that is not JSON`);
    }
    if (res.ok && typeof parsed === 'object' && parsed !== null) return parsed;
    const e = decodeSettlerError(parsed);
    const code = e !== undefined && isErrorCode(e.code) ? e.code : undefined;
    const message = `settler ${url.origin} answered ${res.status}: ${e?.message ?? 'error'}`;
    // Server-side trouble is worth retrying; a refusal of this request (4xx) keeps the settler's code.
    if (res.status >= 500 || code === undefined) throw unavailable(message);
    throw new RelaycastError(code, message, { details: { status: res.status } });
  }
}

async function readLimited(res: Response, maxBytes: number): Promise<string> {
  const reader = res.body?.getReader();
  if (reader === undefined) return '';
  const parts: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw new RelaycastError(ErrorCode.SETTLEMENT_UNAVAILABLE, `settler answer exceeds ${maxBytes} bytes`);
    }
    parts.push(value);
  }
  return utf8Decode(concatBytes(parts));
}
