import {
  LOG_SETTINGS,
  bool,
  configInvalid,
  defineCommand,
  defineSettings,
  runCli,
  text,
  waitForAbort,
  type SettingsInput,
  type SettingsSpec,
  type SettingsTable,
} from '@relaycast/cli-kit';
import { ErrorCode } from '@relaycast/protocol';
import { DEFAULT_CLI_PORT } from './constants.js';
import { loadOrCreateTrackerKey, readRelayAllowlist } from './tracker-files.js';
import {
  ICE_SETTINGS,
  ICE_URL_COUNT,
  LIMIT_SETTINGS,
  REACHABILITY_SETTINGS,
  REPUTATION_SETTINGS,
  TRACKER_ENV_PREFIX,
  TRACKER_SETTINGS,
  TRUST_SETTINGS,
  type TrackerOptions,
} from './tracker-options.js';
import { startTracker } from './tracker-server.js';

const BIN = 'relaycast-tracker';

/** The entries of a library table, shown under one USAGE section. */
function inGroup<S extends SettingsSpec>(spec: S, group: string): S {
  return Object.fromEntries(Object.entries(spec).map(([key, e]) => [key, { ...e, group }])) as unknown as S;
}

// Every option of startTracker is a flag (its entry in tracker-options.ts), except the TURN secret
// (environment only: flags show in `ps`) and the reachability switch (--no-reachability-test). The
// key and the allowlist are read from files named here.
const { turnSecret: _secretFromEnvOnly, ...ICE_FLAGS } = ICE_SETTINGS.spec;
const { enabled: _enabledByNegatedFlag, ...REACHABILITY_FLAGS } = REACHABILITY_SETTINGS.spec;
const TURN_SECRET = ICE_SETTINGS.pick(['turnSecret']);

const SETTINGS = defineSettings(
  {
    ...TRACKER_SETTINGS.spec,
    port: { ...TRACKER_SETTINGS.spec.port, default: DEFAULT_CLI_PORT },
    statusToken: { ...TRACKER_SETTINGS.spec.statusToken, group: 'Trust' },
    key: {
      type: text({ metavar: 'FILE' }),
      flag: 'key',
      group: 'Trust',
      defaultText: 'an ephemeral key per run',
      help: 'tracker signing key, a Solana CLI keypair file (created 0600 when missing; refused when others may read it)',
    },
    ...inGroup(TRUST_SETTINGS.spec, 'Trust'),
    relayAllowlist: {
      type: text({ metavar: 'FILE' }),
      flag: 'relay-allowlist',
      group: 'Trust',
      help: 'with --relay-admission allowlist: one base58 relay id per line, # comments; SIGHUP re-reads it and closes relays no longer listed',
    },
    ...inGroup(REPUTATION_SETTINGS.spec, 'Reputation (docs/THREAT-MODEL.md)'),
    ...inGroup(LIMIT_SETTINGS.spec, 'Limits'),
    ...inGroup(ICE_FLAGS, 'ICE'),
    noReachabilityTest: { type: bool(), flag: 'no-reachability-test', group: 'Reachability', help: 'do not probe relays (they all rank as untested)' },
    ...inGroup(REACHABILITY_FLAGS, 'Reachability'),
    ...LOG_SETTINGS,
  },
  {
    envPrefix: TRACKER_ENV_PREFIX,
    checks: [
      ...(REPUTATION_SETTINGS.options.checks ?? []),
      ICE_URL_COUNT,
      (v, name) => {
        if (v.relayAdmission === 'allowlist' && v.relayAllowlist === undefined)
          throw configInvalid(`${name('relayAdmission')} allowlist needs ${name('relayAllowlist')} FILE`);
        if (v.relayAdmission !== 'allowlist' && v.relayAllowlist !== undefined)
          throw configInvalid(`${name('relayAllowlist')} needs ${name('relayAdmission')} allowlist`);
      },
    ],
  },
);

/** The settings of one library table among the bin's values. */
function valuesOf<S extends SettingsSpec>(table: SettingsTable<S>, values: Readonly<Record<string, unknown>>): SettingsInput<S> {
  return Object.fromEntries(table.keys().flatMap((k) => (values[k] === undefined ? [] : [[k, values[k]]]))) as SettingsInput<S>;
}

const TRACKER = defineCommand({
  settings: SETTINGS,
  usage: {
    synopsis: '[options]',
    about: `Runs a Relaycast tracker: WebSocket protocol and HTTP /healthz, /status on one port.
The TURN shared secret is read from ${TURN_SECRET.envOf('turnSecret')} only (coturn use-auth-secret).`,
    notes: 'Logs go to stdout. SIGINT/SIGTERM close connections and exit 0; a second one exits 130 at once.',
  },
  run: async ({ values: v, logger, signal, env }) => {
    const { turnSecret } = TURN_SECRET.fromEnv(env);
    if (v.turnUrls.length > 0 && turnSecret === undefined) {
      throw configInvalid(`${SETTINGS.flagOf('turnUrls')} needs the TURN shared secret in ${TURN_SECRET.envOf('turnSecret')} (at least 16 characters)`);
    }
    let secretKey: Uint8Array | undefined;
    if (v.key !== undefined) {
      const loaded = await loadOrCreateTrackerKey(v.key, signal);
      secretKey = loaded.secretKey;
      if (loaded.created) logger.info({ path: v.key }, 'created tracker key file');
    }
    const allowlistPath = v.relayAllowlist;
    const options: TrackerOptions = {
      ...valuesOf(TRACKER_SETTINGS, v),
      limits: valuesOf(LIMIT_SETTINGS, v),
      reputation: valuesOf(REPUTATION_SETTINGS, v),
      ice: { ...valuesOf(ICE_SETTINGS, v), turnSecret },
      reachability: { ...valuesOf(REACHABILITY_SETTINGS, v), enabled: v.noReachabilityTest !== true },
      trust: {
        ...valuesOf(TRUST_SETTINGS, v),
        secretKey,
        relayAllowlist: allowlistPath === undefined ? [] : await readRelayAllowlist(allowlistPath, signal),
      },
      logger,
    };
    const tracker = await startTracker(options, signal).finally(() => secretKey?.fill(0));
    if (allowlistPath !== undefined) {
      // SIGHUP re-reads the allowlist: relays are added and removed without a restart.
      process.on('SIGHUP', () => {
        readRelayAllowlist(allowlistPath)
          .then((ids) => tracker.setRelayAllowlist(ids))
          .catch((err: unknown) => logger.error({ err, path: allowlistPath }, 'relay allowlist not reloaded; keeping the previous one'));
      });
    }
    await waitForAbort(signal);
    logger.info('shutting down');
    await tracker.close();
  },
});

// A key file others may read is the operator's configuration to fix, like a bad flag.
await runCli(BIN, TRACKER, { configCodes: [ErrorCode.KEY_PERMISSIONS] });
