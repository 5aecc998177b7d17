import { createHmac } from 'node:crypto';
import type { IceServer } from '@relaycast/protocol';
import type { IceOptions } from './tracker-options.js';

/**
 * The ICE servers every peer gets in `hello`: STUN only. TURN relays traffic through the
 * operator's server and costs its bandwidth, so it is handed out on need only (turnServersFor),
 * never to an anonymous socket just for connecting (issue 14 finding 4).
 */
export function helloIceServers(ice: IceOptions): IceServer[] | undefined {
  return ice.stunUrls.length > 0 ? [{ urls: [...ice.stunUrls] }] : undefined;
}

/**
 * The answer to a `turn` request: STUN plus TURN with credentials for `id` valid for
 * `turnCredentialTtlMs` from `nowMs`. Undefined when no TURN server is configured.
 */
export function turnServersFor(id: string, ice: IceOptions, nowMs: number): IceServer[] | undefined {
  if (ice.turnUrls.length === 0 || ice.turnSecret === undefined) return undefined;
  const out: IceServer[] = [];
  if (ice.stunUrls.length > 0) out.push({ urls: [...ice.stunUrls] });
  out.push({ urls: [...ice.turnUrls], ...turnRestCredentials(ice.turnSecret, id, nowMs + ice.turnCredentialTtlMs) });
  return out;
}

/**
 * TURN REST credentials valid until `expiresAtMs`: username "<expiry unix seconds>:<id>",
 * credential base64(HMAC-SHA1(secret, username)), as coturn's `use-auth-secret` checks them. They
 * expire on their own, differ per id, and the shared secret never leaves the tracker (and the TURN
 * server).
 */
export function turnRestCredentials(secret: string, id: string, expiresAtMs: number): { username: string; credential: string } {
  const username = `${Math.floor(expiresAtMs / 1000)}:${id}`;
  return { username, credential: createHmac('sha1', secret).update(username).digest('base64') };
}
