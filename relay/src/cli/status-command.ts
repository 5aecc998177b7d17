import { getAssociatedTokenAddressSync } from '@solana/spl-token';
import { Connection, PublicKey } from '@solana/web3.js';
import { ErrorCode, RELAY_STATUS_PATHS, RelaycastError } from '@relaycast/protocol';
import { SETTLER_PATHS, decodeSettlerInfo, settlerEndpoint } from '@relaycast/protocol/settlement';

export interface StatusCommandOptions {
  /** The running relay's status port (it must have been started with --status-port). Required. */
  statusPort: number;
  /** Solana JSON-RPC URL, to read the relay's token balance. Default: none (balance not shown). */
  rpcUrl?: string | undefined;
  /** Payer → settler URL, to learn each payer's mint. Default: none. */
  payers?: ReadonlyMap<string, string> | undefined;
  /** Time each request may take. Default: 5 s. */
  timeoutMs?: number | undefined;
  signal?: AbortSignal | undefined;
}

interface StatusBody {
  relayId: string;
  registered: boolean;
  viewers: number;
  peers: number;
  requests: number;
  cacheHits: number;
  bytesServed: number;
  errors: number;
  maxUploadBytesPerSec: number;
  cache?: { segments: number; bytes: number; maxBytes: number; keyQuery?: string; originBytes?: number; originRate?: { refusals: number } };
  offers?: { refused: Record<string, number>; displaced: number };
  remoteCandidatesDropped?: number;
  payments?: {
    receipts: number;
    receipted?: string;
    earned: string;
    shortfall?: string;
    paid: string;
    unpaid: string;
    pending: string;
    unreceiptedBytes: number;
    byPayer?: { payer: string; shortfallByCode?: Record<string, string> }[];
  };
  nat?: {
    reachability?: string;
    reachedAddress?: string;
    publicAddress?: string;
    portMapping?: { status: string; method?: string; externalHost?: string; externalPort?: number; renewals: number };
    hint: string;
  };
}

export interface StatusReport {
  status: StatusBody;
  balances: { payer: string; mint: string; amount: string | undefined }[];
}

const mib = (n: number): string => `${(n / 1048576).toFixed(1)} MiB`;

/**
 * `relaycast-relay status`: what the operator wants to know at a glance, from the running relay's
 * local status interface, plus its token balance per payer when an RPC URL is configured.
 * Throws RC_ERR_CONFIG_INVALID when no relay answers on the port; an unreadable balance is shown
 * as such rather than failing the command.
 */
export async function readRelayStatus(options: StatusCommandOptions): Promise<StatusReport> {
  const timeout = (): AbortSignal => AbortSignal.any([AbortSignal.timeout(options.timeoutMs ?? 5_000), ...(options.signal ? [options.signal] : [])]);
  let status: StatusBody;
  try {
    const res = await fetch(`http://127.0.0.1:${options.statusPort}${RELAY_STATUS_PATHS.status}`, { signal: timeout() });
    if (!res.ok) throw new Error(`answered ${res.status}`);
    status = (await res.json()) as StatusBody;
  } catch (err) {
    throw new RelaycastError(
      ErrorCode.CONFIG_INVALID,
      `no relay answers on status port ${options.statusPort} (start it with --status-port ${options.statusPort}): ${(err as Error).message}`,
      { cause: err },
    );
  }
  const balances: StatusReport['balances'] = [];
  if (options.rpcUrl !== undefined && options.payers !== undefined) {
    const connection = new Connection(options.rpcUrl, 'confirmed');
    for (const [payer, url] of options.payers) {
      try {
        const info = decodeSettlerInfo(await (await fetch(settlerEndpoint(url, SETTLER_PATHS.info), { signal: timeout() })).json());
        const account = getAssociatedTokenAddressSync(new PublicKey(info.mint), new PublicKey(status.relayId));
        const amount = (await connection.getTokenAccountBalance(account)).value.uiAmountString;
        balances.push({ payer, mint: info.mint, amount });
      } catch {
        balances.push({ payer, mint: '?', amount: undefined });
      }
    }
  }
  return { status, balances };
}

