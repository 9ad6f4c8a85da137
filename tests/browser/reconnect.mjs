#!/usr/bin/env node
// tests/browser/reconnect.mjs — a streamer's reconnect, as viewers see it:
//
//   ffmpeg A (10 s, then ends) ──┐                      ┌─▶ page "stayed"  (open all along)
//                                ├─RTMP─▶ selfcast ─HLS─┤
//   ffmpeg B (looped, later)  ───┘                      └─▶ page "arrived" (opened when B is live)
//
// The server keeps the playlist when the publisher goes away; when one comes back the playlist
// continues behind #EXT-X-DISCONTINUITY with B's init segment, and /api/status turns online once
// B's first segment is listed. The page (static/player.js) then starts hls.js at the start of
// the newest broadcast when that is nearer the live edge than hls.js's usual start
// (startOfBroadcast + hls.startLoad(position)). This test checks that in a real browser:
//
// 1. A viewer who stays: the page plays broadcast A (testsrc2, 440 Hz); A ends; /api/status
//    goes offline (what the page shows then is logged, and saved as reconnect-offline.png);
//    B (smptebars, 880 Hz) is published. The same page must play a fragment of B's
//    discontinuity (hls.js FRAG_CHANGED with a higher `cc` than A's) and get 3 s past it, with
//    no fatal hls.js error. Saves reconnect-stayed.png.
// 2. A viewer who arrives after the reconnect: a second page opened as soon as /api/status says
//    B is online (while A's segments are still in the playlist; checked) must play B from its
//    first fragment on: its first FRAG_CHANGED has the highest `cc` in its level details. It
//    must reach "playing". Saves reconnect-arrived.png. (Should A's segments have left the
//    playlist already, B is stopped and C published, and the page opened when C is online.)
//
// Also checks the server side of it: the playlist keeps A's segments and has no ENDLIST while
// offline; B continues the media sequence numbers behind a discontinuity with a new EXT-X-MAP.
//
// Usage:   node tests/browser/reconnect.mjs [path/to/selfcast]
// Env:     SELFCAST_BIN   the binary (default target/release/selfcast, relative to the repo root)
//          CHROMIUM       the browser (default /usr/bin/chromium)
//          TEST_TIMEOUT_S overall timeout (default 120)
//          HLS_DEBUG=1    hls.js debug logging into the browser logs
// Needs:   ffmpeg on PATH, chromium, `npm ci` done in tests/browser.
// Output:  tests/browser/artifacts/reconnect-*: stayed.png, arrived.png, offline.png,
//          server.log, ffmpeg-{a,b,c}.log, browser-{stayed,arrived}.log, events.json (what
//          hls.js did on each page), failure-*.png on failure. Clips are cached in .cache/.

import fs from 'node:fs';
import path from 'node:path';

import {
  ARTIFACTS, CLIP_TESTSRC2, Harness, diagnose as diagnoseAll, ensureClip, fail, fetchText,
  findBinary, getStatus, launchBrowser, newPage, openPage, publish, requireTools, sleep,
  startServer,
} from './harness.mjs';

const ADVANCE_S = 3;              // how far the page that stayed must get into B
const A_SECONDS = 10;             // broadcast A: this much of the testsrc2 clip, once
const CLIP_SMPTEBARS = { file: 'clip-smptebars-v1-10s.mp4', video: 'smptebars', tone: 880, seconds: 10 };
const PAGE_OFFLINE_WAIT_MS = 10000;   // the page polls /api/status every 3 s

const h = new Harness({ tag: 'reconnect', label: 'reconnect test', timeoutS: 120 });
const log = (message) => h.log(message);
const art = (name) => path.join(ARTIFACTS, `reconnect-${name}`);

const timings = {};
const ctx = { base: null, pages: {}, logs: {} };

// ---- In the page: record what hls.js does -----------------------------------------------------

/**
 * Runs in the page before its scripts. Patches the Hls class when hls.min.js defines
 * window.Hls, so that every instance player.js creates (it makes a new one on each (re)start)
 * is hooked once, from loadSource on: startLoad positions, level playlists as hls.js placed
 * them, fragment loads, FRAG_CHANGED (sn, cc, start, currentTime, the newest cc in the level
 * details at that moment) and errors. All in window.__rec; the media element's events too.
 */
