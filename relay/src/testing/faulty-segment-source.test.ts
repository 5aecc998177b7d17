import { ErrorCode } from '@relaycast/protocol';
import { describe, expect, it } from 'vitest';
import { SLOW_FIRST_BYTE_MS, parseSegmentFault, withSegmentFault } from './faulty-segment-source.js';
import type { SegmentSource } from '../serve/segment-source.js';

const BODY = Uint8Array.from({ length: 5000 }, (_, i) => i & 0xff);

const memory: SegmentSource = {
  advertisedStreams: () => [],
  close: async () => undefined,
  async open(request) {
    const start = request.range?.start ?? 0;
    const body = BODY.subarray(start, request.range?.end ?? BODY.byteLength);
    return {
      offset: start,
      totalBytes: BODY.byteLength,
      fromCache: true,
      chunks: (async function* () {
        for (let i = 0; i < body.byteLength; i += 2000) yield body.subarray(i, i + 2000);
      })(),
    };
  },
};

async function read(source: SegmentSource, url: string, range?: { start: number; end?: number }): Promise<{ bytes: Uint8Array; total: number | undefined }> {
  const s = await source.open({ url, range }, { signal: new AbortController().signal, maxChunkBytes: 2000 });
  const parts: Uint8Array[] = [];
  for await (const c of s.chunks) parts.push(c);
  return { bytes: new Uint8Array(Buffer.concat(parts)), total: s.totalBytes };
}

const differing = (a: Uint8Array, b: Uint8Array): number => {
  let n = 0;
  for (let i = 0; i < Math.min(a.byteLength, b.byteLength); i++) if (a[i] !== b[i]) n++;
  return n;
};

describe('test-only segment faults', () => {
  it('flip keeps the size and changes one byte per chunk, on every N-th distinct URL, again on refetch', async () => {
    const s = withSegmentFault(memory, { mode: 'flip', every: 2 });
    const a = await read(s, 'http://o/a.ts');
    const b = await read(s, 'http://o/b.ts');
    const bAgain = await read(s, 'http://o/b.ts');
    expect(a.bytes).toEqual(BODY);
    expect(b.bytes.byteLength).toBe(BODY.byteLength);
    expect(b.total).toBe(BODY.byteLength);
    expect(differing(b.bytes, BODY)).toBe(3);
    expect(bAgain.bytes).toEqual(b.bytes);
  });

  it('truncate announces and serves half; extend announces and serves 1000 more bytes', async () => {
    const t = await read(withSegmentFault(memory, { mode: 'truncate', every: 1 }), 'http://o/a.ts');
    expect(t.total).toBe(2500);
    expect(t.bytes).toEqual(BODY.subarray(0, 2500));
    const e = await read(withSegmentFault(memory, { mode: 'extend', every: 1 }), 'http://o/a.ts');
    expect(e.total).toBe(6000);
    expect(e.bytes.subarray(0, 5000)).toEqual(BODY);
    expect(e.bytes.byteLength).toBe(6000);
  });

  it('slow serves the honest bytes, the first one SLOW_FIRST_BYTE_MS late', async () => {
    const t0 = performance.now();
    const s = await read(withSegmentFault(memory, { mode: 'slow', every: 1 }), 'http://o/a.ts');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(SLOW_FIRST_BYTE_MS - 5);
    expect(s).toEqual({ bytes: BODY, total: BODY.byteLength });
    expect(parseSegmentFault('slow:2')).toEqual({ mode: 'slow', every: 2 });
    expect(parseSegmentFault('tease')).toEqual({ mode: 'tease', every: 1 });
  });

  it('leaves range requests alone and parses only valid flag values', async () => {
    const r = await read(withSegmentFault(memory, { mode: 'flip', every: 1 }), 'http://o/a.ts', { start: 10, end: 4000 });
    expect(r.bytes).toEqual(BODY.subarray(10, 4000));
    expect(parseSegmentFault('flip')).toEqual({ mode: 'flip', every: 1 });
    expect(parseSegmentFault('extend:3')).toEqual({ mode: 'extend', every: 3 });
    for (const bad of ['', 'flip:0', 'burn', 'flip:x', 'truncate:1:2']) {
      expect(() => parseSegmentFault(bad)).toThrow(expect.objectContaining({ code: ErrorCode.CONFIG_INVALID }));
    }
  });
});
