/**
 * Minimal typed event emitter that works the same in browsers and Node: the base of
 * `RelaycastClient` and `RelaycastHls`. `Events` maps each event name to its listener's signature.
 */
export class TypedEmitter<Events extends { [K in keyof Events]: (...args: never[]) => void }> {
  private readonly listeners = new Map<keyof Events, Set<Events[keyof Events]>>();

  /** Adds `listener` for `event` (once: adding the same function again does nothing). A listener that throws is ignored. */
  on<K extends keyof Events>(event: K, listener: Events[K]): this {
    let set = this.listeners.get(event);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(listener);
    return this;
  }

  /** Removes `listener` from `event`. */
  off<K extends keyof Events>(event: K, listener: Events[K]): this {
    this.listeners.get(event)?.delete(listener);
    return this;
  }

  /** Calls the listeners of `event` in the order they were added; one that throws does not stop the others. */
  protected emit<K extends keyof Events>(event: K, ...args: Parameters<Events[K]>): void {
    const set = this.listeners.get(event);
    if (set === undefined) return;
    for (const listener of [...set]) {
      try {
        (listener as (...a: Parameters<Events[K]>) => void)(...args);
      } catch {
        // A platform's listener bug must not break segment delivery.
      }
    }
  }
}
