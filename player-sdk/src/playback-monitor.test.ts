import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { PlaybackMonitor } from './playback-monitor.js';

/** A media element reduced to its events (what the monitor listens to). */
class FakeMedia extends EventTarget {
  fire(type: string): void {
    this.dispatchEvent(new Event(type));
  }
}

describe('PlaybackMonitor', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['performance'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('measures startup to the first playing event and counts later stalls with their duration', () => {
    const media = new FakeMedia();
    const m = new PlaybackMonitor(media);
    media.fire('waiting'); // before the first frame: startup, not a rebuffer
    vi.advanceTimersByTime(800);
    media.fire('playing');
    vi.advanceTimersByTime(5_000);
    media.fire('waiting');
    vi.advanceTimersByTime(300);
    expect(m.snapshot()).toEqual({ startupMs: 800, rebufferCount: 1, rebufferMs: 300 }); // stall in progress counts
    vi.advanceTimersByTime(200);
    media.fire('playing');
    vi.advanceTimersByTime(1_000);
    expect(m.snapshot()).toEqual({ startupMs: 800, rebufferCount: 1, rebufferMs: 500 });
  });

  it('does not count waiting caused by a seek', () => {
    const media = new FakeMedia();
    const m = new PlaybackMonitor(media);
    media.fire('playing');
    media.fire('seeking');
    media.fire('waiting');
    vi.advanceTimersByTime(700);
    media.fire('seeked');
    media.fire('playing');
    expect(m.snapshot().rebufferCount).toBe(0);
    expect(m.snapshot().rebufferMs).toBe(0);
  });

  it('stops listening after detach', () => {
    const media = new FakeMedia();
    const m = new PlaybackMonitor(media);
    m.detach();
    media.fire('playing');
    expect(m.snapshot().startupMs).toBeUndefined();
  });
});
