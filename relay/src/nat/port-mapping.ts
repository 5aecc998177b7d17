import type { Logger } from 'pino';
import { ErrorCode, RelaycastError, deadline, isRelaycastError, raceAbort, throwIfAborted } from '@relaycast/protocol';
import { DEFAULT_PORT_MAPPING_TIMEOUT_MS, DEFAULT_PORT_MAPPING_TTL_MS, PORT_MAPPING_RENEW_FRACTION } from '../constants.js';

/** The part of a UPnP/NAT-PMP gateway the relay uses; the real one is in upnp-gateway.ts. */
export interface MappingGateway {
  /** Which protocol maps the port, for the operator's status. */
  readonly kind: 'upnp' | 'nat-pmp';
  /** Maps UDP `internalPort` on the gateway's external side to this host; resolves with the external address. */
  map(internalPort: number, ttlMs: number, signal: AbortSignal): Promise<{ externalHost: string; externalPort: number }>;
  unmap(internalPort: number, signal: AbortSignal): Promise<void>;
  /** Releases sockets the client holds. */
  close?(): Promise<void>;
}

export type FindGateway = (signal: AbortSignal) => Promise<MappingGateway>;

export interface PortMappingOptions {
  /** UDP port to map (the relay's --rtc-port). Required. */
  port: number;
  /** Finds the gateway. Required (createUpnpGatewayFinder in production). */
  findGateway: FindGateway;
  /** Lease asked for. Default DEFAULT_PORT_MAPPING_TTL_MS. */
  ttlMs?: number;
  /** Bound of the gateway search and of each add/renew/remove call. Default DEFAULT_PORT_MAPPING_TIMEOUT_MS (10 s). */
  timeoutMs?: number;
  /** Child logger of the relay. Required. */
  logger: Logger;
}

export interface PortMappingState {
  status: 'off' | 'mapped' | 'failed';
  /** Protocol of the gateway that was found. */
  method?: 'upnp' | 'nat-pmp';
  externalHost?: string;
  externalPort?: number;
  /** Code of the last failure, for `relaycast-relay status`. */
  errorCode?: string;
  /** Completed renewals of the lease. */
  renewals: number;
}

/** Delay before renewing a lease of `ttlMs`: well before it lapses, so a slow gateway still has time. */
export function renewDelayMs(ttlMs: number): number {
  return Math.max(1_000, Math.floor(ttlMs * PORT_MAPPING_RENEW_FRACTION));
}

/**
 * Keeps the relay's UDP port mapped on the home router: maps on start, renews at half the lease,
 * removes on close. A failed renewal is retried at the next interval (the router may be rebooting);
 * the state says `failed` meanwhile so the operator sees it.
 */
export class PortMapping {
  readonly #opts: Required<Omit<PortMappingOptions, 'logger'>> & { logger: Logger };
  #gateway: MappingGateway | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #mappedOnce = false;
  #state: PortMappingState = { status: 'off', renewals: 0 };

  constructor(options: PortMappingOptions) {
    this.#opts = {
      ttlMs: DEFAULT_PORT_MAPPING_TTL_MS,
      timeoutMs: DEFAULT_PORT_MAPPING_TIMEOUT_MS,
      ...options,
      logger: options.logger.child({ component: 'port-mapping' }),
    };
  }

  state(): PortMappingState {
    return { ...this.#state };
  }

  /** Finds the gateway and maps the port; rejects with RC_ERR_NAT_NO_GATEWAY or RC_ERR_NAT_MAPPING_FAILED. */
  async start(signal: AbortSignal): Promise<PortMappingState> {
    throwIfAborted(signal);
    try {
      this.#gateway = await this.#bounded(signal, 'the gateway search', (s) => this.#opts.findGateway(s));
    } catch (err) {
      const e = isRelaycastError(err, ErrorCode.NAT_NO_GATEWAY)
        ? err
        : new RelaycastError(ErrorCode.NAT_NO_GATEWAY, 'no UPnP/NAT-PMP gateway found', { cause: err });
      this.#state = { status: 'failed', errorCode: e.code, renewals: 0 };
      throw e;
    }
    await this.#map(signal);
    this.#schedule();
    return this.state();
  }

  /** Stops renewing and removes the mapping from the gateway. */
  async close(signal: AbortSignal): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    const gateway = this.#gateway;
    this.#gateway = undefined;
    if (gateway === undefined) return;
    try {
      if (this.#state.status === 'off') return;
      this.#state = { status: 'off', renewals: this.#state.renewals };
      await this.#bounded(signal, 'removing the mapping', (s) => gateway.unmap(this.#opts.port, s));
      this.#opts.logger.info({ port: this.#opts.port }, 'port mapping removed');
    } catch (err) {
      throw new RelaycastError(ErrorCode.NAT_MAPPING_FAILED, `removing the mapping of UDP ${this.#opts.port} failed`, { cause: err });
    } finally {
      await gateway.close?.().catch(() => undefined);
    }
  }

  async #map(signal: AbortSignal): Promise<void> {
    const gateway = this.#gateway;
    if (gateway === undefined) return;
    try {
      const m = await this.#bounded(signal, 'mapping the port', (s) => gateway.map(this.#opts.port, this.#opts.ttlMs, s));
      const renewed = this.#mappedOnce;
      this.#mappedOnce = true;
      this.#state = {
        status: 'mapped',
        method: gateway.kind,
        externalHost: m.externalHost,
        externalPort: m.externalPort,
        renewals: this.#state.renewals + (renewed ? 1 : 0),
      };
      this.#opts.logger.info(
        { port: this.#opts.port, externalHost: m.externalHost, externalPort: m.externalPort, ttlMs: this.#opts.ttlMs },
        renewed ? 'port mapping renewed' : 'port mapped',
      );
    } catch (err) {
      this.#state = { ...this.#state, status: 'failed', errorCode: ErrorCode.NAT_MAPPING_FAILED };
      throw new RelaycastError(ErrorCode.NAT_MAPPING_FAILED, `mapping UDP ${this.#opts.port} failed`, { cause: err });
    }
  }

  #schedule(): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => {
      const ac = new AbortController();
      this.#map(ac.signal)
        .catch((err: unknown) => this.#opts.logger.warn({ err }, 'port mapping renewal failed; retrying at the next interval'))
        .finally(() => this.#schedule());
    }, renewDelayMs(this.#opts.ttlMs));
    this.#timer.unref();
  }

  /** Runs one gateway call under the timeout, which holds even when the library ignores aborts. */
  async #bounded<T>(signal: AbortSignal, what: string, call: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const d = deadline(signal, this.#opts.timeoutMs, what);
    try {
      return await raceAbort(call(d.signal), d.signal);
    } finally {
      d.clear();
    }
  }
}
