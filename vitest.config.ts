import { defaultServerConditions } from 'vite';
import { defineConfig } from 'vitest/config';

// The workspace runs the packages' TypeScript sources: every package maps the `relaycast-source`
// export condition to src/. Test files resolve with it here, and every process a test starts inherits
// it through NODE_OPTIONS (npm adds it from .npmrc; this covers a vitest started without npm).
const SOURCE_CONDITION = 'relaycast-source';
if (!(process.env.NODE_OPTIONS ?? '').includes(`--conditions=${SOURCE_CONDITION}`)) {
  process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --conditions=${SOURCE_CONDITION}`.trim();
}

export default defineConfig({
  resolve: { conditions: [SOURCE_CONDITION, ...defaultServerConditions] },
  ssr: { resolve: { conditions: [SOURCE_CONDITION, ...defaultServerConditions], externalConditions: [SOURCE_CONDITION] } },
  test: {
    // End-to-end files start real processes, ports and ffmpeg: one file at a time on a 2-core machine.
    fileParallelism: false,
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['{protocol,cli-kit,origin-tools,tracker,relay,player-sdk,contracts-client,devnet}/src/**/*.test.ts'],
          testTimeout: 20_000,
        },
      },
      {
        extends: true,
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
