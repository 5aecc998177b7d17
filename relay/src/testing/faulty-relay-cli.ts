// relaycast-faulty-relay: the relay's own CLI plus --test-fault, composing the faulty source over
// the relay's origin source. TEST ONLY: declared as a bin of the test workspace, never of the relay.
import { runCli, valueType, type ValueType } from '@relaycast/cli-kit';
import { nodeSettings } from '../cli/relay-config.js';
import { relayCommand } from '../cli/relay-command.js';
import { createRelayOriginSource } from '../node/relay-node.js';
import { parseSegmentFault, withSegmentFault, type SegmentFault } from './faulty-segment-source.js';

const segmentFault: ValueType<SegmentFault> = valueType({
  metavar: 'MODE[:N]',
  parse: (raw) => (typeof raw === 'object' && raw !== null ? (raw as SegmentFault) : parseSegmentFault(String(raw))),
  format: (f) => `${f.mode}:${f.every}`,
});

await runCli('relaycast-faulty-relay', (ctx) =>
  relayCommand(ctx, {
    extraSettings: {
      testFault: {
        type: segmentFault,
        flag: 'test-fault',
        defaultText: 'none, an honest relay',
        group: 'Test only',
        help: 'corrupt (flip|truncate|extend), delay (slow) or stall after 1 KiB (tease) every N-th segment served, N default 1',
      },
    },
    startOptions: ({ config, relayId, logger }) => {
      const fault = config['testFault'] as SegmentFault | undefined;
      if (fault === undefined) return {};
      logger.warn({ testFault: fault }, 'TEST FAULT ENABLED: this relay serves corrupted segments');
      return { source: withSegmentFault(createRelayOriginSource(nodeSettings(config), relayId, logger), fault) };
    },
  }),
);