function recorder({ debug }) {
  const rec = { instances: [], media: [], firstFrag: null };
  window.__rec = rec;
  const video = () => document.getElementById('video');
  const round = (x) => (typeof x === 'number' ? Math.round(x * 1000) / 1000 : x);
  let Hls;

  function hook(hls) {
    if (hls.__rec) return hls.__rec;
    const r = {
      id: rec.instances.length + 1, createdAt: Date.now(), startLoads: [], levelLoads: [],
      fragLoads: [], frags: [], errors: [], destroyedAt: null,
    };
    Object.defineProperty(hls, '__rec', { value: r });
    rec.instances.push(r);
    const E = Hls.Events;
    hls.on(E.LEVEL_LOADED, (event, data) => {
      const d = data.details;
      if (r.levelLoads.length >= 60) r.levelLoads.splice(5, 1);   // keep the first ones
      r.levelLoads.push({
        at: Date.now(), startSN: d.startSN, endSN: d.endSN, live: d.live,
        frags: d.fragments.map((f) => [f.sn, f.cc, round(f.start), round(f.duration)]),
      });
    });
    hls.on(E.FRAG_LOADING, (event, data) => {
      if (r.fragLoads.length < 60) {
        const f = data.frag;
        r.fragLoads.push({ at: Date.now(), sn: f.sn, cc: f.cc, start: round(f.start) });
      }
    });
    hls.on(E.FRAG_CHANGED, (event, data) => {
      const f = data.frag;
      const level = hls.levels[hls.currentLevel] || hls.levels[f.level];
      const frags = (level && level.details && level.details.fragments) || [];
      const maxCc = frags.reduce((m, x) => Math.max(m, x.cc), -1);
      const newest = frags.find((x) => x.cc === maxCc);
      const entry = {
        at: Date.now(), sn: f.sn, cc: f.cc, start: round(f.start), duration: round(f.duration),
        currentTime: round(video().currentTime), maxCc,
        newestSn: newest ? newest.sn : null, newestStart: newest ? round(newest.start) : null,
        window: frags.length ? [frags[0].sn, frags[frags.length - 1].sn] : null,
      };
      if (r.frags.length < 300) r.frags.push(entry);
      if (!rec.firstFrag) rec.firstFrag = { instance: r.id, ...entry };
    });
    hls.on(E.ERROR, (event, data) => {
      if (r.errors.length < 100) {
        r.errors.push({
          at: Date.now(), type: data.type, details: data.details, fatal: data.fatal,
          frag: data.frag ? [data.frag.sn, data.frag.cc] : null,
        });
      }
    });
    hls.on(E.DESTROYING, () => { r.destroyedAt = Date.now(); });
    return r;
  }

  function patch(H) {
    if (!H || !H.prototype || H.__recPatched) return;
    Object.defineProperty(H, '__recPatched', { value: true });
    const { loadSource, startLoad } = H.prototype;
    H.prototype.loadSource = function (...args) {
      hook(this);
      return loadSource.apply(this, args);
    };
    H.prototype.startLoad = function (...args) {
      hook(this).startLoads.push({ at: Date.now(), position: args[0], currentTime: video().currentTime });
      return startLoad.apply(this, args);
    };
    if (debug) H.DefaultConfig = { ...H.DefaultConfig, debug: true };
  }

  Object.defineProperty(window, 'Hls', {
    configurable: true,
    enumerable: true,
    get() { return Hls; },
    set(value) { Hls = value; patch(value); },
  });

  for (const type of ['loadstart', 'playing', 'waiting', 'seeking', 'seeked', 'pause', 'emptied']) {
    document.addEventListener(type, (ev) => {
      if (ev.target && ev.target.id === 'video' && rec.media.length < 300) {
        const s = window.selfcast;
        rec.media.push({
          at: Date.now(), type, currentTime: Math.round(ev.target.currentTime * 1000) / 1000,
          instance: s && s.hls && s.hls.__rec ? s.hls.__rec.id : null,
        });
      }
    }, true);
  }
}

/** A page with the recorder installed; its browser log is reconnect-browser-<name>.log. */
async function recordedPage(browser, name) {
  const logFile = art(`browser-${name}.log`);
  ctx.logs[`browser log (${name})`] = logFile;
  const { page } = await newPage(browser, logFile);
  await page.addInitScript(recorder, { debug: process.env.HLS_DEBUG === '1' });
  ctx.pages[name] = page;
  return page;
}

