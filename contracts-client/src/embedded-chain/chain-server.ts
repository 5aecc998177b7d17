import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { ErrorCode, RelaycastError, isRelaycastError, throwIfAborted } from '@relaycast/protocol';
import { pino, type Logger } from 'pino';
import { WebSocketServer } from 'ws';
import { CHAIN_RATE_TABLE_MAX_ENTRIES, PORT_PAIR_ATTEMPTS, PORT_PAIR_RANGE_PAIRS, PORT_PAIR_RANGE_START } from '../constants.js';
import { KeyedRateLimiter } from '../net/rate-limiter.js';
import { readBody } from '../net/read-body.js';
import { ChainLedger } from './chain-ledger.js';
import { resolveChainOptions, type EmbeddedChainOptions, type ResolvedChainOptions } from './chain-options.js';
import { RpcError, RpcErrorCode, errorResponse, idOfRejected, parseRequest, type RpcResponse } from './json-rpc.js';
import { RPC_METHODS, type RpcContext } from './rpc-methods.js';
import { SubscriptionHub } from './ws-subscriptions.js';

/** A running embedded chain. */
export interface EmbeddedChain {
  /** HTTP JSON-RPC URL, e.g. http://127.0.0.1:8899 — what `new Connection(rpcUrl)` takes. */
  readonly rpcUrl: string;
  /** WebSocket URL (port + 1), which web3.js derives from rpcUrl by itself. */
  readonly wsUrl: string;
  readonly port: number;
  /** Current slot (= block height). */
  readonly slot: number;
  /** Stops the slot clock, closes every connection and both listeners. Idempotent. */
  close(): Promise<void>;
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve();
      return;
    }
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/**
 * Starts the embedded chain: litesvm behind a Solana-compatible JSON-RPC endpoint (HTTP POST on
 * `port`) and PubSub endpoint (WebSocket on `port + 1`, also accepted on `port`), with slots
 * advancing on a timer. Throws RC_ERR_CHAIN_LISTEN_FAILED when the ports are taken,
 * RC_ERR_CHAIN_STATE_INVALID when the state file is unreadable.
 */
