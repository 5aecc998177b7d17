#!/usr/bin/env node
// Installed, `#relaycast-settler` is the compiled dist/settler-cli.js and plain node runs it. In the repository every
// process runs with --conditions=relaycast-source (.npmrc): it is then the TypeScript source, which tsx, a
// development dependency, compiles on load.
const entry = import.meta.resolve('#relaycast-settler');
if (entry.endsWith('.ts')) (await import('tsx/esm/api')).register();
await import(entry);
