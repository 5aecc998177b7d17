// The relaycast-relay bin (relay/bin/relaycast-relay.js runs this file).
import { runCli } from '@relaycast/cli-kit';
import { relayCommand } from './relay-command.js';

await runCli('relaycast-relay', (ctx) => relayCommand(ctx));
