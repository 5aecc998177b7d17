import { afterAll, beforeEach } from 'vitest';
import { live, stopAll } from './processes.js';

/**
 * Call once at the top of a test file: every process left is killed after the file, and when a
 * test fails the recent output of every process it started is printed. (Kept apart from
 * processes.ts so scripts outside vitest, like the soak run, can start processes too.)
 */
export function useProcesses(): void {
  beforeEach((ctx) => {
    ctx.onTestFailed(() => {
      for (const p of live) {
        const state = p.exited ? `exited ${p.child.exitCode ?? p.child.signalCode}` : 'running';
        process.stderr.write(`\n----- ${p.name} (pid ${p.child.pid}, ${state}) last output -----\n${p.output()}\n`);
      }
    });
  });
  afterAll(stopAll);
}
