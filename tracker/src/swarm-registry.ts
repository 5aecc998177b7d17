import { ErrorCode, RelaycastError } from '@relaycast/protocol';

/**
 * Viewers per swarm. Memberships bound swarm sizes and feed /status; an empty swarm is forgotten
 * at once, so the map never holds more swarms than viewers × maxSwarmsPerViewer.
 */
export class SwarmRegistry {
  private readonly swarms = new Map<string, Set<string>>();

  constructor(private readonly maxViewersPerSwarm: number) {}

  /** Number of swarms with at least one viewer. */
  get size(): number {
    return this.swarms.size;
  }

  viewerCount(swarmId: string): number {
    return this.swarms.get(swarmId)?.size ?? 0;
  }

  /** Adds a viewer; throws RC_ERR_SWARM_FULL (and changes nothing) when the swarm is at its cap. */
  join(swarmId: string, peerId: string): void {
    const members = this.swarms.get(swarmId);
    if (members?.has(peerId) === true) return;
    if ((members?.size ?? 0) >= this.maxViewersPerSwarm) {
      throw new RelaycastError(ErrorCode.SWARM_FULL, `swarm has ${this.maxViewersPerSwarm} viewers already`);
    }
    if (members === undefined) this.swarms.set(swarmId, new Set([peerId]));
    else members.add(peerId);
  }

  leave(swarmId: string, peerId: string): void {
    const members = this.swarms.get(swarmId);
    if (members === undefined) return;
    members.delete(peerId);
    if (members.size === 0) this.swarms.delete(swarmId);
  }
}
