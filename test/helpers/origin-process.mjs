#!/usr/bin/env node
// Runs origin-process-main.ts under tsx, so a test can serve media from inside a network namespace.
import { register } from 'tsx/esm/api';

register();
await import('./origin-process-main.ts');