function readRec(page) {
  return page.evaluate(() => window.__rec);
}

/** What the page shows and plays right now. */
function pageView(page) {
  return page.evaluate(() => {
    const v = document.getElementById('video');
    const s = window.selfcast;
    return {
      state: s.state,
      overlay: document.getElementById('overlay').hidden ? null
        : document.getElementById('overlay').innerText.replace(/\s+/g, ' ').trim(),
      badge: document.getElementById('live-badge').textContent.trim(),
      hls: s.hls ? (s.hls.__rec ? s.hls.__rec.id : '?') : null,
      paused: v.paused,
      readyState: v.readyState,
      currentTime: Math.round(v.currentTime * 100) / 100,
      fatal: s.errors.filter((e) => e.fatal).map((e) => `${e.type}/${e.details}`),
    };
  });
}

/**
 * The colour of the video picture at a few points (drawn into a canvas), to tell the clips
 * apart: smptebars has 75 % grey, yellow, cyan, ... bars across its top two thirds.
 */
function sampleVideo(page) {
  return page.evaluate(() => {
    const v = document.getElementById('video');
    if (!v.videoWidth) return null;
    const c = document.createElement('canvas');
    c.width = v.videoWidth;
    c.height = v.videoHeight;
    const g = c.getContext('2d', { willReadFrequently: true });
    g.drawImage(v, 0, 0);
    // The middle of the first three of smptebars' seven bars, a third of the way down.
    return [1, 3, 5].map((i) => Array.from(g.getImageData(Math.round((c.width * i) / 14), Math.round(c.height / 3), 1, 1).data.slice(0, 3)));
  });
}

function looksLikeSmptebars(samples) {
  if (!samples) return false;
  const near = (rgb, want) => rgb.every((x, i) => Math.abs(x - want[i]) <= 40);
  return near(samples[0], [180, 180, 180]) && near(samples[1], [180, 180, 16]) && near(samples[2], [16, 180, 180]);
}

// ---- The server's playlist --------------------------------------------------------------------

async function fetchMediaPlaylist(base) {
  const master = await fetchText(`${base}/hls/stream.m3u8`);
  if (master.status !== 200) {
    return { status: master.status, url: `${base}/hls/stream.m3u8`, text: master.body, playlist: null };
  }
  const variant = master.body.split('\n').map((l) => l.trim()).find((l) => l && !l.startsWith('#'));
  const url = variant && variant.endsWith('.m3u8') ? new URL(variant, `${base}/hls/stream.m3u8`).href
    : `${base}/hls/stream.m3u8`;
  const media = url === `${base}/hls/stream.m3u8` ? master : await fetchText(url);
  return { status: media.status, url, text: media.body, playlist: media.status === 200 ? parsePlaylist(media.body) : null };
}

/** Segments with their media sequence number (sn), discontinuity count (cc, as hls.js counts),
 *  duration, EXT-X-MAP, and whether a discontinuity comes before them. */
function parsePlaylist(text) {
  const pl = { mediaSequence: 0, discontinuitySequence: 0, target: null, endlist: false, segments: [] };
  let cc = 0;
  let duration = null;
  let map = null;
  let discontinuity = false;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#EXT-X-MEDIA-SEQUENCE:')) {
      pl.mediaSequence = Number(line.slice(22));
    } else if (line.startsWith('#EXT-X-DISCONTINUITY-SEQUENCE:')) {
      pl.discontinuitySequence = cc = Number(line.slice(30));
    } else if (line === '#EXT-X-DISCONTINUITY') {
      cc += 1;
      discontinuity = true;
    } else if (line.startsWith('#EXT-X-TARGETDURATION:')) {
      pl.target = Number(line.slice(22));
    } else if (line.startsWith('#EXT-X-MAP:')) {
      map = (/URI="([^"]*)"/.exec(line) || [])[1] || line;
    } else if (line.startsWith('#EXTINF:')) {
      duration = parseFloat(line.slice(8));
    } else if (line === '#EXT-X-ENDLIST') {
      pl.endlist = true;
    } else if (line && !line.startsWith('#')) {
      pl.segments.push({ sn: pl.mediaSequence + pl.segments.length, cc, duration, map, discontinuity, uri: line });
      discontinuity = false;
    }
  }
  return pl;
}

