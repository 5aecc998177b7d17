// `@relaycast/contracts-client/settler`: the settlement service. What a production settler loads:
// it never reaches the embedded chain (litesvm), which entry-points.test.ts checks. Its wire
// formats are `@relaycast/protocol/settlement`.
export { startSettler, type Settler } from './settler.js';
export type { AuthorizeGrant, GrantDecision, SettlerOptions } from './settler-options.js';
export { authorizeFor, userTag, type GrantAuthPolicy } from './grant-auth.js';
export { rebuildPaidFromChain, type RebuildOptions } from './rebuild-from-chain.js';
export { plausibleAmount } from './receipt-intake.js';