export async function startEmbeddedChain(options: EmbeddedChainOptions = {}): Promise<EmbeddedChain> {
  const opts: ResolvedChainOptions = resolveChainOptions(options);
  throwIfAborted(options.signal);
  const log: Logger = (options.logger ?? pino({ level: 'silent' })).child({ component: 'chain' });
  const ledger = new ChainLedger({
    blockhashValiditySlots: opts.blockhashValiditySlots,
    maxHistoryTransactions: opts.maxHistoryTransactions,
    stateFile: opts.stateFile,
    logger: log,
  });
  const rate = new KeyedRateLimiter(opts.maxRequestsPerSec, opts.requestBurst, CHAIN_RATE_TABLE_MAX_ENTRIES);
  const hub = new SubscriptionHub(
    ledger,
    { maxSubscriptionsPerConnection: opts.maxSubscriptionsPerConnection, maxBufferedBytes: opts.maxWsBufferedBytes },
    rate,
    log.child({ component: 'chain-ws' }),
  );
  const ctx: RpcContext = {
    ledger,
    maxAirdropLamports: opts.maxAirdropLamports,
    onCommitted: (signature, err) => hub.notifySignature(signature, err),
  };

  function callOne(value: unknown): RpcResponse {
    let request;
    try {
      request = parseRequest(value);
    } catch (err) {
      if (err instanceof RpcError) return errorResponse(idOfRejected(err), err.code, err.message);
      throw err;
    }
    const method = Object.hasOwn(RPC_METHODS, request.method) ? RPC_METHODS[request.method] : undefined;
    if (method === undefined) return errorResponse(request.id, RpcErrorCode.METHOD_NOT_FOUND, 'Method not found');
    try {
      return { jsonrpc: '2.0', id: request.id, result: method(request.params, ctx) };
    } catch (err) {
      if (err instanceof RpcError) return errorResponse(request.id, err.code, err.message, err.data);
      log.error({ err, method: request.method }, 'rpc method failed');
      return errorResponse(request.id, RpcErrorCode.INTERNAL_ERROR, 'Internal error');
    }
  }

  function reply(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  async function onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const client = req.socket.remoteAddress ?? 'unknown';
    if (req.method === 'GET' && req.url === '/health') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      return;
    }
    if (req.method !== 'POST') {
      reply(res, 405, errorResponse(null, RpcErrorCode.INVALID_REQUEST, 'Only POST is supported'));
      return;
    }
    if (!rate.allow(client)) {
      reply(res, 429, errorResponse(null, RpcErrorCode.TOO_MANY_REQUESTS, 'Too many requests'));
      return;
    }
    let body: Buffer;
    try {
      body = await readBody(req, opts.maxBodyBytes);
    } catch (err) {
      if (isRelaycastError(err, ErrorCode.MESSAGE_TOO_LARGE)) {
        // The rest of the body is never read: close the connection after the answer.
        res.setHeader('connection', 'close');
        reply(res, 413, errorResponse(null, RpcErrorCode.INVALID_REQUEST, `request body larger than ${opts.maxBodyBytes} bytes`));
        return;
      }
      res.destroy();
      return;
    }
    let value: unknown;
    try {
      value = JSON.parse(body.toString('utf8'));
    } catch {
      reply(res, 200, errorResponse(null, RpcErrorCode.PARSE_ERROR, 'Parse error'));
      return;
    }
    if (!Array.isArray(value)) {
      reply(res, 200, callOne(value));
      return;
    }
    if (value.length === 0 || value.length > opts.maxBatchRequests) {
      reply(res, 200, errorResponse(null, RpcErrorCode.INVALID_REQUEST, `a batch holds 1 to ${opts.maxBatchRequests} requests`));
      return;
    }
    // The first entry was counted above.
    if (value.length > 1 && !rate.allow(client, value.length - 1)) {
      reply(res, 429, errorResponse(null, RpcErrorCode.TOO_MANY_REQUESTS, 'Too many requests'));
      return;
    }
    reply(res, 200, value.map(callOne));
  }

  const wss = new WebSocketServer({ noServer: true, maxPayload: opts.maxWsMessageBytes, perMessageDeflate: false });
  function makeServer(): Server {
    const server = createServer({ requestTimeout: opts.httpRequestTimeoutMs, keepAliveTimeout: opts.httpKeepAliveMs }, (req, res) => {
      onRequest(req, res).catch((err: unknown) => {
        log.error({ err }, 'http request failed');
        if (!res.headersSent) reply(res, 500, errorResponse(null, RpcErrorCode.INTERNAL_ERROR, 'Internal error'));
      });
    });
    server.on('upgrade', (req, socket: Socket, head) => {
      if (hub.connectionCount >= opts.maxWsConnections) {
        socket.end('HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\n\r\n');
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => hub.attach(ws, req.socket.remoteAddress ?? 'unknown'));
    });
    server.on('clientError', (_err, socket: Socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
      else socket.destroy();
    });
    return server;
  }

  let http = makeServer();
  let ws = makeServer();
  let port = 0;
  const attempts = opts.port === 0 ? PORT_PAIR_ATTEMPTS : 1;
  for (let attempt = 1; ; attempt++) {
    throwIfAborted(options.signal);
    // "Any port" means a random even port of the dynamic range rather than the kernel's choice:
    // the kernel hands out ephemeral ports in sequence, so on a busy machine the port after the one
    // it picked is often the next client socket's, and the pair fails again and again.
    const want = opts.port === 0 ? PORT_PAIR_RANGE_START + 2 * Math.floor(Math.random() * PORT_PAIR_RANGE_PAIRS) : opts.port;
    try {
      port = await listen(http, want, opts.host);
      await listen(ws, port + 1, opts.host);
      break;
    } catch (err) {
      await Promise.all([closeServer(http), closeServer(ws)]);
      if (attempt >= attempts) {
        throw new RelaycastError(ErrorCode.CHAIN_LISTEN_FAILED, `cannot listen on ${opts.host}:${opts.port} and the port after it`, {
          cause: err,
          details: { host: opts.host, port: opts.port },
        });
      }
      // A server that failed to listen keeps its listeners: start the next attempt with fresh ones.
      http = makeServer();
      ws = makeServer();
    }
  }

  const timer = setInterval(() => {
    hub.notifySlot(ledger.tick());
  }, opts.slotMs);

  const rpcUrl = `http://${opts.host}:${port}`;
  const wsUrl = `ws://${opts.host}:${port + 1}`;
  log.info({ rpcUrl, wsUrl, slotMs: opts.slotMs, stateFile: opts.stateFile }, 'chain started');
  let closing: Promise<void> | undefined;
  return {
    rpcUrl,
    wsUrl,
    port,
    get slot() {
      return ledger.slot;
    },
    close() {
      closing ??= (async () => {
        clearInterval(timer);
        hub.closeAll();
        await Promise.all([closeServer(http), closeServer(ws)]);
        wss.close();
        ledger.flush();
      })();
      return closing;
    },
  };
}
