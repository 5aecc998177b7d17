/**
 * Helpers for the tracker's own tests: real ws clients and real ed25519 relay keys. Not exported
 * from the package.
 */
import { generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import {
  GRANT_VERSION,
  TRACKER_SUBPROTOCOL,
  encodeSignedGrant,
  decodeTrackerServerMessage,
  encodeBase58,
  fromBase64,
  registrationSigningBytes,
  toBase64,
  type HelloMessage,
  type TrackerServerMessage,
} from '@relaycast/protocol';
import { rawPublicKey, signGrant, signTrackerSessionProof } from '@relaycast/protocol/node';
import WebSocket from 'ws';

export interface RelayKey {
  relayId: string;
  privateKey: KeyObject;
}

export function makeRelayKey(): RelayKey {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const der = publicKey.export({ format: 'der', type: 'spki' });
  return { relayId: encodeBase58(new Uint8Array(der.subarray(der.byteLength - 32))), privateKey };
}

export function signRegistration(key: KeyObject, nonceBase64: string): string {
  const nonce = fromBase64(nonceBase64);
  if (nonce === undefined) throw new Error('bad nonce');
  return toBase64(new Uint8Array(sign(null, registrationSigningBytes(nonce), key)));
}

export interface TestClient {
  readonly ws: WebSocket;
  readonly hello: HelloMessage;
  /** Next message (optionally of one type, skipping others), or rejects after `timeoutMs`. */
  next<T extends TrackerServerMessage['type']>(type?: T, timeoutMs?: number): Promise<Extract<TrackerServerMessage, { type: T }>>;
  /** Resolves true when no message arrives within `ms`. */
  silentFor(ms: number): Promise<boolean>;
  send(msg: unknown): void;
  sendRaw(data: string | Buffer, binary?: boolean): void;
  /** Resolves with the close code and reason. */
  readonly closed: Promise<{ code: number; reason: string }>;
  close(): void;
}

/** `localAddress` (e.g. 127.0.5.1: all of 127/8 is loopback) puts the client in another address range. */
export async function connect(url: string, protocols: string[] = [TRACKER_SUBPROTOCOL], localAddress?: string): Promise<TestClient> {
  const ws = new WebSocket(url, protocols, localAddress === undefined ? {} : { localAddress });
  const queue: TrackerServerMessage[] = [];
  const waiters: (() => void)[] = [];
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.on('close', (code, reason) => {
      resolve({ code, reason: reason.toString() });
      for (const w of waiters.splice(0)) w();
    });
  });
  ws.on('message', (data) => {
    queue.push(decodeTrackerServerMessage(String(data)));
    for (const w of waiters.splice(0)) w();
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
  });
  ws.on('error', () => {});

  async function next(type?: string, timeoutMs = 3000): Promise<TrackerServerMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = queue.findIndex((m) => type === undefined || m.type === type);
      if (i >= 0) return queue.splice(i, 1)[0] as TrackerServerMessage;
      if (ws.readyState === WebSocket.CLOSED) throw new Error(`socket closed while waiting for ${type ?? 'a message'}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${type ?? 'a message'}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  const hello = (await next('hello')) as HelloMessage;
  return {
    ws,
    hello,
    next: next as TestClient['next'],
    async silentFor(ms) {
      await new Promise((r) => setTimeout(r, ms));
      return queue.length === 0;
    },
    send: (msg) => ws.send(JSON.stringify(msg)),
    sendRaw: (data, binary = false) => ws.send(data, { binary }),
    closed,
    close: () => ws.close(),
  };
}

export interface TestRelay extends TestClient {
  key: RelayKey;
}

export interface RelayInfo {
  capacity?: number;
  load?: number;
  region?: string;
  streams?: string[];
}

export function registerMessage(key: RelayKey, nonce: string, info: RelayInfo = {}): Record<string, unknown> {
  return {
    type: 'register',
    relayId: key.relayId,
    signature: signRegistration(key.privateKey, nonce),
    capacity: info.capacity ?? 100,
    load: info.load ?? 0,
    region: info.region ?? 'eu',
    pricePerGiB: '1000',
    streams: info.streams ?? [],
  };
}

/** Connects and registers a relay, waiting for `registered`. */
export async function connectRelay(url: string, info: RelayInfo = {}, key: RelayKey = makeRelayKey(), localAddress?: string): Promise<TestRelay> {
  const client = await connect(url, undefined, localAddress);
  client.send(registerMessage(key, client.hello.nonce, info));
  await client.next('registered');
  return Object.assign(client, { key });
}

/** A settlement service's key: it signs grants the tracker may trust (`trust.trustedPayers`). */
export interface PayerKey {
  payerId: string;
  privateKey: KeyObject;
}

export const makePayerKey = (): PayerKey => {
  const k = makeRelayKey();
  return { payerId: k.relayId, privateKey: k.privateKey };
};

export interface GrantFor {
  /** 16-byte user tag; default random (a distinct user). */
  user?: Uint8Array;
  /** Default: in one hour. */
  expiresAtMs?: number;
  /** Default: now, or an hour before expiresAtMs when that is in the past. */
  issuedAtMs?: number;
}

/**
 * A `session` message for `client`: a fresh session key, a grant for it signed by `payer`, and the
 * key's proof over the client's hello nonce. Returns the session's raw public key too.
 */
export function sessionMessage(payer: PayerKey, nonceBase64: string, grantFor: GrantFor = {}): { msg: Record<string, unknown>; sessionKey: Uint8Array } {
  const session = generateKeyPairSync('ed25519');
  const sessionKey = rawPublicKey(session.privateKey);
  const now = Date.now();
  const signed = signGrant(
    {
      version: GRANT_VERSION,
      sessionKey,
      payer: rawPublicKey(payer.privateKey),
      mint: new Uint8Array(32).fill(9),
      pricePerGiB: 1000n,
      budget: 1_000_000n,
      issuedAtMs: grantFor.issuedAtMs ?? Math.min(now, (grantFor.expiresAtMs ?? now) - 3_600_000),
      expiresAtMs: grantFor.expiresAtMs ?? now + 3_600_000,
      maxBytesPerSec: 2_500_000,
      user: grantFor.user ?? new Uint8Array(randomBytes(16)),
      scope: 'https://cdn.example/',
      nonce: new Uint8Array(randomBytes(16)),
    },
    payer.privateKey,
  );
  const nonce = fromBase64(nonceBase64);
  if (nonce === undefined) throw new Error('bad nonce');
  return {
    msg: { type: 'session', grant: toBase64(encodeSignedGrant(signed)), proof: toBase64(signTrackerSessionProof(nonce, session.privateKey)) },
    sessionKey,
  };
}
