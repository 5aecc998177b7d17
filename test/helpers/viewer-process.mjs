#!/usr/bin/env node
// Runs viewer-process-main.ts under tsx, so a test can start a Node SDK viewer inside a network namespace.
import { register } from 'tsx/esm/api';

register();
await import('./viewer-process-main.ts');
