// Minimal Relaycast player: hls.js with the Relaycast fragment loader.
// Open as index.html?src=<master.m3u8 URL>&tracker=<ws URL>[&buffer=<seconds hls.js buffers ahead>].
// No secret belongs in this file.
import Hls from 'hls.js';
import { RelaycastHls } from '@relaycast/player-sdk/hls';

const params = new URLSearchParams(location.search);
const src = params.get('src');
const tracker = params.get('tracker') ?? undefined;
const buffer = Number(params.get('buffer') ?? 0);
const video = document.getElementById('video');
const out = document.getElementById('stats');

const relaycast = new RelaycastHls({ trackerUrl: tracker });
const hls = new Hls({ ...relaycast.hlsConfig(), ...(buffer > 0 ? { maxBufferLength: buffer, maxMaxBufferLength: buffer } : {}) });
relaycast.attach(hls);

const fatalErrors = [];
hls.on(Hls.Events.ERROR, (_event, data) => {
  if (data.fatal) fatalErrors.push(`${data.type}/${data.details}`);
});
// Level of every media fragment loaded, in order: what ABR decided.
const fragmentLevels = [];
hls.on(Hls.Events.FRAG_LOADED, (_event, data) => fragmentLevels.push(data.frag.level));
// SHA-256 of every media fragment hls.js received, to compare with the origin's digests. The copy
// is taken at once: hls.js hands the buffer to its transmuxing worker right after this event.
const fragments = [];
hls.on(Hls.Events.FRAG_LOADED, (_event, data) => {
  if (data.frag.sn === 'initSegment' || !(data.payload instanceof ArrayBuffer)) return;
  const entry = { url: data.frag.url, sha256: '' };
  fragments.push(entry);
  crypto.subtle.digest('SHA-256', data.payload.slice(0)).then((d) => {
    entry.sha256 = Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, '0')).join('');
  });
});

hls.loadSource(src);
hls.attachMedia(video);
video.play().catch(() => undefined);

setInterval(() => {
  const s = relaycast.getStats();
  out.textContent = JSON.stringify(
    {
      currentTime: video.currentTime.toFixed(1),
      level: hls.currentLevel,
      relayShare: s.relayShare.toFixed(3),
      bytesFromRelays: s.bytesFromRelays,
      bytesFromOrigin: s.bytesFromOrigin,
      relays: s.relays,
      fallbacks: s.fallbacks,
      integrity: s.integrity,
      playback: s.playback,
    },
    null,
    2,
  );
}, 500);

// For scripts and tests driving the page.
window.relaycastDemo = { hls, relaycast, video, fatalErrors, fragmentLevels, fragments };