function natLines(n: StatusBody['nat']): string[] {
  if (n === undefined) return [];
  const m = n.portMapping;
  const mapping =
    m === undefined
      ? 'no port mapping (--map-port off)'
      : m.status === 'mapped'
        ? `${m.method ?? 'mapped'} ${m.externalHost ?? '?'}:${m.externalPort ?? '?'} (renewed ${m.renewals}x)`
        : `port mapping ${m.status}`;
  return [`network   ${n.reachability ?? 'untested'}; public address ${n.publicAddress ?? 'unknown'}; ${mapping}`, `          ${n.hint}`];
}

/** Origin bytes, the cache key mode and what the relay turned away (origin rate, offers, candidates). */
function edgeLines(s: StatusBody): string[] {
  const lines: string[] = [];
  if (s.cache?.originBytes !== undefined) {
    const refused = s.cache.originRate?.refusals ?? 0;
    lines.push(
      `origin    ${mib(s.cache.originBytes)} fetched; query strings ${s.cache.keyQuery === 'keep' ? 'KEPT in the cache key (unsafe)' : 'ignored by the cache'}; ${refused} cache misses refused by the origin rate`,
    );
  }
  if (s.offers !== undefined) {
    const refused = Object.entries(s.offers.refused).map(([code, n]) => `${n} ${code}`);
    lines.push(
      `offers    ${refused.length === 0 ? 'none refused' : `refused: ${refused.join(', ')}`}; ${s.offers.displaced} displaced for another viewer; ${s.remoteCandidatesDropped ?? 0} viewer candidates dropped`,
    );
  }
  return lines;
}

/** The report as lines for a terminal. */
export function formatRelayStatus(r: StatusReport): string {
  const s = r.status;
  const lines = [
    `relay     ${s.relayId} (${s.registered ? 'registered with the tracker' : 'NOT registered with the tracker'})`,
    `viewers   ${s.viewers} (${s.peers} peers)`,
    s.cache === undefined
      ? 'cache     —'
      : `cache     ${s.cache.segments} segments, ${mib(s.cache.bytes)} of ${mib(s.cache.maxBytes)}; ${s.requests === 0 ? 0 : Math.round((100 * s.cacheHits) / s.requests)} % of requests from cache`,
    ...edgeLines(s),
    ...natLines(s.nat),
    `served    ${mib(s.bytesServed)} in ${s.requests} requests, ${s.errors} errors; upload cap ${s.maxUploadBytesPerSec === 0 ? 'none' : `${s.maxUploadBytesPerSec} B/s`}`,
  ];
  if (s.payments !== undefined) {
    const p = s.payments;
    lines.push(
      `receipts  ${p.receipts} sessions; earned ${p.earned}, paid ${p.paid}, unpaid ${p.unpaid}, pending ${p.pending} (base units); ${mib(p.unreceiptedBytes)} delivered not yet receipted`,
    );
    // What viewers signed for but the settler does not credit (another relay spent the grant first, too fast for its age, too late).
    const reasons = (p.byPayer ?? []).flatMap((b) => Object.entries(b.shortfallByCode ?? {}).map(([code, amount]) => `${amount} ${code} (payer ${b.payer})`));
    if (p.shortfall !== undefined && p.shortfall !== '0')
      lines.push(`shortfall ${p.shortfall} of ${p.receipted ?? '?'} receipted not credited: ${reasons.join(', ')}`);
  } else {
    lines.push('receipts  — (a free relay: no --accept-payer)');
  }
  for (const b of r.balances) lines.push(`balance   ${b.amount ?? 'unreadable'} tokens of mint ${b.mint} (payer ${b.payer})`);
  return `${lines.join('\n')}\n`;
}
