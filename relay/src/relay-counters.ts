/** Live counters of one relay, read by status, heartbeats and (later) metrics. */
export interface RelayCounters {
  /** DATA payload bytes sent to viewers. */
  bytesServed: number;
  /** Requests answered (any outcome). */
  requests: number;
  /** Requests served from a complete cached copy. */
  cacheHits: number;
  /** Requests that ended with ABSENT. */
  absent: number;
  /** Requests that ended with an ERROR frame, by code. */
  errorsByCode: Record<string, number>;
  /** Viewer channels closed for a protocol violation. */
  protocolViolations: number;
  /** Open viewer channels. */
  activeChannels: number;
}

export function createRelayCounters(): RelayCounters {
  return { bytesServed: 0, requests: 0, cacheHits: 0, absent: 0, errorsByCode: {}, protocolViolations: 0, activeChannels: 0 };
}
