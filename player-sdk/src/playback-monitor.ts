/** The part of a media element the monitor listens to. */
export interface MediaElementLike {
  addEventListener(type: string, listener: () => void): void;
  removeEventListener(type: string, listener: () => void): void;
}

/** What the viewer felt so far: the `playback` part of `RelaycastHls.getStats()`; times in ms. */
export interface PlaybackStatsSnapshot {
  /** From attach to the first `playing`, undefined until playback starts. */
  startupMs: number | undefined;
  /** Stalls after playback started (seeks excluded). */
  rebufferCount: number;
  /** Total stalled time, including a stall still in progress. */
  rebufferMs: number;
}

/**
 * Watches a media element for what viewers feel: startup time and rebuffering. Player-agnostic:
 * it only needs the element's standard events (`playing`, `waiting`, `seeking`, `seeked`).
 */
export class PlaybackMonitor {
  private readonly attachedAt = performance.now();
  private startupMs: number | undefined;
  private rebufferCount = 0;
  private rebufferMs = 0;
  private stallStartedAt: number | undefined;
  private seeking = false;
  private readonly handlers: [string, () => void][];

  constructor(private readonly media: MediaElementLike) {
    this.handlers = [
      ['playing', () => this.onPlaying()],
      ['waiting', () => this.onWaiting()],
      [
        'seeking',
        () => {
          this.seeking = true;
          this.endStall(false);
        },
      ],
      [
        'seeked',
        () => {
          this.seeking = false;
        },
      ],
    ];
    for (const [type, fn] of this.handlers) media.addEventListener(type, fn);
  }

  snapshot(): PlaybackStatsSnapshot {
    const ongoing = this.stallStartedAt === undefined ? 0 : performance.now() - this.stallStartedAt;
    return { startupMs: this.startupMs, rebufferCount: this.rebufferCount, rebufferMs: this.rebufferMs + ongoing };
  }

  detach(): void {
    for (const [type, fn] of this.handlers) this.media.removeEventListener(type, fn);
  }

  private onPlaying(): void {
    this.startupMs ??= performance.now() - this.attachedAt;
    this.endStall(true);
  }

  private onWaiting(): void {
    // Before the first frame it is startup, during a seek it is the seek: neither is a rebuffer.
    if (this.startupMs === undefined || this.seeking || this.stallStartedAt !== undefined) return;
    this.stallStartedAt = performance.now();
    this.rebufferCount++;
  }

  private endStall(count: boolean): void {
    if (this.stallStartedAt === undefined) return;
    if (count) this.rebufferMs += performance.now() - this.stallStartedAt;
    else this.rebufferCount--;
    this.stallStartedAt = undefined;
  }
}