/** "sn 0–4 cc 0 (10.0 s) | sn 5–5 cc 1 (2.0 s)" */
function describePlaylist(pl) {
  if (!pl) return '(none)';
  const runs = [];
  for (const s of pl.segments) {
    const last = runs[runs.length - 1];
    if (last && last.cc === s.cc) {
      last.to = s.sn;
      last.seconds += s.duration;
    } else {
      runs.push({ cc: s.cc, from: s.sn, to: s.sn, seconds: s.duration, map: s.map });
    }
  }
  const text = runs.map((r) => `sn ${r.from}–${r.to} cc ${r.cc} (${r.seconds.toFixed(1)} s, ${r.map})`).join(' | ');
  return `${text || 'no segments'}${pl.endlist ? ' ENDLIST' : ''}`;
}

/** The media playlist when the stream has just gone online again: B must follow A behind a
 *  discontinuity, with its own init segment and the next sequence number. Returns whether A's
 *  segments are still listed. */
function checkReconnectPlaylist(pl, ccOld, lastOldSn, label) {
  const fresh = pl.segments.filter((s) => s.cc > ccOld);
  if (fresh.length === 0) {
    fail(`/api/status says online for ${label}, but the media playlist has no segment after the old broadcast: ${describePlaylist(pl)}`);
  }
  const first = fresh[0];
  const old = pl.segments.filter((s) => s.cc <= ccOld);
  if (old.length > 0) {
    if (!first.discontinuity) {
      fail(`${label}'s first segment (sn ${first.sn}) has no #EXT-X-DISCONTINUITY before it`);
    }
    if (first.map === old[old.length - 1].map) {
      fail(`${label}'s first segment (sn ${first.sn}) uses the old init segment ${first.map}`);
    }
  }
  if (lastOldSn !== null && first.sn !== lastOldSn + 1) {
    fail(`${label}'s first segment has sn ${first.sn}; the old broadcast's last one was ${lastOldSn} (expected the numbering to continue)`);
  }
  return old.length > 0;
}

async function waitForStatus(base, online, what, exits) {
  return h.raceWith((async () => {
    for (;;) {
      try {
        const status = await getStatus(base);
        if (status.online === online) return status;
      } catch {
        // the server answers again in a moment, or the deadline fails the test
      }
      await sleep(100);
    }
  })(), what, exits);
}

// ---- The test ---------------------------------------------------------------------------------

