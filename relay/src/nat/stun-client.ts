import { randomBytes } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIPv4 } from 'node:net';
import type { Logger } from 'pino';
import { ErrorCode, RelaycastError, decodeStunBindingResponse, encodeStunBindingRequest, isRelaycastError, type StunMappedAddress } from '@relaycast/protocol';
import { DEFAULT_STUN_PORT, DEFAULT_STUN_TIMEOUT_MS, STUN_FIRST_RETRANSMIT_MS } from '../constants.js';

export interface StunDiscoveryOptions {
  /** Aborting rejects with `signal.reason` at once and closes the socket. Required. */
  signal: AbortSignal;
  /** Bound of each server (DNS lookup and retransmissions). Default DEFAULT_STUN_TIMEOUT_MS (3 s). */
  timeoutMs?: number;
  /** Local IPv4 address to send from (port 0). Default: all interfaces, so the kernel picks the route's source. */
  bindAddress?: string;
  logger?: Logger;
}

export interface StunDiscoveryResult {
  /** Public address as the STUN server saw it. */
  address: string;
  /** Public port of this discovery's own socket: it tells NAT behaviour, not a port anyone can reach. */
  port: number;
  /** The `stun:` URL that answered, as given. */
  server: string;
}

export interface StunServerAddress {
  host: string;
  port: number;
}

/**
 * Parses `stun:host[:port]` (RFC 7064). Returns undefined for URLs this client does not use:
 * `turn:`/`turns:` (ICE server lists mix them in), `stuns:` (STUN over TLS/DTLS) and IPv6 literals
 * (the socket is udp4). Anything else that does not parse is RC_ERR_CONFIG_INVALID.
 */
export function parseStunServerUrl(url: string): StunServerAddress | undefined {
  const m = /^([a-z]+):(.*)$/i.exec(url.trim());
  const scheme = m?.[1]?.toLowerCase();
  if (scheme === 'turn' || scheme === 'turns' || scheme === 'stuns') return undefined;
  if (m === undefined || m === null || scheme !== 'stun') throw invalidUrl(url, 'not a stun: URL');
  // RFC 7064 has no "//", but "stun://host" is a common slip and is unambiguous.
  const rest = (m[2] ?? '').replace(/^\/\//, '');
  if (rest.startsWith('[')) {
    if (!/^\[[0-9a-f:.]+\](:\d+)?$/i.test(rest)) throw invalidUrl(url, 'bad IPv6 literal');
    return undefined;
  }
  const hm = /^([A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(rest);
  if (hm === null) throw invalidUrl(url, 'expected stun:host or stun:host:port');
  const port = hm[2] === undefined ? DEFAULT_STUN_PORT : Number(hm[2]);
  if (port < 1 || port > 65_535) throw invalidUrl(url, 'port out of range');
  return { host: hm[1] as string, port };
}

function invalidUrl(url: string, why: string): RelaycastError {
  return new RelaycastError(ErrorCode.CONFIG_INVALID, `STUN server ${JSON.stringify(url)}: ${why}`, { details: { url } });
}

/**
 * Learns the relay's public IPv4 address and port with a STUN Binding request (RFC 8489), asking
 * `servers` one after the other from one UDP socket until one answers. Rejects with
 * RC_ERR_STUN_TIMEOUT when none does (the last server's failure in `cause`), RC_ERR_CONFIG_INVALID
 * for an unparsable URL, a bad timeout or a bind address that cannot be bound.
 */
export async function discoverPublicAddress(servers: string[], options: StunDiscoveryOptions): Promise<StunDiscoveryResult> {
  const { signal } = options;
  if (signal.aborted) throw signal.reason;
  const timeoutMs = options.timeoutMs ?? DEFAULT_STUN_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new RelaycastError(ErrorCode.CONFIG_INVALID, `STUN timeoutMs must be a positive number, got ${timeoutMs}`);
  }
  const targets: Array<StunServerAddress & { url: string }> = [];
  for (const url of servers) {
    const target = parseStunServerUrl(url);
    if (target === undefined) options.logger?.debug({ url }, 'STUN: server URL skipped (not stun: over IPv4)');
    else targets.push({ ...target, url });
  }
  if (targets.length === 0) {
    throw new RelaycastError(ErrorCode.STUN_TIMEOUT, 'no stun: server to ask', { details: { servers } });
  }

  const socket = createSocket({ type: 'udp4' });
  // An 'error' without a listener would crash the process; failures are taken from the attempts.
  socket.on('error', (err) => options.logger?.debug({ err }, 'STUN: socket error'));
  try {
    await bindSocket(socket, options.bindAddress, signal);
    let lastError: unknown;
    for (const target of targets) {
      try {
        const mapped = await askServer(socket, target, timeoutMs, signal, options.logger);
        options.logger?.debug({ server: target.url, address: mapped.address, port: mapped.port }, 'STUN: public address discovered');
        return { address: mapped.address, port: mapped.port, server: target.url };
      } catch (err) {
        if (signal.aborted) throw signal.reason;
        lastError = err;
        options.logger?.debug({ server: target.url, err }, 'STUN: server failed, trying the next one');
      }
    }
    throw new RelaycastError(ErrorCode.STUN_TIMEOUT, `no STUN server answered (${targets.length} tried, ${timeoutMs} ms each)`, {
      cause: lastError,
      details: { servers: targets.map((t) => t.url) },
    });
  } finally {
    try {
      socket.close();
    } catch {
      // Already closed: nothing left to release.
    }
  }
}

function bindSocket(socket: Socket, address: string | undefined, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const done = (): void => {
      socket.off('listening', onListening);
      socket.off('error', onError);
      signal.removeEventListener('abort', onAbort);
    };
    const onListening = (): void => {
      done();
      resolve();
    };
    const onError = (err: Error): void => {
      done();
      reject(new RelaycastError(ErrorCode.CONFIG_INVALID, `cannot bind the STUN socket to ${address ?? '0.0.0.0'}`, { cause: err }));
    };
    const onAbort = (): void => {
      done();
      reject(signal.reason);
    };
    socket.once('listening', onListening);
    socket.once('error', onError);
    signal.addEventListener('abort', onAbort, { once: true });
    socket.bind({ port: 0, ...(address === undefined ? {} : { address }) });
  });
}

