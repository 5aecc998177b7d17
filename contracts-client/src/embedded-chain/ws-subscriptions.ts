import { decodeBase58 } from '@relaycast/protocol';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import type { ChainLedger } from './chain-ledger.js';
import { RpcError, RpcErrorCode, errorResponse, idOfRejected, parseRequest, type RpcRequest, type RpcResponse } from './json-rpc.js';
import type { KeyedRateLimiter } from '../net/rate-limiter.js';
import type { TransactionErrorJson } from './tx-errors.js';

export interface SubscriptionLimits {
  maxSubscriptionsPerConnection: number;
  maxBufferedBytes: number;
}

interface Subscriber {
  ws: WebSocket;
  /** subscription id → what it watches. */
  subscriptions: Map<number, { kind: 'signature'; signature: string } | { kind: 'slot' }>;
}

/**
 * The PubSub side of the RPC: signatureSubscribe (what `confirmTransaction` waits on) and
 * slotSubscribe. Signature subscriptions are one-shot, as on a real node: the notification for a
 * processed transaction ends the subscription, and one already processed when subscribed is
 * notified at once (every commitment level is reached on commit here).
 */
export class SubscriptionHub {
  readonly #ledger: ChainLedger;
  readonly #limits: SubscriptionLimits;
  readonly #log: Logger;
  readonly #rate: KeyedRateLimiter;
  readonly #subscribers = new Map<WebSocket, Subscriber>();
  /** signature → subscribers waiting for it (subscription ids per socket). */
  readonly #bySignature = new Map<string, Map<WebSocket, Set<number>>>();
  readonly #slotWatchers = new Map<WebSocket, Set<number>>();
  #nextId = 0;

  constructor(ledger: ChainLedger, limits: SubscriptionLimits, rate: KeyedRateLimiter, log: Logger) {
    this.#ledger = ledger;
    this.#limits = limits;
    this.#rate = rate;
    this.#log = log;
  }

  get connectionCount(): number {
    return this.#subscribers.size;
  }