async function main() {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  for (const name of fs.readdirSync(ARTIFACTS)) {
    if (name.startsWith('reconnect-')) fs.rmSync(path.join(ARTIFACTS, name), { force: true });
  }
  const serverLog = art('server.log');
  ctx.logs['server log'] = serverLog;

  const bin = findBinary();
  requireTools();
  const clipA = ensureClip(h, CLIP_TESTSRC2);
  const clipB = ensureClip(h, CLIP_SMPTEBARS);

  // -- Server, browser, the page that stays --
  const { base, rtmpUrl, server, initial, serverToStatus } = await startServer(h, {
    bin, script: 'reconnect.mjs', logFile: serverLog,
  });
  ctx.base = base;
  timings.serverToStatus = serverToStatus;
  log(`/api/status answered after ${serverToStatus} ms: online=${initial.online}`);
  if (initial.online !== false) {
    fail(`/api/status says online=${JSON.stringify(initial.online)} before anyone publishes; expected false`);
  }
  const alive = [server.exited];

  const browser = await launchBrowser(h, alive);
  const stayed = await recordedPage(browser, 'stayed');
  log(`page "stayed": opening ${base}/`);
  await openPage(h, stayed, base, alive);
  await h.raceWith(stayed.waitForFunction(() => window.selfcast && window.selfcast.state === 'offline',
    null, { timeout: 0, polling: 100 }), 'waiting for the page to show the offline state', alive);
  log(`page "stayed" shows offline; hls.js ${await stayed.evaluate(() => window.Hls && window.Hls.version)}`);

  // -- Broadcast A: 10 s, then ffmpeg ends --
  ctx.logs['ffmpeg log (A)'] = art('ffmpeg-a.log');
  log(`publishing A: the first ${A_SECONDS} s of ${path.basename(clipA)} (testsrc2, 440 Hz), once`);
  const publishA = Date.now();
  const ffmpegA = publish(h, { name: 'ffmpeg A', clip: clipA, rtmpUrl, logFile: art('ffmpeg-a.log'), seconds: A_SECONDS });
  const aOutcome = await h.raceWith(stayed.waitForFunction(() => {
    const v = document.getElementById('video');
    if (window.selfcast.errors.some((e) => e.fatal)) return 'fatal';
    const r = window.selfcast.hls && window.selfcast.hls.__rec;
    return r && r.frags.length > 0 && window.__firstPlayingAt !== undefined && v.currentTime > 0.5 ? 'playing' : false;
  }, null, { timeout: 0, polling: 100 }).then((handle) => handle.jsonValue()),
  'waiting for the page to play A', [...alive, ffmpegA.exited]);
  if (aOutcome === 'fatal') fail(`fatal hls.js error while playing A: ${(await pageView(stayed)).fatal.join(', ')}`);
  timings.publishAToPlaying = (await stayed.evaluate(() => window.__firstPlayingAt)) - publishA;
  log(`page "stayed" plays A (${timings.publishAToPlaying} ms after publishing)`);

  const why = await h.raceWith(ffmpegA.exited, 'waiting for ffmpeg A to finish its clip', alive);
  const endA = Date.now();
  if (ffmpegA.child.exitCode !== 0) fail(`${why} (publishing A); see ${art('ffmpeg-a.log')}`);
  const recA = await readRec(stayed);
  const fragsA = recA.instances.flatMap((r) => r.frags);
  const ccA = Math.max(...fragsA.map((f) => f.cc));
  log(`A ended (${why}); page "stayed" played A's fragments sn ${fragsA[0].sn}–${fragsA[fragsA.length - 1].sn}, cc ${ccA}`);

  // -- A is gone: the server says offline, the playlist keeps A --
  const offlineStatus = await waitForStatus(base, false, 'waiting for /api/status to say offline after A ended', alive);
  timings.endAToOffline = Date.now() - endA;
  const offlinePl = await fetchMediaPlaylist(base);
  log(`/api/status offline ${timings.endAToOffline} ms after A ended (lastDisconnectTime ${offlineStatus.lastDisconnectTime}); `
    + `playlist: HTTP ${offlinePl.status} ${describePlaylist(offlinePl.playlist)}`);
  if (!offlinePl.playlist) fail(`the media playlist is gone while offline: HTTP ${offlinePl.status} ${offlinePl.url}`);
  if (offlinePl.playlist.endlist) fail(`the media playlist has #EXT-X-ENDLIST while offline:\n${offlinePl.text}`);
  if (offlinePl.playlist.segments.length === 0) fail(`the media playlist lists no segments of A while offline:\n${offlinePl.text}`);
  const lastSnA = offlinePl.playlist.segments[offlinePl.playlist.segments.length - 1].sn;
  const viewAtOffline = await pageView(stayed);
  log(`page "stayed" when the server said offline: ${JSON.stringify(viewAtOffline)}`);
  const offlineSeen = await h.raceWith(stayed.waitForFunction(() => window.selfcast.state === 'offline',
    null, { timeout: PAGE_OFFLINE_WAIT_MS, polling: 100 }).then(() => true, () => false), 'waiting for the page to show offline', alive);
  timings.offlineToPageOffline = offlineSeen ? Date.now() - endA - timings.endAToOffline : null;
  const viewOffline = await pageView(stayed);
  log(offlineSeen
    ? `page "stayed" shows offline ${timings.offlineToPageOffline} ms later: ${JSON.stringify(viewOffline)}`
    : `note: page "stayed" does not show offline ${PAGE_OFFLINE_WAIT_MS / 1000} s later: ${JSON.stringify(viewOffline)}`);
  await stayed.screenshot({ path: art('offline.png') });

  // -- Broadcast B: a different clip, looped --
  ctx.logs['ffmpeg log (B)'] = art('ffmpeg-b.log');
  log(`publishing B: ${path.basename(clipB)} (smptebars, 880 Hz) in a loop`);
  const publishB = Date.now();
  const ffmpegB = publish(h, { name: 'ffmpeg B', clip: clipB, rtmpUrl, logFile: art('ffmpeg-b.log'), loop: true });
  const withB = [...alive, ffmpegB.exited];
  await waitForStatus(base, true, 'waiting for /api/status to say online with B', withB);
  const onlineB = Date.now();
  timings.publishBToOnline = onlineB - publishB;
  const onlinePl = await fetchMediaPlaylist(base);
  log(`/api/status online ${timings.publishBToOnline} ms after publishing B; playlist: ${describePlaylist(onlinePl.playlist)}`);
  if (!onlinePl.playlist) fail(`no media playlist while online: HTTP ${onlinePl.status} ${onlinePl.url}`);
  const aStillListed = checkReconnectPlaylist(onlinePl.playlist, ccA, lastSnA, 'B');

  // -- Scenario 2, started now: a viewer who arrives while A's segments are still listed --
  let arrivedOpen = null;
  let arrived = null;
  let ccBefore = ccA;
  if (aStillListed) {
    arrived = await recordedPage(browser, 'arrived');
    arrivedOpen = Date.now();
    log(`page "arrived": opening ${base}/ (B online for ${arrivedOpen - onlineB} ms; A's segments are still in the playlist)`);
    await openPage(h, arrived, base, withB);
  } else {
    log(`note: A's segments have already left the playlist; the arriving viewer will watch a broadcast C instead`);
  }

  // -- Scenario 1: the page that stayed must play B --
  const bOutcome = await h.raceWith(stayed.waitForFunction(({ ccA: ccOld, advance }) => {
    const v = document.getElementById('video');
    const s = window.selfcast;
    if (s.errors.some((e) => e.fatal)) return 'fatal';
    const r = s.hls && s.hls.__rec;
    const switched = r && r.frags.find((f) => f.cc > ccOld);
    if (!switched) return false;
    if (window.__playingBAt === undefined && !v.paused && v.readyState > 2) window.__playingBAt = Date.now();
    if (window.__playingBAt === undefined) return false;
    return v.currentTime - switched.currentTime >= advance ? 'advanced' : false;
  }, { ccA, advance: ADVANCE_S }, { timeout: 0, polling: 100 }).then((handle) => handle.jsonValue()),
  `waiting for the page that stayed to play B (a fragment with cc > ${ccA}, then +${ADVANCE_S} s)`, withB);
  const advancedB = Date.now();
  if (bOutcome === 'fatal') fail(`fatal hls.js error on the page that stayed: ${(await pageView(stayed)).fatal.join(', ')}`);
  const recStayed = await readRec(stayed);
  const instB = recStayed.instances[recStayed.instances.length - 1];
  const switchFrag = instB.frags.find((f) => f.cc > ccA);
  const playingBAt = await stayed.evaluate(() => window.__playingBAt);
  timings.publishBToPlaying = playingBAt - publishB;
  timings.onlineBToPlaying = playingBAt - onlineB;
  timings.playingBToAdvanced = advancedB - playingBAt;
  const viewB = await pageView(stayed);
  log(`page "stayed" plays B: hls instance #${instB.id} of ${recStayed.instances.length}, startLoad(${instB.startLoads.map((s) => s.position).join(', ')}), `
    + `first fragment sn ${instB.frags[0].sn} cc ${instB.frags[0].cc} start ${instB.frags[0].start}; B from sn ${switchFrag.sn} cc ${switchFrag.cc} `
    + `(start ${switchFrag.start}, currentTime ${switchFrag.currentTime}) → currentTime ${viewB.currentTime}`);
  if (instB.frags[0].cc <= ccA) {
    log(`note: the page that stayed started this instance in A's fragments (cc ${instB.frags[0].cc}) and played through into B`);
  }
  const samplesB = await sampleVideo(stayed);
  log(`page "stayed" picture: ${looksLikeSmptebars(samplesB) ? 'smptebars (B)' : 'NOT smptebars'} ${JSON.stringify(samplesB)}`);
  if (!looksLikeSmptebars(samplesB)) fail(`the page that stayed plays B's fragments but does not show smptebars: ${JSON.stringify(samplesB)}`);
  await stayed.screenshot({ path: art('stayed.png') });

  // -- Scenario 2, the fallback: stop B, wait until offline, publish C, open the page then --
  let live = withB;      // the processes that must stay up from here on
  const arrivedWatchesB = arrived !== null;
  if (!arrived) {
    log('stopping B');
    await ffmpegB.stop();
    await waitForStatus(base, false, 'waiting for /api/status to say offline after B stopped', alive);
    const offB = (await fetchMediaPlaylist(base)).playlist;
    if (!offB || offB.segments.length === 0) fail(`no media playlist, or no segments, after B stopped: ${describePlaylist(offB)}`);
    const lastSnB = offB.segments[offB.segments.length - 1].sn;
    ccBefore = offB.segments[offB.segments.length - 1].cc;    // B's, counted as hls.js counts
    ctx.logs['ffmpeg log (C)'] = art('ffmpeg-c.log');
    log(`publishing C: ${path.basename(clipA)} in a loop`);
    const ffmpegC = publish(h, { name: 'ffmpeg C', clip: clipA, rtmpUrl, logFile: art('ffmpeg-c.log'), loop: true });
    live = [...alive, ffmpegC.exited];
    await waitForStatus(base, true, 'waiting for /api/status to say online with C', live);
    const pl = (await fetchMediaPlaylist(base)).playlist;
    log(`/api/status online with C; playlist: ${describePlaylist(pl)}`);
    if (!checkReconnectPlaylist(pl, ccBefore, lastSnB, 'C')) {
      fail(`B's segments too have left the playlist by the time C is online: ${describePlaylist(pl)}`);
    }
    arrived = await recordedPage(browser, 'arrived');
    arrivedOpen = Date.now();
    log(`page "arrived": opening ${base}/`);
    await openPage(h, arrived, base, live);
  }

  // -- Scenario 2: the arriving viewer's first fragment is the newest broadcast's --
  const arrOutcome = await h.raceWith(arrived.waitForFunction(() => {
    const s = window.selfcast;
    if (s.errors.some((e) => e.fatal)) return 'fatal';
    return window.__rec.firstFrag && window.__firstPlayingAt !== undefined ? 'playing' : false;
  }, null, { timeout: 0, polling: 100 }).then((handle) => handle.jsonValue()),
  'waiting for the arriving page to play', live);
  if (arrOutcome === 'fatal') fail(`fatal hls.js error on the arriving page: ${(await pageView(arrived)).fatal.join(', ')}`);
  const recArr = await readRec(arrived);
  const first = recArr.firstFrag;
  const instArr = recArr.instances.find((r) => r.id === first.instance);
  timings.arrivedOpenToPlaying = (await arrived.evaluate(() => window.__firstPlayingAt)) - arrivedOpen;
  const firstLevel = instArr.levelLoads[0];
  log(`page "arrived": startLoad(${instArr.startLoads.map((s) => s.position).join(', ')}); first level playlist as hls.js placed it: `
    + `${firstLevel ? firstLevel.frags.map(([sn, cc, start]) => `${sn}/cc${cc}@${start}`).join(' ') : '(none)'}`);
  log(`page "arrived": first FRAG_CHANGED sn ${first.sn} cc ${first.cc} start ${first.start} (currentTime ${first.currentTime}); `
    + `newest broadcast in its level details: cc ${first.maxCc} from sn ${first.newestSn} (start ${first.newestStart}), window sn ${first.window && first.window.join('–')}`);
  if (first.cc !== first.maxCc || first.cc <= ccBefore) {
    fail(`the arriving viewer's first fragment is sn ${first.sn} cc ${first.cc} (start ${first.start}), in an old broadcast; `
      + `the newest broadcast (cc ${first.maxCc}) starts at sn ${first.newestSn} (start ${first.newestStart}); `
      + `startLoad(${instArr.startLoads.map((s) => s.position).join(', ')})`);
  }
  if (first.sn !== first.newestSn) {
    log(`note: the arriving viewer starts ${first.sn - first.newestSn} fragment(s) into the newest broadcast, not at its first`);
  }
  // A moment of playback for the screenshot.
  await h.raceWith(arrived.waitForFunction((t0) => document.getElementById('video').currentTime >= t0 + 1,
    first.currentTime, { timeout: 0, polling: 100 }), 'waiting for the arriving page to play 1 s', live);
  const viewArr = await pageView(arrived);
  if (viewArr.fatal.length > 0) fail(`fatal hls.js error on the arriving page: ${viewArr.fatal.join(', ')}`);
  log(`page "arrived" plays: ${JSON.stringify(viewArr)}`);
  if (arrivedWatchesB) {
    const samples = await sampleVideo(arrived);
    log(`page "arrived" picture: ${looksLikeSmptebars(samples) ? 'smptebars (B)' : 'NOT smptebars'} ${JSON.stringify(samples)}`);
    if (!looksLikeSmptebars(samples)) fail(`the arriving page plays B's fragments but does not show smptebars: ${JSON.stringify(samples)}`);
  }
  await arrived.screenshot({ path: art('arrived.png') });

  const stayedErrors = (await readRec(stayed)).instances.flatMap((r) => r.errors);
  const arrivedErrors = (await readRec(arrived)).instances.flatMap((r) => r.errors);
  for (const [name, errors] of [['stayed', stayedErrors], ['arrived', arrivedErrors]]) {
    if (errors.length > 0) {
      log(`non-fatal hls.js errors on page "${name}" (${errors.length}): ${errors.map((e) => `${e.details}${e.frag ? ' sn ' + e.frag[0] : ''}`).join(', ')}`);
    }
  }
}

