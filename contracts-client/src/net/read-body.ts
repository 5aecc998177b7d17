import type { IncomingMessage } from 'node:http';
import { ErrorCode, RelaycastError } from '@relaycast/protocol';

/**
 * Reads a whole HTTP request body, refusing it (RC_ERR_MESSAGE_TOO_LARGE) past `maxBytes` before
 * buffering more; RC_ERR_ABORTED when `signal` aborts or the request fails. The settler and the
 * embedded chain both read bodies with it.
 */
export function readBody(req: IncomingMessage, maxBytes: number, signal?: AbortSignal): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const tooLarge = (): RelaycastError => new RelaycastError(ErrorCode.MESSAGE_TOO_LARGE, `request body exceeds ${maxBytes} bytes`);
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBytes) {
      reject(tooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const onAbort = (): void => {
      cleanup();
      reject(new RelaycastError(ErrorCode.ABORTED, 'request aborted'));
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.byteLength;
      if (size > maxBytes) {
        cleanup();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.concat(chunks));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(new RelaycastError(ErrorCode.ABORTED, 'request failed while reading', { cause: err }));
    };
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      signal?.removeEventListener('abort', onAbort);
    };
    if (signal?.aborted === true) {
      onAbort();
      return;
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}
