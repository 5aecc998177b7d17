import {
  ErrorCode,
  RelaycastError,
  concatBytes,
  fromBase64,
  isErrorCode,
  isRelaycastError,
  throwIfAborted,
  toBase64,
  utf8Encode,
} from '@relaycast/protocol';
import { DEFAULT_SETTLER_TIMEOUT_MS, REDEEM_MAX_ITEMS, SETTLER_MAX_RESPONSE_BYTES } from '../constants.js';

/** Domain of the relay's signature over a redeem request body (docs/PAYMENTS.md). */
export const REDEEM_SIGNING_DOMAIN = 'relaycast-redeem-v1\0';
export const REDEEM_SIGNATURE_HEADER = 'x-relaycast-signature';

/** Signs as the relay (its keypair); the secret stays inside. */
export interface RelayPaymentSigner {
  readonly relayId: string;
  readonly publicKey: Uint8Array;
  sign(message: Uint8Array): Uint8Array;
}

/** `GET /v1/info`. */
export interface SettlerInfo {
  payer: string;
  mint: string;
  decimals: number;
  treasuryTokenAccount: string;
}

export interface RejectedItem {
  index: number;
  code: string;
}

/** The settler's credit for one accepted item (docs/PAYMENTS.md "Credited amounts"). */
export interface CreditedItem {
  index: number;
  /** Cumulative base units credited for this (relay, session, grant). */
  credited: bigint;
  /** receipt amount − credited, with the reason. */
  shortfall?: { code: string; amount: bigint } | undefined;
}

export type RedeemAnswer =
  | { status: 'nothing-owed'; cumulativePaid: bigint; rejected: RejectedItem[]; credited: CreditedItem[] }
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
      credited: CreditedItem[];
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

const U64_RE = /^(0|[1-9][0-9]{0,19})$/;

function u64(v: unknown, name: string): bigint {
  if (typeof v !== 'string' || !U64_RE.test(v)) throw unavailable(`settler answered a malformed ${name}`);
  return BigInt(v);
}

function rejectedList(v: unknown): RejectedItem[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw unavailable('settler answered a malformed rejected list');
  return v.map((r: unknown) => {
    const o = r as { index?: unknown; code?: unknown } | null;
    if (o === null || typeof o !== 'object' || !Number.isSafeInteger(o.index) || typeof o.code !== 'string') throw unavailable('settler answered a malformed rejected item');
    return { index: o.index as number, code: o.code };
  });
}