async function saveEvents() {
  const out = {};
  for (const [name, page] of Object.entries(ctx.pages)) {
    out[name] = await readRec(page).catch((err) => `(cannot read: ${err.message})`);
  }
  fs.writeFileSync(art('events.json'), `${JSON.stringify(out, null, 1)}\n`);
}

async function diagnose() {
  await saveEvents().catch(() => {});
  for (const [name, page] of Object.entries(ctx.pages)) {
    const rec = await readRec(page).catch(() => null);
    if (!rec) continue;
    console.log(`--- hls.js on page "${name}" (all of it in ${path.relative(process.cwd(), art('events.json'))}) ---`);
    for (const r of rec.instances) {
      const frags = r.frags.map((f) => `${f.sn}/cc${f.cc}@${f.start}`);
      console.log(`  instance #${r.id}: startLoad(${r.startLoads.map((s) => s.position).join(', ')}), `
        + `first level playlist ${r.levelLoads[0] ? r.levelLoads[0].frags.map(([sn, cc, start]) => `${sn}/cc${cc}@${start}`).join(' ') : '(none)'}`);
      console.log(`    loaded: ${r.fragLoads.slice(0, 12).map((f) => `${f.sn}/cc${f.cc}`).join(' ')}`);
      console.log(`    FRAG_CHANGED: ${frags.slice(0, 20).join(' ')}${frags.length > 20 ? ' …' : ''}`);
      if (r.errors.length) console.log(`    errors: ${r.errors.map((e) => `${e.details}${e.fatal ? ' (fatal)' : ''}`).join(', ')}`);
    }
  }
  await diagnoseAll({
    pages: Object.entries(ctx.pages).map(([name, page]) => [name, page, `reconnect-failure-${name}.png`]),
    base: ctx.base,
    logs: Object.entries(ctx.logs).map(([name, file]) => [name, file, name.startsWith('server') ? 60 : 20]),
  });
}

