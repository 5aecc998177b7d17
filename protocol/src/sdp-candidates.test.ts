import { describe, expect, it } from 'vitest';
import { stripSdpCandidates } from './sdp-candidates.js';

describe('stripSdpCandidates', () => {
  it('drops candidate and end-of-candidates lines, keeps every other line in order, and writes CRLF', () => {
    const sdp = [
      'v=0',
      'm=application 9 UDP/DTLS/SCTP webrtc-datachannel',
      'a=ice-ufrag:abcd',
      'a=candidate:1 1 UDP 2122317823 192.168.1.20 40000 typ host',
      'a=candidate:2 1 UDP 1686109951 203.0.113.9 40000 typ srflx raddr 192.168.1.20 rport 40000',
      'a=end-of-candidates',
      'a=sctp-port:5000',
      '',
    ];
    const expected = ['v=0', 'm=application 9 UDP/DTLS/SCTP webrtc-datachannel', 'a=ice-ufrag:abcd', 'a=sctp-port:5000', ''].join('\r\n');
    expect(stripSdpCandidates(sdp.join('\r\n'))).toBe(expected);
    expect(stripSdpCandidates(sdp.join('\n'))).toBe(expected);
  });
});
