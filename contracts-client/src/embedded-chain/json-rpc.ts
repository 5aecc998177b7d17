/**
 * JSON-RPC 2.0 envelope handling and the error codes a Solana RPC node uses, so clients that
 * branch on codes (web3.js's SendTransactionError, retries on -32002/-32005) behave as against a
 * real node.
 */
export const RpcErrorCode = {
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL_ERROR: -32603,
  /** sendTransaction preflight failure (simulation failed, blockhash not found, already processed). */
  SEND_TRANSACTION_PREFLIGHT_FAILURE: -32002,
  /** A missing or wrong signature (checked before preflight, so also with skipPreflight). */
  TRANSACTION_SIGNATURE_VERIFICATION_FAILURE: -32003,
  /** getTransaction of a v0 transaction without maxSupportedTransactionVersion. */
  UNSUPPORTED_TRANSACTION_VERSION: -32015,
  /** Not a Solana code: what rate-limiting RPC providers send with HTTP 429. */
  TOO_MANY_REQUESTS: 429,
} as const;

/** Thrown by method handlers; becomes the `error` member of the response. */
export class RpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
  }
}

export type RpcId = string | number | null;

export interface RpcRequest {
  id: RpcId;
  method: string;
  params: unknown[];
}

export interface RpcResponse {
  jsonrpc: '2.0';
  id: RpcId;
  result?: unknown;
  error?: { code: number; message: string; data?: unknown };
}

export function errorResponse(id: RpcId, code: number, message: string, data?: unknown): RpcResponse {
  return { jsonrpc: '2.0', id, error: data === undefined ? { code, message } : { code, message, data } };
}

/** Validates one request object; throws RpcError(-32600) with the id it could recover. */
export function parseRequest(value: unknown): RpcRequest {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new RpcError(RpcErrorCode.INVALID_REQUEST, 'Invalid request');
  const v = value as Record<string, unknown>;
  const rawId = v['id'];
  const id: RpcId = typeof rawId === 'string' || typeof rawId === 'number' ? rawId : null;
  if (v['jsonrpc'] !== '2.0' || typeof v['method'] !== 'string') throw new RpcError(RpcErrorCode.INVALID_REQUEST, 'Invalid request', { id });
  const params = v['params'];
  if (params !== undefined && params !== null && !Array.isArray(params)) {
    throw new RpcError(RpcErrorCode.INVALID_PARAMS, 'Invalid params: expected an array', { id });
  }
  return { id, method: v['method'], params: (params as unknown[] | undefined | null) ?? [] };
}

/** The id a rejected request carried, when parseRequest could recover it. */
export function idOfRejected(err: RpcError): RpcId {
  const data = err.data as { id?: RpcId } | undefined;
  return data?.id ?? null;
}
