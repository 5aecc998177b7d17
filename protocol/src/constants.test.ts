import { describe, expect, it } from 'vitest';
import { DATA_CHANNEL_LABEL, RELAY_ID_HEADER, RELAY_STATUS_PATHS, TRACKER_HTTP_PATHS, TRACKER_SUBPROTOCOL } from './constants.js';

// Names other parts (and deployed peers, origins, operators' scripts) match byte for byte.
describe('wire names', () => {
  it('keep their exact spelling', () => {
    expect(TRACKER_SUBPROTOCOL).toBe('relaycast-tracker.1');
    expect(DATA_CHANNEL_LABEL).toBe('relaycast.1');
    expect(RELAY_ID_HEADER).toBe('x-relaycast-relay-id');
    expect(RELAY_STATUS_PATHS).toEqual({ status: '/status', metrics: '/metrics', limits: '/limits' });
    expect(TRACKER_HTTP_PATHS).toEqual({ health: '/healthz', status: '/status', metrics: '/metrics' });
  });
});
