import { createHmac } from 'node:crypto';
import type { IceServer } from '@relaycast/protocol';
import type { IceOptions } from './tracker-options.js';

/**
 * The ICE servers a peer gets in `hello`. TURN credentials follow the TURN REST scheme that
 * coturn's `use-auth-secret` checks: username "<expiry unix seconds>:<peer id>", credential
 * base64(HMAC-SHA1(shared secret, username)). They expire on their own, are different per peer,
 * and the shared secret never leaves the tracker (and the TURN server).
 */
export function iceServersFor(peerId: string, ice: IceOptions, nowMs: number): IceServer[] | undefined {
  const out: IceServer[] = [];
  if (ice.stunUrls.length > 0) out.push({ urls: [...ice.stunUrls] });
  if (ice.turnUrls.length > 0 && ice.turnSecret !== undefined) {
    out.push({ urls: [...ice.turnUrls], ...turnRestCredentials(ice.turnSecret, peerId, nowMs + ice.turnCredentialTtlMs) });
  }
  return out.length === 0 ? undefined : out;
}

/**
 * TURN REST credentials valid until `expiresAtMs`: username "<expiry unix seconds>:<id>",
 * credential base64(HMAC-SHA1(secret, username)), as coturn's `use-auth-secret` checks them.
 */
export function turnRestCredentials(secret: string, id: string, expiresAtMs: number): { username: string; credential: string } {
  const username = `${Math.floor(expiresAtMs / 1000)}:${id}`;
  return { username, credential: createHmac('sha1', secret).update(username).digest('base64') };
}
