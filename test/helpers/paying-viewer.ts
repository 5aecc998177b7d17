import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import {
  FrameType,
  amountForBytes,
  decodeBase58,
  decodeSignedGrant,
  encodeBase58,
  encodeFrame,
  encodeSignedReceipt,
  fromBase64,
  type RelayFrame,
  type SignedGrant,
} from '@relaycast/protocol';
import { rawPublicKey, signBindProof, signReceipt } from '@relaycast/protocol/node';
import { SETTLER_PATHS } from '@relaycast/protocol/settlement';
import { openRawChannel, type RawChannel } from './raw-viewer.js';

/** POST /v1/grants for `key` under `--grant-auth open`; the signed grant's bytes, or the refusal. */
export async function requestGrant(settlerUrl: string, key: KeyObject, scope: string): Promise<{ status: number; grant?: Uint8Array; code?: string }> {
  const res = await fetch(`${settlerUrl}${SETTLER_PATHS.grants}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ sessionKey: encodeBase58(rawPublicKey(key)), scope }),
  });
  const body = (await res.json()) as { grant?: string; error?: { code: string } };
  if (res.status !== 200 || body.grant === undefined) return { status: res.status, code: body.error?.code };
  return { status: 200, grant: fromBase64(body.grant) as Uint8Array };
}

/**
 * A viewer session as the SDK runs it, by hand: a session key, a grant from the settler, the
 * tracker session bound with it (so the shortlist carries the tracker's assignment), a data channel
 * to one relay bound with BIND over the relay's CHALLENGE, and running receipt totals.
 */
export class PayingViewer {
  grant!: SignedGrant;
  sequence = 0;
  /** DATA bytes received (what receipts count). */
  bytes = 0;
  /** ERROR frames the relay sent on request id 0 (refused BIND/RECEIPT), by code, in order. */
  readonly channelErrors: string[] = [];
  challenge: Uint8Array | undefined;
  private nextId = 1;

  private constructor(
    readonly channel: RawChannel,
    readonly key: KeyObject,
    readonly grantBytes: Uint8Array,
  ) {
    this.grant = decodeSignedGrant(grantBytes);
  }

  /** Gets a grant for a fresh key (or `key`), binds its tracker session, opens a channel to `relayId`, and answers the CHALLENGE with BIND unless `bind` is false. */
  static async open(o: {
    trackerUrl: string;
    swarmId: string;
    relayId: string;
    settlerUrl: string;
    scope: string;
    /** The session (key and its grant) of another channel: the same viewer on a second relay. Default: a fresh key and grant. */
    session?: { key: KeyObject; grant: Uint8Array } | undefined;
    bind?: boolean;
  }): Promise<PayingViewer> {
    let key: KeyObject;
    let grant: Uint8Array;
    if (o.session !== undefined) {
      ({ key, grant } = o.session);
    } else {
      key = generateKeyPairSync('ed25519').privateKey;
      const got = await requestGrant(o.settlerUrl, key, o.scope);
      if (got.grant === undefined) throw new Error(`grant refused: ${got.status} ${got.code ?? ''}`);
      grant = got.grant;
    }
    const channel = await openRawChannel(o.trackerUrl, o.swarmId, o.relayId, { signedGrant: grant, key });
    const v = new PayingViewer(channel, key, grant);
    await v.readChallenge();
    if (o.bind !== false) v.bind();
    return v;
  }

  /** A channel to `relayId` with no session at all (an anonymous party); no BIND is sent. */
  static async anonymous(o: { trackerUrl: string; swarmId: string; relayId: string }): Promise<RawChannel & { challenge: Uint8Array }> {
    const channel = await openRawChannel(o.trackerUrl, o.swarmId, o.relayId);
    const first = await channel.nextFrame(10_000);
    if (first.type !== FrameType.CHALLENGE) throw new Error(`expected a CHALLENGE first, got frame type ${first.type}`);
    return Object.assign(channel, { challenge: first.challenge });
  }

  private async readChallenge(): Promise<void> {
    const first = await this.channel.nextFrame(10_000);
    if (first.type !== FrameType.CHALLENGE) throw new Error(`expected a CHALLENGE first, got frame type ${first.type}`);
    this.challenge = first.challenge;
  }

  /** BIND with this session's grant, the tracker's assignment and the session key's proof over the channel's challenge. */
  bind(): void {
    if (this.challenge === undefined) throw new Error('no challenge yet');
    const proof = signBindProof(this.challenge, decodeBase58(this.channel.relayId), this.key);
    this.channel.send(encodeFrame({ type: FrameType.BIND, requestId: 0, signedGrant: this.grantBytes, signedAssignment: this.channel.assignment, proof }));
  }

  /** Fetches `url` through the relay and returns the final frame; counts the DATA bytes. */
  async fetch(url: string, range?: { start: number; end: number }): Promise<RelayFrame> {
    const id = this.nextId++;
    this.channel.send(encodeFrame({ type: FrameType.REQUEST, requestId: id, url, range }));
    for (;;) {
      const f = await this.channel.nextFrame(20_000);
      if (f.requestId === 0 && f.type === FrameType.ERROR) {
        this.channelErrors.push(f.code);
        continue;
      }
      if (f.requestId !== id) continue;
      if (f.type === FrameType.DATA) this.bytes += f.chunk.byteLength;
      if (f.type === FrameType.END || f.type === FrameType.ERROR || f.type === FrameType.ABSENT) return f;
    }
  }

  /** Signs and sends a receipt for everything received so far; returns its amount. */
  sendReceipt(): bigint {
    this.sequence++;
    const cumulativeAmount = amountForBytes(this.bytes, this.grant.grant.pricePerGiB);
    const signed = signReceipt(
      {
        version: 1,
        grantNonce: this.grant.grant.nonce,
        sessionKey: this.grant.grant.sessionKey,
        relay: decodeBase58(this.channel.relayId),
        sequence: this.sequence,
        cumulativeBytes: this.bytes,
        cumulativeAmount,
        timestampMs: Date.now(),
      },
      this.key,
    );
    this.channel.send(encodeFrame({ type: FrameType.RECEIPT, requestId: 0, signedReceipt: encodeSignedReceipt(signed) }));
    return cumulativeAmount;
  }

  /** This viewer's session, to open it on another relay. */
  get session(): { key: KeyObject; grant: Uint8Array } {
    return { key: this.key, grant: this.grantBytes };
  }

  close(): void {
    this.channel.close();
  }
}
