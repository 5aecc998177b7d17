import { ErrorCode, RelaycastError } from '@relaycast/protocol';
import type { Logger } from 'pino';
import {
  DEFAULT_BLOCKHASH_VALIDITY_SLOTS,
  DEFAULT_CHAIN_HOST,
  DEFAULT_CHAIN_PORT,
  DEFAULT_HTTP_KEEP_ALIVE_MS,
  DEFAULT_HTTP_REQUEST_TIMEOUT_MS,
  DEFAULT_MAX_AIRDROP_LAMPORTS,
  DEFAULT_MAX_BATCH_REQUESTS,
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_MAX_HISTORY_TRANSACTIONS,
  DEFAULT_MAX_REQUESTS_PER_SEC,
  DEFAULT_MAX_SUBSCRIPTIONS_PER_CONNECTION,
  DEFAULT_MAX_WS_BUFFERED_BYTES,
  DEFAULT_MAX_WS_CONNECTIONS,
  DEFAULT_MAX_WS_MESSAGE_BYTES,
  DEFAULT_REQUEST_BURST,
  DEFAULT_SLOT_MS,
} from '../constants.js';

/** Configuration of the embedded chain (`startEmbeddedChain`, bin `relaycast-chain`). */
export interface EmbeddedChainOptions {
  /** HTTP JSON-RPC port; the WebSocket listens on port + 1 (where web3.js looks for it). 0 picks a free pair. Default: 8899. */
  port?: number;
  /** Address both listeners bind to. Default: '127.0.0.1'. */
  host?: string;
  /** Slot length: the slot, block height and blockhash advance this often. Default: 400. */
  slotMs?: number;
  /** Slots a blockhash stays valid after it was issued. Default: 150. */
  blockhashValiditySlots?: number;
  /** Path of the state snapshot (plus `<path>.history.jsonl`); without it the chain lives in memory only. Default: none. */
  stateFile?: string | undefined;
  /** Largest requestAirdrop amount, in lamports. Default: 1,000,000,000,000 (1,000 SOL). */
  maxAirdropLamports?: number;
  /** Largest HTTP request body. Default: 65,536. */
  maxBodyBytes?: number;
  /** Largest WebSocket message. Default: 65,536. */
  maxWsMessageBytes?: number;
  /** Largest JSON-RPC batch. Default: 64. */
  maxBatchRequests?: number;
  /** Requests per second per client IP (HTTP requests, batch entries, WebSocket messages). Default: 2,000. */
  maxRequestsPerSec?: number;
  /** Extra requests a client may make at once after being quiet. Default: 4,000 (total, including the rate). */
  requestBurst?: number;
  /** WebSocket connections at once. Default: 256. */
  maxWsConnections?: number;
  /** Subscriptions per WebSocket connection. Default: 1,024. */
  maxSubscriptionsPerConnection?: number;
  /** Bytes queued to a WebSocket client before it is dropped. Default: 4,194,304. */
  maxWsBufferedBytes?: number;
  /** Transactions kept for getTransaction / getSignaturesForAddress. Default: 100,000. */
  maxHistoryTransactions?: number;
  /** Time a client has to send a whole HTTP request. Default: 10,000. */
  httpRequestTimeoutMs?: number;
  /** Idle keep-alive connections close after this. Default: 5,000. */
  httpKeepAliveMs?: number;
  /** Parent logger; the chain logs through `logger.child({ component: 'chain' })`. Default: a silent logger. */
  logger?: Logger | undefined;
  /** Aborts the start (before the chain is listening). Default: none. */
  signal?: AbortSignal | undefined;
}

export type ResolvedChainOptions = Required<Omit<EmbeddedChainOptions, 'stateFile' | 'logger' | 'signal'>> & Pick<EmbeddedChainOptions, 'stateFile'>;

function positiveInt(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value <= 0) throw new RelaycastError(ErrorCode.CONFIG_INVALID, `${name} must be a positive integer`);
  return value;
}

export function resolveChainOptions(o: EmbeddedChainOptions): ResolvedChainOptions {
  const port = o.port ?? DEFAULT_CHAIN_PORT;
  if (!Number.isInteger(port) || port < 0 || port > 65_534)
    throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'port must be 0..65534 (the WebSocket takes port + 1)');
  return {
    port,
    host: o.host ?? DEFAULT_CHAIN_HOST,
    slotMs: positiveInt('slotMs', o.slotMs ?? DEFAULT_SLOT_MS),
    blockhashValiditySlots: positiveInt('blockhashValiditySlots', o.blockhashValiditySlots ?? DEFAULT_BLOCKHASH_VALIDITY_SLOTS),
    stateFile: o.stateFile,
    maxAirdropLamports: positiveInt('maxAirdropLamports', o.maxAirdropLamports ?? DEFAULT_MAX_AIRDROP_LAMPORTS),
    maxBodyBytes: positiveInt('maxBodyBytes', o.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES),
    maxWsMessageBytes: positiveInt('maxWsMessageBytes', o.maxWsMessageBytes ?? DEFAULT_MAX_WS_MESSAGE_BYTES),
    maxBatchRequests: positiveInt('maxBatchRequests', o.maxBatchRequests ?? DEFAULT_MAX_BATCH_REQUESTS),
    maxRequestsPerSec: positiveInt('maxRequestsPerSec', o.maxRequestsPerSec ?? DEFAULT_MAX_REQUESTS_PER_SEC),
    requestBurst: positiveInt('requestBurst', Math.max(o.requestBurst ?? DEFAULT_REQUEST_BURST, o.maxRequestsPerSec ?? DEFAULT_MAX_REQUESTS_PER_SEC)),
    maxWsConnections: positiveInt('maxWsConnections', o.maxWsConnections ?? DEFAULT_MAX_WS_CONNECTIONS),
    maxSubscriptionsPerConnection: positiveInt('maxSubscriptionsPerConnection', o.maxSubscriptionsPerConnection ?? DEFAULT_MAX_SUBSCRIPTIONS_PER_CONNECTION),
    maxWsBufferedBytes: positiveInt('maxWsBufferedBytes', o.maxWsBufferedBytes ?? DEFAULT_MAX_WS_BUFFERED_BYTES),
    maxHistoryTransactions: positiveInt('maxHistoryTransactions', o.maxHistoryTransactions ?? DEFAULT_MAX_HISTORY_TRANSACTIONS),
    httpRequestTimeoutMs: positiveInt('httpRequestTimeoutMs', o.httpRequestTimeoutMs ?? DEFAULT_HTTP_REQUEST_TIMEOUT_MS),
    httpKeepAliveMs: positiveInt('httpKeepAliveMs', o.httpKeepAliveMs ?? DEFAULT_HTTP_KEEP_ALIVE_MS),
  };
}
