import { ErrorCode, RelaycastError } from '@relaycast/protocol';
import type { SegmentSource, SegmentStream } from '../serve/segment-source.js';

/**
 * TEST ONLY: makes a relay misbehave the way a broken or dishonest one would, so the network's
 * integrity checks can be exercised end to end. Never enable it on a real relay.
 *  - `flip`: one byte in every chunk is inverted (same size, wrong content);
 *  - `truncate`: only the first half of the segment is served, and the size announced is that half;
 *  - `extend`: 1,000 extra bytes are appended, and the size announced includes them;
 *  - `slow`: honest bytes, but the first one comes SLOW_FIRST_BYTE_MS late (a relay slow to answer);
 *  - `tease`: the first TEASE_BYTES honest bytes at once, then nothing for TEASE_HOLD_MS (a relay
 *    that wins a race and stalls).
 * Only whole-segment requests are touched, and of those every `every`-th distinct URL (1 = all).
 */
export interface SegmentFault {
  mode: 'flip' | 'truncate' | 'extend' | 'slow' | 'tease';
  /** Every how many distinct segment URLs one is corrupted. */
  every: number;
}

const EXTRA_BYTES = 1000;
/** `slow`: how late the first byte of a targeted segment comes, ms. */
export const SLOW_FIRST_BYTE_MS = 2_500;
/** `tease`: honest bytes sent before the silence, and how long the silence lasts, ms. */
export const TEASE_BYTES = 1_024;
export const TEASE_HOLD_MS = 30_000;
/** Distinct URLs remembered, so a refetch of a corrupted URL is corrupted again. */
const MAX_REMEMBERED_URLS = 10_000;

/** Parses `flip`, `truncate:3`, `extend:2`... (the CLI's `--test-fault` value). */
export function parseSegmentFault(text: string): SegmentFault {
  const m = /^(flip|truncate|extend|slow|tease)(?::([1-9][0-9]{0,5}))?$/.exec(text);
  if (m === null)
    throw new RelaycastError(ErrorCode.CONFIG_INVALID, '--test-fault must be flip|truncate|extend|slow|tease, optionally :N (every N-th segment)');
  return { mode: m[1] as SegmentFault['mode'], every: m[2] === undefined ? 1 : Number(m[2]) };
}

export function withSegmentFault(source: SegmentSource, fault: SegmentFault): SegmentSource {
  const verdicts = new Map<string, boolean>();
  let seen = 0;
  const targeted = (url: string): boolean => {
    let v = verdicts.get(url);
    if (v === undefined) {
      seen++;
      v = seen % fault.every === 0;
      if (verdicts.size >= MAX_REMEMBERED_URLS) verdicts.delete(verdicts.keys().next().value as string);
      verdicts.set(url, v);
    }
    return v;
  };
  return {
    advertisedStreams: () => source.advertisedStreams(),
    close: () => source.close(),
    async open(request, options) {
      const stream = await source.open(request, options);
      if (request.range !== undefined || stream.totalBytes === undefined || !targeted(request.url)) return stream;
      return corrupt(stream, stream.totalBytes, fault.mode);
    },
  };
}

function corrupt(stream: SegmentStream, total: number, mode: SegmentFault['mode']): SegmentStream {
  if (mode === 'slow') return { ...stream, chunks: late(stream.chunks) };
  if (mode === 'tease') return { ...stream, chunks: tease(stream.chunks) };
  const limit = mode === 'truncate' ? Math.max(1, Math.floor(total / 2)) : total;
  async function* chunks(): AsyncGenerator<Uint8Array> {
    let sent = 0;
    for await (const chunk of stream.chunks) {
      if (sent >= limit) break;
      let out = chunk.subarray(0, Math.min(chunk.byteLength, limit - sent));
      if (mode === 'flip') {
        out = Uint8Array.from(out);
        const i = out.byteLength >> 1;
        out[i] = (out[i] as number) ^ 0xff;
      }
      sent += out.byteLength;
      yield out;
    }
    if (mode === 'extend') yield new Uint8Array(EXTRA_BYTES).fill(0x47);
  }
  return {
    offset: stream.offset,
    totalBytes: mode === 'truncate' ? limit : mode === 'extend' ? total + EXTRA_BYTES : total,
    // A digest the relay knows would describe the honest bytes: not announced for corrupted ones.
    digest: undefined,
    fromCache: stream.fromCache,
    chunks: chunks(),
  };
}

async function* late(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  await new Promise((r) => setTimeout(r, SLOW_FIRST_BYTE_MS));
  yield* chunks;
}

async function* tease(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  for await (const chunk of chunks) {
    yield chunk.subarray(0, TEASE_BYTES);
    break;
  }
  await new Promise((r) => setTimeout(r, TEASE_HOLD_MS));
}
