import { generateKeyPairSync, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ASSIGNMENT_EARLY_SLACK_MS,
  ASSIGNMENT_SIGNING_DOMAIN,
  SIGNED_ASSIGNMENT_BYTES,
  assignmentSigningBytes,
  checkAssignment,
  decodeSignedAssignment,
  encodeSignedAssignment,
  type Assignment,
} from './assignments.js';
import { ErrorCode, isRelaycastError } from './errors.js';
import { rawPublicKey } from './node/ed25519.js';
import { signAssignment, verifyAssignmentSignature } from './node/payments.js';
import type { SessionGrant } from './receipts.js';
import { expectRelaycastError } from './testing/errors.js';

const trackerKey = generateKeyPairSync('ed25519').privateKey;
const tracker = rawPublicKey(trackerKey);
const otherTracker = rawPublicKey(generateKeyPairSync('ed25519').privateKey);
const sessionKey = new Uint8Array(randomBytes(32));
const relay = new Uint8Array(randomBytes(32));
const now = 1_760_000_000_000;

const assignment: Assignment = { version: 1, tracker, sessionKey, relay, issuedAtMs: now };
const grant = { issuedAtMs: now - 1000, expiresAtMs: now + 3_600_000, sessionKey } as SessionGrant;
const ctx = { sessionKey, relay, trustedTrackers: [otherTracker, tracker], grant };

describe('assignments', () => {
  it('round-trip through the documented 169-byte layout and verify only untampered', () => {
    const sa = signAssignment(assignment, trackerKey);
    const wire = encodeSignedAssignment(sa);
    expect(wire.byteLength).toBe(SIGNED_ASSIGNMENT_BYTES);
    expect(SIGNED_ASSIGNMENT_BYTES).toBe(169);
    expect(wire[0]).toBe(1);
    expect(wire.subarray(1, 33)).toEqual(tracker);
    expect(wire.subarray(33, 65)).toEqual(sessionKey);
    expect(wire.subarray(65, 97)).toEqual(relay);
    expect(Number(new DataView(wire.buffer).getBigUint64(97))).toBe(now);
    expect(wire.subarray(105)).toEqual(sa.signature);
    const domain = new TextEncoder().encode(ASSIGNMENT_SIGNING_DOMAIN);
    expect(assignmentSigningBytes(assignment)).toEqual(new Uint8Array([...domain, ...wire.subarray(0, 105)]));

    const back = decodeSignedAssignment(wire);
    expect(back).toEqual(sa);
    expect(verifyAssignmentSignature(back)).toBe(true);
    // Every single-bit flip breaks the signature or the decoding.
    for (let i = 0; i < wire.byteLength; i++) {
      const t = wire.slice();
      t[i] = (t[i] as number) ^ 0x01;
      let ok = false;
      try {
        ok = verifyAssignmentSignature(decodeSignedAssignment(t));
      } catch (err) {
        expect(isRelaycastError(err, ErrorCode.ASSIGNMENT_INVALID)).toBe(true);
      }
      expect(ok, `flip at byte ${i}`).toBe(false);
    }
  });

  it('a signature by another key than the named tracker does not verify', () => {
    const forged = signAssignment({ ...assignment, tracker: otherTracker }, trackerKey);
    expect(verifyAssignmentSignature(forged)).toBe(false);
  });

  it('checkAssignment accepts the honest case and refuses each mismatch with RC_ERR_ASSIGNMENT_INVALID', () => {
    expect(() => checkAssignment(assignment, ctx)).not.toThrow();
    expect(() => checkAssignment(assignment, { ...ctx, grant: undefined })).not.toThrow();
    const bad = (a: Assignment, c = ctx) => expectRelaycastError(() => checkAssignment(a, c), ErrorCode.ASSIGNMENT_INVALID);
    bad(assignment, { ...ctx, trustedTrackers: [otherTracker] }); // wrong tracker
    bad(assignment, { ...ctx, trustedTrackers: [] }); // nobody trusted
    bad({ ...assignment, sessionKey: new Uint8Array(32) }); // wrong session
    bad({ ...assignment, relay: new Uint8Array(32) }); // wrong relay
    // Outside the grant lifetime (with the early slack for relays assigned before the grant came).
    expect(() => checkAssignment({ ...assignment, issuedAtMs: grant.issuedAtMs - ASSIGNMENT_EARLY_SLACK_MS }, ctx)).not.toThrow();
    bad({ ...assignment, issuedAtMs: grant.issuedAtMs - ASSIGNMENT_EARLY_SLACK_MS - 1 });
    expect(() => checkAssignment({ ...assignment, issuedAtMs: grant.expiresAtMs }, ctx)).not.toThrow();
    bad({ ...assignment, issuedAtMs: grant.expiresAtMs + 1 });
  });

  it('the encoder refuses what would not decode', () => {
    const sig = new Uint8Array(64);
    for (const a of [
      { version: 2 },
      { tracker: new Uint8Array(31) },
      { relay: new Uint8Array(33) },
      { issuedAtMs: -1 },
      { issuedAtMs: 1.5 },
      { issuedAtMs: 2 ** 53 },
    ]) {
      expectRelaycastError(() => encodeSignedAssignment({ assignment: { ...assignment, ...a } as Assignment, signature: sig }), ErrorCode.ASSIGNMENT_INVALID);
    }
    expectRelaycastError(() => encodeSignedAssignment({ assignment, signature: new Uint8Array(63) }), ErrorCode.ASSIGNMENT_INVALID);
  });

  it('the decoder throws only RC_ERR_ASSIGNMENT_INVALID on arbitrary bytes', () => {
    const wire = encodeSignedAssignment(signAssignment(assignment, trackerKey));
    const big = wire.slice();
    new DataView(big.buffer).setBigUint64(97, 1n << 60n);
    expectRelaycastError(() => decodeSignedAssignment(big), ErrorCode.ASSIGNMENT_INVALID);
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ minLength: 169, maxLength: 169 })), (bytes) => {
        try {
          decodeSignedAssignment(bytes);
        } catch (err) {
          expect(isRelaycastError(err, ErrorCode.ASSIGNMENT_INVALID)).toBe(true);
        }
      }),
      { numRuns: 2_000 },
    );
  });
});
