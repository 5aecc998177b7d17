/**
 * TEST ONLY: a payer and viewer sessions that sign grants and receipts the way the settlement
 * service and the SDK do, for the relay's payment tests. Not exported from the package.
 */
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import {
  FrameType,
  amountForBytes,
  encodeBase58,
  encodeSignedAssignment,
  encodeSignedGrant,
  encodeSignedReceipt,
  type Assignment,
  type BindFrame,
  type Receipt,
  type SessionGrant,
} from '@relaycast/protocol';
import { rawPublicKey, signAssignment, signBindProof, signGrant, signReceipt } from '@relaycast/protocol/node';

export const TEST_SCOPE = 'https://origin.test/v/';

export interface TestPayer {
  key: KeyObject;
  publicKey: Uint8Array;
  id: string;
  mint: Uint8Array;
}

export function testPayer(mint: Uint8Array = new Uint8Array(randomBytes(32))): TestPayer {
  const key = generateKeyPairSync('ed25519').privateKey;
  const publicKey = rawPublicKey(key);
  return { key, publicKey, id: encodeBase58(publicKey), mint };
}

/** A tracker key that signs assignments (session → relay). */
export interface TestTracker {
  key: KeyObject;
  publicKey: Uint8Array;
  id: string;
}

export function testTracker(): TestTracker {
  const key = generateKeyPairSync('ed25519').privateKey;
  const publicKey = rawPublicKey(key);
  return { key, publicKey, id: encodeBase58(publicKey) };
}

/** One viewer session: its key, its grant, and a receipt signer that keeps the running totals. */
export class TestSession {
  readonly key: KeyObject;
  readonly grant: SessionGrant;
  sequence = 0;

  constructor(
    readonly payer: TestPayer,
    over: Partial<SessionGrant> = {},
  ) {
    this.key = generateKeyPairSync('ed25519').privateKey;
    const now = Date.now();
    this.grant = {
      version: 2,
      sessionKey: rawPublicKey(this.key),
      payer: payer.publicKey,
      mint: payer.mint,
      pricePerGiB: 1_000_000_000n,
      budget: 1_000_000_000_000n,
      issuedAtMs: now,
      expiresAtMs: now + 3_600_000,
      maxBytesPerSec: 2_500_000,
      user: new Uint8Array(randomBytes(16)),
      scope: TEST_SCOPE,
      nonce: new Uint8Array(randomBytes(16)),
      ...over,
    };
  }

  /** The grant signed by `signer` (its payer by default). */
  signedGrant(signer: KeyObject = this.payer.key): Uint8Array {
    return encodeSignedGrant(signGrant(this.grant, signer));
  }

  /** The tracker's signed assignment of this session to `relay` (`over` tampers with its fields). */
  assignment(tracker: TestTracker, relay: Uint8Array, over: Partial<Assignment> = {}): Uint8Array {
    return encodeSignedAssignment(
      signAssignment({ version: 1, tracker: tracker.publicKey, sessionKey: this.grant.sessionKey, relay, issuedAtMs: Date.now(), ...over }, tracker.key),
    );
  }

  /**
   * A BIND answering `challenge` of a channel of `relay`: this session's grant, the tracker's
   * assignment, and the session key's proof (`proofKey` signs instead when given: a party without the key).
   */
  bindFrame(
    challenge: Uint8Array,
    relay: Uint8Array,
    tracker: TestTracker | undefined,
    o: { proofKey?: KeyObject; assignment?: Uint8Array | null; signedGrant?: Uint8Array } = {},
  ): BindFrame {
    const assignment = o.assignment === null ? undefined : (o.assignment ?? (tracker === undefined ? undefined : this.assignment(tracker, relay)));
    return {
      type: FrameType.BIND,
      requestId: 0,
      signedGrant: o.signedGrant ?? this.signedGrant(),
      signedAssignment: assignment,
      proof: signBindProof(challenge, relay, o.proofKey ?? this.key),
    };
  }

  /** A receipt for `cumulativeBytes` to `relay`, next sequence; `over` tampers with fields after the honest amount is set. */
  receiptFields(relay: Uint8Array, cumulativeBytes: number, over: Partial<Receipt> = {}): Receipt {
    this.sequence++;
    return {
      version: 1,
      grantNonce: this.grant.nonce,
      sessionKey: this.grant.sessionKey,
      relay,
      sequence: this.sequence,
      cumulativeBytes,
      cumulativeAmount: amountForBytes(cumulativeBytes, this.grant.pricePerGiB),
      timestampMs: Date.now(),
      ...over,
    };
  }

  signedReceipt(relay: Uint8Array, cumulativeBytes: number, over: Partial<Receipt> = {}, signer: KeyObject = this.key): Uint8Array {
    return encodeSignedReceipt(signReceipt(this.receiptFields(relay, cumulativeBytes, over), signer));
  }
}
