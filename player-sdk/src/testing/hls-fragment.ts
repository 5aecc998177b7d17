// Test kit for the hls.js adapter (not exported): drives a fragment loader class the way hls.js
// does for one media fragment, without hls.js itself.
import type { FragmentLoaderContext, HlsConfig, LoaderConfiguration, LoaderResponse } from 'hls.js';
import type { FragmentLoaderClass } from '../hls/fragment-loader.js';

export interface FragmentToLoad {
  url: string;
  /** The media playlist's URL (hls.js's `frag.baseurl`). */
  playlistUrl: string;
  /** More `frag` fields hls.js sets, e.g. `type` and `level`. */
  frag?: Record<string, unknown>;
}

/** Loads one fragment through `Loader` with no retries; resolves its bytes, rejects on error or timeout. */
export function loadFragment(Loader: FragmentLoaderClass, fragment: FragmentToLoad): Promise<Uint8Array> {
  const context = {
    url: fragment.url,
    responseType: 'arraybuffer',
    type: 'media-fragment',
    frag: { sn: 1, baseurl: fragment.playlistUrl, ...fragment.frag },
    part: null,
  } as unknown as FragmentLoaderContext;
  const config = { timeout: 10_000, maxRetry: 0, retryDelay: 0, maxRetryDelay: 0 } as unknown as LoaderConfiguration;
  return new Promise((resolve, reject) => {
    new Loader({} as HlsConfig).load(context, config, {
      onSuccess: (response: LoaderResponse) => resolve(new Uint8Array(response.data as ArrayBuffer)),
      onError: (error) => reject(new Error(`fragment failed: ${error.text}`)),
      onTimeout: () => reject(new Error('fragment timed out')),
    });
  });
}
