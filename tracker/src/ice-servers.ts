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
    const username = `${Math.floor((nowMs + ice.turnCredentialTtlMs) / 1000)}:${peerId}`;
    const credential = createHmac('sha1', ice.turnSecret).update(username).digest('base64');
    out.push({ urls: [...ice.turnUrls], username, credential });
  }
  return out.length === 0 ? undefined : out;
}
