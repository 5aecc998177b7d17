import { ErrorCode } from '@relaycast/protocol';
import { describe, expect, it } from 'vitest';
import { parseMediaPlaylist } from './hls-playlist.js';

describe('parseMediaPlaylist', () => {
  it('reads target duration, media sequence, end list and resolves segment URIs', () => {
    const text = [
      '#EXTM3U',
      '#EXT-X-VERSION:3',
      '#EXT-X-TARGETDURATION:4',
      '#EXT-X-MEDIA-SEQUENCE:17',
      '#EXTINF:4.0,',
      'seg17.ts',
      '#EXTINF:4.0,',
      '../other/seg18.ts?tok=1',
      '#EXTINF:4.0,',
      'https://cdn.example.com/abs/seg19.ts',
      '#EXT-X-ENDLIST',
      '',
    ].join('\r\n');
    const p = parseMediaPlaylist(text, 'http://o.example/media/v1/index.m3u8?sig=x');
    expect(p.targetDurationSec).toBe(4);
    expect(p.mediaSequence).toBe(17);
    expect(p.endList).toBe(true);
    expect(p.isMaster).toBe(false);
    expect(p.segments).toEqual([
      { url: 'http://o.example/media/v1/seg17.ts', uri: 'seg17.ts', sequence: 17 },
      { url: 'http://o.example/media/other/seg18.ts?tok=1', uri: '../other/seg18.ts?tok=1', sequence: 18 },
      { url: 'https://cdn.example.com/abs/seg19.ts', uri: 'https://cdn.example.com/abs/seg19.ts', sequence: 19 },
    ]);
    expect(p.initSegmentUris).toEqual([]);
  });

  it('lists EXT-X-MAP init segments as written', () => {
    const p = parseMediaPlaylist('#EXTM3U\n#EXT-X-MAP:URI="init.mp4"\n#EXTINF:2,\nseg0.m4s\n#EXT-X-MAP:URI="init.mp4"\n', 'http://o/x/i.m3u8');
    expect(p.initSegmentUris).toEqual(['init.mp4']);
    expect(p.segments.map((s) => s.uri)).toEqual(['seg0.m4s']);
  });

  it('treats a playlist without EXT-X-ENDLIST as live', () => {
    const p = parseMediaPlaylist('#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\na.ts\n', 'http://o/x/i.m3u8');
    expect(p.endList).toBe(false);
    expect(p.mediaSequence).toBe(0);
    expect(p.segments.map((s) => s.url)).toEqual(['http://o/x/a.ts']);
  });

  it('recognises a master playlist and lists no segments', () => {
    const p = parseMediaPlaylist('#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nlow/index.m3u8\n', 'http://o/m.m3u8');
    expect(p.isMaster).toBe(true);
    expect(p.segments).toEqual([]);
  });

  it('refuses text that is not a playlist', () => {
    expect(() => parseMediaPlaylist('<html>', 'http://o/m.m3u8')).toThrowError(expect.objectContaining({ code: ErrorCode.PLAYLIST_INVALID }));
  });
});