  attach(ws: WebSocket, client: string): void {
    const sub: Subscriber = { ws, subscriptions: new Map() };
    this.#subscribers.set(ws, sub);
    ws.on('message', (data, isBinary) => {
      if (!this.#rate.allow(client)) {
        this.#send(ws, errorResponse(null, RpcErrorCode.TOO_MANY_REQUESTS, 'Too many requests'));
        return;
      }
      const text = isBinary ? null : data.toString();
      const response = text === null ? errorResponse(null, RpcErrorCode.PARSE_ERROR, 'Parse error: binary messages are not JSON-RPC') : this.#handle(sub, text);
      if (response !== undefined) this.#send(ws, response);
    });
    ws.on('close', () => this.#detach(sub));
    ws.on('error', (err) => this.#log.debug({ err: err.message }, 'websocket error'));
  }

  /** Notifies and ends every subscription waiting for `signature`. */
  notifySignature(signature: string, err: TransactionErrorJson | null): void {
    const waiting = this.#bySignature.get(signature);
    if (waiting === undefined) return;
    this.#bySignature.delete(signature);
    for (const [ws, ids] of waiting) {
      const sub = this.#subscribers.get(ws);
      for (const id of ids) {
        sub?.subscriptions.delete(id);
        this.#sendSignatureNotification(ws, id, err);
      }
    }
  }

  notifySlot(slot: number): void {
    for (const [ws, ids] of this.#slotWatchers) {
      for (const id of ids) {
        this.#send(ws, { jsonrpc: '2.0', method: 'slotNotification', params: { result: { parent: slot - 1, root: slot - 1, slot }, subscription: id } });
      }
    }
  }

  closeAll(): void {
    for (const ws of this.#subscribers.keys()) ws.terminate();
  }

  #handle(sub: Subscriber, text: string): object | undefined {
    let request: RpcRequest;
    try {
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        return errorResponse(null, RpcErrorCode.PARSE_ERROR, 'Parse error');
      }
      // web3.js sends id-less keep-alive notifications ("ping"): they get no answer.
      if (typeof value === 'object' && value !== null && !Array.isArray(value) && !('id' in value)) return undefined;
      request = parseRequest(value);
    } catch (err) {
      if (err instanceof RpcError) return errorResponse(idOfRejected(err), err.code, err.message);
      throw err;
    }
    try {
      return { jsonrpc: '2.0', id: request.id, result: this.#dispatch(sub, request) };
    } catch (err) {
      if (err instanceof RpcError) return errorResponse(request.id, err.code, err.message, err.data);
      this.#log.error({ err, method: request.method }, 'subscription handler failed');
      return errorResponse(request.id, RpcErrorCode.INTERNAL_ERROR, 'Internal error');
    }
  }

  #dispatch(sub: Subscriber, request: RpcRequest): unknown {
    const { method, params } = request;
    switch (method) {
      case 'signatureSubscribe': {
        const signature = params[0];
        if (typeof signature !== 'string' || decodeBase58(signature)?.byteLength !== 64)
          throw new RpcError(RpcErrorCode.INVALID_PARAMS, 'Invalid param: Invalid');
        const id = this.#newSubscription(sub, { kind: 'signature', signature });
        const record = this.#ledger.getRecord(signature);
        if (record !== undefined) {
          sub.subscriptions.delete(id);
          // After the subscribe response has gone out, like a node that sees the status on its next pass.
          queueMicrotask(() => this.#sendSignatureNotification(sub.ws, id, record.err));
        } else {
          let waiting = this.#bySignature.get(signature);
          if (waiting === undefined) this.#bySignature.set(signature, (waiting = new Map<WebSocket, Set<number>>()));
          let ids = waiting.get(sub.ws);
          if (ids === undefined) waiting.set(sub.ws, (ids = new Set()));
          ids.add(id);
        }
        return id;
      }
      case 'slotSubscribe': {
        const id = this.#newSubscription(sub, { kind: 'slot' });
        let ids = this.#slotWatchers.get(sub.ws);
        if (ids === undefined) this.#slotWatchers.set(sub.ws, (ids = new Set()));
        ids.add(id);
        return id;
      }
      case 'signatureUnsubscribe':
      case 'slotUnsubscribe': {
        const id = params[0];
        const kind = method === 'slotUnsubscribe' ? 'slot' : 'signature';
        const entry = typeof id === 'number' ? sub.subscriptions.get(id) : undefined;
        if (entry === undefined || entry.kind !== kind) throw new RpcError(RpcErrorCode.INVALID_PARAMS, 'Invalid subscription id.');
        this.#removeSubscription(sub, id as number);
        return true;
      }
      default:
        throw new RpcError(RpcErrorCode.METHOD_NOT_FOUND, 'Method not found');
    }
  }

  #newSubscription(sub: Subscriber, what: { kind: 'signature'; signature: string } | { kind: 'slot' }): number {
    if (sub.subscriptions.size >= this.#limits.maxSubscriptionsPerConnection) {
      throw new RpcError(RpcErrorCode.INVALID_REQUEST, `at most ${this.#limits.maxSubscriptionsPerConnection} subscriptions per connection`);
    }
    const id = this.#nextId++;
    sub.subscriptions.set(id, what);
    return id;
  }

  #removeSubscription(sub: Subscriber, id: number): void {
    const entry = sub.subscriptions.get(id);
    sub.subscriptions.delete(id);
    if (entry === undefined) return;
    if (entry.kind === 'slot') {
      const ids = this.#slotWatchers.get(sub.ws);
      ids?.delete(id);
      if (ids?.size === 0) this.#slotWatchers.delete(sub.ws);
      return;
    }
    const waiting = this.#bySignature.get(entry.signature);
    const ids = waiting?.get(sub.ws);
    ids?.delete(id);
    if (ids?.size === 0) waiting!.delete(sub.ws);
    if (waiting?.size === 0) this.#bySignature.delete(entry.signature);
  }

  #detach(sub: Subscriber): void {
    for (const id of [...sub.subscriptions.keys()]) this.#removeSubscription(sub, id);
    this.#slotWatchers.delete(sub.ws);
    this.#subscribers.delete(sub.ws);
  }

  #sendSignatureNotification(ws: WebSocket, id: number, err: TransactionErrorJson | null): void {
    this.#send(ws, {
      jsonrpc: '2.0',
      method: 'signatureNotification',
      params: { result: { context: { slot: this.#ledger.slot }, value: { err } }, subscription: id },
    });
  }

  #send(ws: WebSocket, message: RpcResponse | object): void {
    if (ws.readyState !== ws.OPEN) return;
    // A client that does not read would make the queue grow without bound.
    if (ws.bufferedAmount > this.#limits.maxBufferedBytes) {
      this.#log.warn({ bufferedBytes: ws.bufferedAmount }, 'websocket client too slow; dropping it');
      ws.terminate();
      return;
    }
    ws.send(JSON.stringify(message));
  }
}
