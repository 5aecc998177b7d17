/** Test kit of @relaycast/cli-kit: run a real bin and watch its output and exit status. */
export { isRunning, processState, spawnBin, type BinProcess, type SpawnBinOptions } from './spawn-bin.js';
// resolveBin lives in the main entry (the devnet starts bins with it too); re-exported for tests.
export { resolveBin } from '../resolve-bin.js';
