#!/usr/bin/env node
// Installed, `#relaycast-tracker` is the compiled dist/cli.js and plain node runs it. In the repository every
// process runs with --conditions=relaycast-source (.npmrc): it is then the TypeScript source, which tsx, a
// development dependency, compiles on load.
const entry = import.meta.resolve('#relaycast-tracker');
if (entry.endsWith('.ts')) (await import('tsx/esm/api')).register();
await import(entry);
