import { ErrorCode } from '@relaycast/protocol';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { MAX_RELAY_COUNT } from './constants.js';
import { startDevnet } from './devnet.js';

describe('startDevnet', () => {
  it("refuses options out of the bin's bounds, naming the option, before it starts anything", async () => {
    const logger = pino({ level: 'silent' });
    await expect(startDevnet({ relays: MAX_RELAY_COUNT + 1, logger })).rejects.toMatchObject({
      code: ErrorCode.CONFIG_INVALID,
      message: `relays must be an integer in 1..${MAX_RELAY_COUNT} (got "${MAX_RELAY_COUNT + 1}")`,
    });
    await expect(startDevnet({ relays: 0, logger })).rejects.toMatchObject({ code: ErrorCode.CONFIG_INVALID });
    await expect(startDevnet({ webPort: 70_000, logger })).rejects.toMatchObject({ message: expect.stringMatching(/^webPort must be/) as unknown });
  });
});
