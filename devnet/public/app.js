// The local network's page: a player (hls.js + the Relaycast SDK) and a dashboard fed by
// GET /api/network. No secret belongs in this file: it is served to any browser.
import Hls from 'hls.js';
import { RelaycastHls } from '@relaycast/player-sdk/hls';

const $ = (id) => document.getElementById(id);
const video = $('video');
const fatalErrors = [];
const state = { hls: undefined, relaycast: undefined, network: undefined, history: [] };
window.relaycastDevnet = { video, fatalErrors, state };

const mib = (n) => `${(n / 1048576).toFixed(1)} MiB`;
const short = (id) => (id === undefined ? '—' : `${id.slice(0, 4)}…${id.slice(-4)}`);

async function getJson(path, init) {
  const res = await fetch(path, init);
  if (!res.ok) throw new Error(`${path}: ${res.status}`);
  return res.json();
}

async function play(config, which) {
  await state.relaycast?.destroy();
  state.hls?.destroy();
  const relaycast = new RelaycastHls({ trackerUrl: config.trackerUrl, payments: config.grantUrl ? { grantUrl: config.grantUrl } : undefined });
  const hls = new Hls({ ...relaycast.hlsConfig() });
  relaycast.attach(hls);
  hls.on(Hls.Events.ERROR, (_e, data) => {
    if (data.fatal) fatalErrors.push(`${data.type}/${data.details}`);
  });
  hls.loadSource(config.streams[which]);
  hls.attachMedia(video);
  video.play().catch(() => undefined);
  Object.assign(state, { hls, relaycast });
  window.relaycastDevnet.hls = hls;
  window.relaycastDevnet.relaycast = relaycast;
}

function drawChart() {
  const canvas = $('chart');
  const ctx = canvas.getContext('2d');
  const h = state.history.slice(-60);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const max = Math.max(1, ...h.map((p) => Math.max(p.relays, p.origin)));
  const x = (i) => (i / 59) * (canvas.width - 10) + 5;
  const y = (v) => canvas.height - 10 - (v / max) * (canvas.height - 30);
  for (const [key, color] of [
    ['relays', '#4cc38a'],
    ['origin', '#e5a04a'],
  ]) {
    ctx.strokeStyle = color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    h.forEach((p, i) => (i === 0 ? ctx.moveTo(x(i), y(p[key])) : ctx.lineTo(x(i), y(p[key]))));
    ctx.stroke();
  }
  ctx.fillStyle = '#8a8f98';
  ctx.fillText(`${mib(max)}/s`, 8, 14);
}

function renderRelays(net) {
  const body = $('relays').querySelector('tbody');
  body.replaceChildren(
    ...net.relays.map((r) => {
      const tr = document.createElement('tr');
      tr.dataset.relay = r.name;
      const cells = [
        `${r.name} <code>${short(r.relayId)}</code>`,
        r.up ? (r.registered ? 'serving' : 'up, not registered') : 'down',
        r.health === undefined ? '—' : r.health.toFixed(2),
        r.reachability ?? 'untested',
        mib(r.bytesServed),
        String(r.viewers),
        r.payments ? `${r.payments.receipts} sessions, ${r.payments.unpaid} unpaid` : '—',
        r.balance === undefined ? '—' : `${r.balance} (${r.redemptions.length} payouts)`,
      ];
      for (const [i, html] of cells.entries()) {
        const td = document.createElement('td');
        td.innerHTML = html;
        if (i === 1) td.className = r.up ? 'up' : 'down';
        tr.append(td);
      }
      const td = document.createElement('td');
      const button = document.createElement('button');
      button.textContent = r.up ? 'kill' : 'restart';
      button.dataset.action = r.up ? 'kill' : 'restart';
      button.onclick = async () => {
        button.disabled = true;
        // JSON and the custom header: the server refuses state changes any other page could send.
        await fetch(`/api/relays/${r.name}/${button.dataset.action}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-relaycast-devnet': '1' },
          body: '{}',
        }).catch(() => undefined);
      };
      td.append(button);
      tr.append(td);
      return tr;
    }),
  );
}

function renderFigures(id, pairs) {
  $(id).replaceChildren(
    ...pairs.flatMap(([k, v]) => {
      const dt = document.createElement('dt');
      dt.textContent = k;
      const dd = document.createElement('dd');
      dd.textContent = v;
      return [dt, dd];
    }),
  );
}

async function tick() {
  try {
    const net = await getJson('/api/network');
    const prev = state.network;
    state.network = net;
    if (prev !== undefined) {
      const dt = Math.max(0.001, (net.atMs - prev.atMs) / 1000);
      const relays = net.relays.reduce((a, r) => a + r.bytesServed, 0) - prev.relays.reduce((a, r) => a + r.bytesServed, 0);
      state.history.push({ relays: Math.max(0, relays) / dt, origin: Math.max(0, net.origin.bytesToViewers - prev.origin.bytesToViewers) / dt });
      if (state.history.length > 120) state.history.shift();
    }
    drawChart();
    renderRelays(net);
    const s = state.relaycast?.getStats();
    if (s !== undefined) {
      renderFigures('viewer', [
        ['from relays', mib(s.bytesFromRelays)],
        ['from origin', mib(s.bytesFromOrigin)],
        ['relay share', `${(s.relayShare * 100).toFixed(1)} %`],
        ['verified relay bytes', mib(s.integrity.verifiedBytes)],
        ['integrity failures', String(s.integrity.failures)],
        ['receipts signed', s.payments ? String(s.payments.receiptsSent) : '—'],
        ['rebuffers', `${s.playback.rebufferCount} (${s.playback.rebufferMs} ms)`],
        ['connected relays', s.relays.map(short).join(', ') || '—'],
      ]);
    }
    if (net.settlement) {
      renderFigures('settlement', [
        ['treasury balance', `${net.settlement.treasuryBalance ?? '—'} tokens`],
        ['mint', net.settlement.mint],
        ['payouts confirmed', String(net.settlement.redemptions.length)],
      ]);
      $('redemptions').replaceChildren(
        ...net.settlement.redemptions.slice(0, 10).map((r) => {
          const li = document.createElement('li');
          li.dataset.relay = r.relay;
          li.innerHTML = `${r.relay}: <code>${r.signature}</code>`;
          return li;
        }),
      );
    }
  } catch {
    // the network is starting or stopping; try again next tick
  }
}

/** Says plainly who can get a grant, as the settlement service states it. */
function renderGrantAuth(grantAuth) {
  const el = $('grant-auth');
  el.dataset.grantAuth = grantAuth ?? 'unknown';
  el.className = grantAuth === 'open' ? 'grant-auth open' : 'grant-auth';
  el.textContent =
    grantAuth === 'open'
      ? 'Grant auth: open (development mode): anyone who can reach this settlement service gets a grant, paid from the treasury. A platform runs the settler with --grant-auth jwt.'
      : grantAuth === undefined
        ? 'Grant auth: not stated by the settlement service.'
        : `Grant auth: ${grantAuth}.`;
}

const config = await getJson('/api/config');
window.relaycastDevnet.config = config;
renderGrantAuth(config.grantAuth);
await play(config, 'vod');
for (const input of document.querySelectorAll('input[name=stream]')) input.onchange = () => play(config, input.value);
setInterval(tick, 1000);
void tick();