function creditedList(v: unknown): CreditedItem[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw unavailable('settler answered a malformed credited list');
  return v.map((c: unknown) => {
    const o = c as { index?: unknown; credited?: unknown; shortfall?: unknown } | null;
    if (o === null || typeof o !== 'object' || !Number.isSafeInteger(o.index)) throw unavailable('settler answered a malformed credited item');
    const item: CreditedItem = { index: o.index as number, credited: u64(o.credited, 'credited amount') };
    if (o.shortfall !== undefined && o.shortfall !== null) {
      const sf = o.shortfall as { code?: unknown; amount?: unknown };
      if (typeof sf !== 'object' || typeof sf.code !== 'string') throw unavailable('settler answered a malformed shortfall');
      item.shortfall = { code: sf.code, amount: u64(sf.amount, 'shortfall amount') };
    }
    return item;
  });
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
    if (this.base.protocol !== 'http:' && this.base.protocol !== 'https:') throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'settler URL must be http:// or https://');
    this.timeoutMs = options.timeoutMs ?? DEFAULT_SETTLER_TIMEOUT_MS;
  }

  async info(signal: AbortSignal): Promise<SettlerInfo> {
    const body = (await this.call('GET', 'v1/info', undefined, signal)) as Record<string, unknown>;
    const { payer, mint, decimals, treasuryTokenAccount } = body;
    if (typeof payer !== 'string' || typeof mint !== 'string' || typeof treasuryTokenAccount !== 'string' || !Number.isSafeInteger(decimals)) {
      throw unavailable('settler answered a malformed /v1/info');
    }
    return { payer, mint, decimals: decimals as number, treasuryTokenAccount };
  }

  /**
   * `GET /v1/relays/:relay/payouts`: the relay's confirmed payouts as the settler records them
   * (ids to check on chain; the relay counts none it has not verified itself).
   */
  async payouts(signal: AbortSignal): Promise<{ signature: string; amount: bigint; cumulativePaid: bigint }[]> {
    const body = (await this.call('GET', `v1/relays/${this.options.signer.relayId}/payouts`, undefined, signal)) as Record<string, unknown>;
    const list = body['payouts'];
    if (!Array.isArray(list)) throw unavailable('settler answered a malformed payout list');
    return list.map((p: unknown) => {
      const o = p as { signature?: unknown; amount?: unknown; cumulativePaid?: unknown } | null;
      if (o === null || typeof o !== 'object' || typeof o.signature !== 'string' || !/^[1-9A-HJ-NP-Za-km-z]{64,90}$/.test(o.signature)) {
        throw unavailable('settler answered a malformed payout');
      }
      return { signature: o.signature, amount: u64(o.amount, 'amount'), cumulativePaid: u64(o.cumulativePaid, 'cumulativePaid') };
    });
  }

  /** `POST /v1/redeem` with the relay's newest receipts (at most REDEEM_MAX_ITEMS). */
  async redeem(items: readonly RedeemItemBytes[], signal: AbortSignal): Promise<RedeemAnswer> {
    if (items.length > REDEEM_MAX_ITEMS) throw new RelaycastError(ErrorCode.CONFIG_INVALID, `at most ${REDEEM_MAX_ITEMS} items per redeem request`);
    // fetch sends a string as UTF-8: exactly the bytes signed below.
    const text = JSON.stringify({
      relay: this.options.signer.relayId,
      requestedAtMs: Date.now(),
      items: items.map((i) => ({
        grant: toBase64(i.signedGrant),
        receipt: toBase64(i.signedReceipt),
        ...(i.assignment === undefined ? {} : { assignment: toBase64(i.assignment) }),
      })),
    });
    const signature = this.options.signer.sign(concatBytes([utf8Encode(REDEEM_SIGNING_DOMAIN), utf8Encode(text)]));
    const body = (await this.call('POST', 'v1/redeem', text, signal, { [REDEEM_SIGNATURE_HEADER]: toBase64(signature) })) as Record<string, unknown>;
    const rejected = rejectedList(body['rejected']);
    const credited = creditedList(body['credited']);
    if (body['status'] === 'nothing-owed') return { status: 'nothing-owed', cumulativePaid: u64(body['cumulativePaid'], 'cumulativePaid'), rejected, credited };
    if (body['status'] !== 'payout') throw unavailable('settler answered an unknown status');
    const tx = typeof body['transaction'] === 'string' ? fromBase64(body['transaction']) : undefined;
    const root = body['merkleRoot'];
    const lvbh = body['lastValidBlockHeight'];
    if (tx === undefined || typeof body['signature'] !== 'string' || typeof root !== 'string' || !/^[0-9a-f]{64}$/.test(root) || !Number.isSafeInteger(lvbh)) {
      throw unavailable('settler answered a malformed payout');
    }
    return {
      status: 'payout',
      transaction: tx,
      signature: body['signature'],
      amount: u64(body['amount'], 'amount'),
      cumulativePaid: u64(body['cumulativePaid'], 'cumulativePaid'),
      merkleRoot: root,
      lastValidBlockHeight: lvbh as number,
      rejected,
      credited,
    };
  }

  private async call(method: string, path: string, body: string | undefined, signal: AbortSignal, headers: Record<string, string> = {}): Promise<unknown> {
    throwIfAborted(signal);
    const url = new URL(path, this.base);
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body,
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
    const e = (parsed as { error?: { code?: unknown; message?: unknown } } | null)?.error;
    const code = typeof e?.code === 'string' && isErrorCode(e.code) ? e.code : undefined;
    const message = `settler ${url.origin} answered ${res.status}: ${typeof e?.message === 'string' ? e.message : 'error'}`;
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
  return new TextDecoder().decode(concatBytes(parts));
}