function pass() {
  console.log('reconnect test timings:');
  const ms = (v) => (v == null ? '-' : `${v} ms`);
  console.log(`  server start      → /api/status answered      : ${ms(timings.serverToStatus)}`);
  console.log(`  publish A         → page plays A              : ${ms(timings.publishAToPlaying)}`);
  console.log(`  A ends            → /api/status offline       : ${ms(timings.endAToOffline)}`);
  console.log(`  status offline    → page shows offline        : ${ms(timings.offlineToPageOffline)}`);
  console.log(`  publish B         → /api/status online        : ${ms(timings.publishBToOnline)}`);
  console.log(`  publish B         → page (stayed) plays B     : ${ms(timings.publishBToPlaying)}`);
  console.log(`  status online (B) → page (stayed) plays B     : ${ms(timings.onlineBToPlaying)}`);
  console.log(`  plays B           → currentTime +${ADVANCE_S} s past B : ${ms(timings.playingBToAdvanced)}`);
  console.log(`  page (arrived) open → first "playing"         : ${ms(timings.arrivedOpenToPlaying)}`);
  console.log(`  screenshots: ${['stayed.png', 'arrived.png', 'offline.png'].map((n) => path.relative(process.cwd(), art(n))).join(', ')}`);
}

await h.run(async () => {
  await main();
  await saveEvents();
}, { pass, diagnose });
