/**
 * An SDP without its ICE candidate lines (`a=candidate:` and `a=end-of-candidates`), in CRLF form.
 * Candidates then travel only by trickle, or not at all: the tracker's reachability probe withholds
 * its own so that only unsolicited traffic can reach a relay.
 */
export function stripSdpCandidates(sdp: string): string {
  return sdp
    .split(/\r?\n/)
    .filter((line) => !line.startsWith('a=candidate:') && line !== 'a=end-of-candidates')
    .join('\r\n');
}
