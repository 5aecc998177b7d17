import { LoadStats, type FragmentLoaderContext, type HlsConfig, type Loader, type LoaderCallbacks, type LoaderConfiguration } from 'hls.js';
import { isRelaycastError } from '@relaycast/protocol';
import type { RelaycastClient } from '../relaycast-client.js';

/** A fragment loader class as hls.js's `fLoader` config takes it (hls.js constructs one per fragment). */
export type FragmentLoaderClass = new (config: HlsConfig) => Loader<FragmentLoaderContext>;

/** What `createFragmentLoaderClass` needs; `RelaycastHls.hlsConfig()` supplies it. */
export interface FragmentLoaderDeps {
  /** The stream's client once the manifest URL is known; undefined = plain HLS. */
  client: () => RelaycastClient | undefined;
  /** hls.js's own loader, for init segments, parts and whatever the core cannot serve. */
  DefaultLoader: FragmentLoaderClass;
  /** Relay time-to-first-byte deadline for the next fragment, from the buffer level. */
  ttfbTimeoutMs: () => number;
  /** Media buffered ahead of the playhead, ms (drives the startup policy); undefined when unknown. Default: unknown. */
  bufferAheadMs?: (() => number | undefined) | undefined;
  /**
   * What hls.js knows of the fragment's media playlist: live or not, target duration in ms (paces
   * the retries of a missing or failed digest sidecar, see `LoadRequest.live`). Default: none (unknown).
   */
  playlist?: ((frag: FragmentLoaderContext['frag']) => { live: boolean; targetDurationMs: number | undefined } | undefined) | undefined;
}

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer ? bytes.buffer : bytes.slice().buffer;
}

/**
 * Builds the `fLoader` class hls.js constructs per fragment. Media fragments go through the
 * Relaycast client (relays, then origin); the loader keeps hls.js's contract: `stats` is created
 * once in the constructor and only mutated (hls.js holds it as `frag.stats`), timings describe the
 * real transfer so ABR and the abandon rules keep working, abort() reports through onAbort, and
 * destroy() may be called more than once.
 */
export function createFragmentLoaderClass(deps: FragmentLoaderDeps): FragmentLoaderClass {
  return class RelaycastFragmentLoader implements Loader<FragmentLoaderContext> {
    context: FragmentLoaderContext | null = null;
    stats: LoadStats = new LoadStats();
    private controller: AbortController | undefined;
    private delegate: Loader<FragmentLoaderContext> | undefined;
    private callbacks: LoaderCallbacks<FragmentLoaderContext> | undefined;

    constructor(private readonly hlsConfig: HlsConfig) {}

    load(context: FragmentLoaderContext, config: LoaderConfiguration, callbacks: LoaderCallbacks<FragmentLoaderContext>): void {
      this.context = context;
      this.callbacks = callbacks;
      const client = deps.client();
      const frag = context.frag;
      if (client === undefined || frag.sn === 'initSegment' || context.part !== null) {
        this.loadWithDefault(context, config, callbacks);
        return;
      }
      const stats = this.stats;
      stats.loading.start = performance.now();
      stats.loading.first = 0;
      stats.loading.end = 0;
      stats.loaded = 0;
      stats.aborted = false;
      const controller = new AbortController();
      this.controller = controller;
      const start = context.rangeStart ?? 0;
      // hls.js's rangeEnd is exclusive, like ours.
      const range = context.rangeEnd !== undefined && context.rangeEnd > 0 ? { start, end: context.rangeEnd } : start > 0 ? { start } : undefined;
      const playlist = deps.playlist?.(frag);
      client
        .loadSegment(
          { url: context.url, range, playlistUrl: frag.baseurl, live: playlist?.live, targetDurationMs: playlist?.targetDurationMs },
          {
            signal: controller.signal,
            ttfbTimeoutMs: deps.ttfbTimeoutMs(),
            bufferAheadMs: deps.bufferAheadMs?.(),
            // Bytes already handed over were discarded (failed verification, or relay and origin
            // copies that do not join). Without progress data hls.js only ever sees the final
            // data, so progress simply starts over. With progress data it has parsed them already:
            // fail the fragment so hls.js drops it and retries (the SDK no longer uses that relay).
            onRestart: () => {
              stats.loaded = 0;
              if (context.progressData !== true || controller.signal.aborted) return;
              this.controller = undefined;
              controller.abort();
              stats.loading.end = performance.now();
              callbacks.onError({ code: 0, text: 'relay bytes were discarded; reload the fragment' }, context, null, stats);
            },
            onProgress: (chunk, loaded, total) => {
              if (controller.signal.aborted) return;
              if (stats.loading.first === 0) stats.loading.first = Math.max(performance.now(), stats.loading.start);
              stats.loaded = loaded;
              if (total !== undefined) stats.total = total;
              stats.chunkCount++;
              if (context.progressData === true) callbacks.onProgress?.(stats, context, toArrayBuffer(chunk), null);
            },
          },
        )
        .then(
          (result) => {
            if (controller.signal.aborted || this.callbacks === undefined) return;
            const now = performance.now();
            stats.loading.first ||= now;
            stats.loading.end = Math.max(now, stats.loading.first);
            stats.loaded = result.data.byteLength;
            stats.total = result.data.byteLength;
            const ms = Math.max(1, stats.loading.end - stats.loading.start);
            stats.bwEstimate = (stats.loaded * 8000) / ms;
            this.controller = undefined;
            callbacks.onSuccess({ url: context.url, data: toArrayBuffer(result.data) }, stats, context, null);
          },
          (err: unknown) => {
            if (controller.signal.aborted || this.callbacks === undefined) return;
            this.controller = undefined;
            stats.loading.end = performance.now();
            const status = isRelaycastError(err) ? (err.details?.['status'] as number | undefined) : undefined;
            callbacks.onError({ code: status ?? 0, text: err instanceof Error ? err.message : String(err) }, context, null, stats);
          },
        );
    }

    abort(): void {
      if (this.delegate !== undefined) {
        this.delegate.abort();
        return;
      }
      const controller = this.controller;
      if (controller === undefined || controller.signal.aborted) return;
      this.controller = undefined;
      this.stats.aborted = true;
      controller.abort();
      if (this.context !== null) this.callbacks?.onAbort?.(this.stats, this.context, null);
    }

    destroy(): void {
      if (this.controller !== undefined) {
        this.controller.abort();
        this.controller = undefined;
      }
      this.delegate?.destroy();
      this.delegate = undefined;
      this.callbacks = undefined;
      this.context = null;
    }

    private loadWithDefault(context: FragmentLoaderContext, config: LoaderConfiguration, callbacks: LoaderCallbacks<FragmentLoaderContext>): void {
      const delegate = new deps.DefaultLoader(this.hlsConfig);
      // One stats object per fragment: hls.js already holds ours as frag.stats. hls.js's loaders
      // refuse a stats object whose loading.start is set ("Loader can only be used once").
      this.stats.loading.start = 0;
      delegate.stats = this.stats;
      this.delegate = delegate;
      delegate.load(context, config, callbacks);
    }
  };
}
