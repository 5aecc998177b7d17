import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // End-to-end files start real processes, ports and ffmpeg: one file at a time on a 2-core machine.
    fileParallelism: false,
    projects: [
      {
        test: {
          name: 'unit',
          include: ['{protocol,cli-kit,origin-tools,tracker,relay,player-sdk,contracts-client,devnet}/src/**/*.test.ts'],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/**/*.test.ts'],
          testTimeout: 180_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
