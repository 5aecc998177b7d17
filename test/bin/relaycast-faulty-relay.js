#!/usr/bin/env node
// TEST ONLY: the relay's CLI with --test-fault (relay/src/testing/faulty-relay-cli.ts). The
// workspace ships sources, tsx compiles them on load.
import { register } from 'tsx/esm/api';

register();
await import('@relaycast/relay/testing/faulty-relay-cli');
