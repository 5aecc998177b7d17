/** Every default of the relay, in one place. Units are in the names. */

// --- Origin side (allowlist, fetch, cache, coalescing, live prefetch) ---

// --- Viewer side (transport, channel server, tracker client, node, CLI) ---