/**
 * One Binding transaction: sends at 0, T, 3T, 7T... (T = STUN_FIRST_RETRANSMIT_MS) until an answer
 * or `timeoutMs`. Only a datagram from the server's address and port that decodes as the answer to
 * this transaction counts: anyone can send to the socket, and a late answer to an earlier server's
 * transaction must not be mistaken for this one.
 */
function askServer(
  socket: Socket,
  target: StunServerAddress & { url: string },
  timeoutMs: number,
  signal: AbortSignal,
  logger: Logger | undefined,
): Promise<StunMappedAddress> {
  return new Promise<StunMappedAddress>((resolve, reject) => {
    const transactionId = new Uint8Array(randomBytes(12));
    const request = encodeStunBindingRequest(transactionId);
    let serverIp: string | undefined;
    let retransmitTimer: NodeJS.Timeout | undefined;
    let settled = false;

    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      clearTimeout(retransmitTimer);
      socket.off('message', onMessage);
      socket.off('error', onSocketError);
      signal.removeEventListener('abort', onAbort);
      fn();
    };
    const fail = (err: unknown): void => settle(() => reject(err));

    const deadline = setTimeout(
      () => fail(new RelaycastError(ErrorCode.STUN_TIMEOUT, `${target.url} did not answer within ${timeoutMs} ms`, { details: { server: target.url } })),
      timeoutMs,
    );
    const onAbort = (): void => fail(signal.reason);
    const onSocketError = (err: Error): void => fail(err);

    const onMessage = (msg: Buffer, rinfo: RemoteInfo): void => {
      if (rinfo.address !== serverIp || rinfo.port !== target.port) {
        logger?.debug({ from: `${rinfo.address}:${rinfo.port}`, server: target.url }, 'STUN: datagram from another address ignored');
        return;
      }
      try {
        const mapped = decodeStunBindingResponse(msg, transactionId);
        settle(() => resolve(mapped));
      } catch (err) {
        // A well-formed error answer to this transaction is final: retransmitting would get the same.
        if (isRelaycastError(err, ErrorCode.STUN_ERROR_RESPONSE)) fail(err);
        else logger?.debug({ err, server: target.url, bytes: msg.byteLength }, 'STUN: datagram ignored');
      }
    };

    const send = (delayMs: number): void => {
      if (settled || serverIp === undefined) return;
      socket.send(request, target.port, serverIp, (err) => {
        if (err !== null && err !== undefined) fail(err);
      });
      retransmitTimer = setTimeout(() => send(delayMs * 2), delayMs);
    };

    signal.addEventListener('abort', onAbort, { once: true });
    socket.on('message', onMessage);
    socket.on('error', onSocketError);
    resolveIpv4(target.host).then(
      (ip) => {
        serverIp = ip;
        send(STUN_FIRST_RETRANSMIT_MS);
      },
      (err: unknown) => fail(err),
    );
  });
}

async function resolveIpv4(host: string): Promise<string> {
  if (isIPv4(host)) return host;
  const { address } = await lookup(host, { family: 4 });
  return address;
}
