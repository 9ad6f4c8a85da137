#!/usr/bin/env node
// tests/browser/play.mjs — end-to-end test of the whole chain, as a streamer and a viewer see it:
//
//   ffmpeg (as OBS) ──RTMP──▶ selfcast ──HLS──▶ viewer page in headless Chromium (hls.js)
//
// 1. Starts `selfcast --config <temp config>` on free loopback ports and waits for /api/status.
// 2. Opens the viewer page in Debian's Chromium (driven by playwright-core) and checks it shows
//    the stream as offline.
// 3. Publishes a generated 1280x720 30 fps H.264 + AAC stream with ffmpeg over RTMP, and waits
//    until the page plays by itself and video.currentTime has advanced by 3 s, with no fatal
//    hls.js error (window.selfcast.errors).
// 4. Saves artifacts/playing.png and prints timings. Always stops ffmpeg, Chromium and the server.
//
// Usage:   node tests/browser/play.mjs [path/to/selfcast]
// Env:     SELFCAST_BIN   the binary (default target/release/selfcast, relative to the repo root)
//          CHROMIUM       the browser (default /usr/bin/chromium)
//          TEST_TIMEOUT_S overall timeout (default 90)
// Needs:   ffmpeg on PATH, chromium, `npm ci` done in tests/browser. Setup and cleanup helpers
//          shared with reconnect.mjs are in harness.mjs.
// Output:  tests/browser/artifacts/: playing.png, offline.png, server.log, ffmpeg.log, browser.log
//          (and failure.png on failure); the generated test clip is cached in tests/browser/.cache/

import fs from 'node:fs';
import path from 'node:path';

import {
  ARTIFACTS, checkHlsErrors, CLIP_TESTSRC2, Harness, diagnose as diagnoseAll, ensureClip, fail, findBinary,
  getStatus, launchBrowser, newPage, openPage, publish, requireTools, startServer,
} from './harness.mjs';

const ADVANCE_S = 3;          // how far playback must get

const h = new Harness({ tag: 'play', label: 'browser test', timeoutS: 90 });
const log = (message) => h.log(message);

// ---- The test ---------------------------------------------------------------------------------

const timings = {};
const ctx = { base: null, page: null, artifacts: {} };

async function main() {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  for (const name of ['playing.png', 'offline.png', 'failure.png', 'server.log', 'ffmpeg.log', 'browser.log']) {
    fs.rmSync(path.join(ARTIFACTS, name), { force: true });
  }
  const serverLog = path.join(ARTIFACTS, 'server.log');
  const ffmpegLog = path.join(ARTIFACTS, 'ffmpeg.log');
  const browserLog = path.join(ARTIFACTS, 'browser.log');
  ctx.artifacts = { serverLog, ffmpegLog, browserLog };

  const bin = findBinary();
  requireTools();
  const clip = ensureClip(h, CLIP_TESTSRC2);

  // -- Server --
  const { base, rtmpUrl, rtmpPort, server, initial, serverToStatus } = await startServer(h, {
    bin, script: 'play.mjs', logFile: serverLog,
  });
  ctx.base = base;
  timings.serverToStatus = serverToStatus;
  log(`/api/status answered after ${timings.serverToStatus} ms: ${JSON.stringify(initial)}`);
  if (initial.online !== false) {
    fail(`/api/status says online=${JSON.stringify(initial.online)} before anyone publishes; expected false`);
  }
  if (typeof initial.viewerCount !== 'number') {
    fail(`/api/status has no numeric viewerCount: ${JSON.stringify(initial)}`);
  }

  // -- Browser: open the page while the stream is offline --
  const browser = await launchBrowser(h, [server.exited]);
  const { page } = await newPage(browser, browserLog);
  ctx.page = page;

  const pageOpen = Date.now();
  log(`opening ${base}/`);
  await openPage(h, page, base, [server.exited]);

  // The page must say the stream is offline.
  await h.raceWith(page.waitForFunction(() => {
    const overlay = document.getElementById('overlay');
    return window.selfcast && window.selfcast.state === 'offline' && overlay && !overlay.hidden
      && /offline/i.test(overlay.textContent);
  }, null, { timeout: 0, polling: 100 }), 'waiting for the page to show the offline state', [server.exited]);
  const offlineText = await page.evaluate(() => document.getElementById('overlay').innerText.replace(/\s+/g, ' ').trim());
  log(`page shows offline: "${offlineText}"`);
  await page.screenshot({ path: path.join(ARTIFACTS, 'offline.png') });
  if (typeof initial.streamTitle === 'string' && initial.streamTitle !== '') {
    const shown = await page.evaluate(() => document.getElementById('stream-title').textContent);
    if (shown !== initial.streamTitle) {
      fail(`page title shows "${shown}", /api/status streamTitle is "${initial.streamTitle}"`);
    }
  }
  const hlsVersion = await page.evaluate(() => (window.Hls ? window.Hls.version : null));
  if (!hlsVersion) {
    fail('window.Hls is missing: /vendor/hls.js/hls.min.js did not load');
  }
  log(`hls.js ${hlsVersion} loaded, Hls.isSupported() = ${await page.evaluate(() => window.Hls.isSupported())}`);

  // -- Publish, as OBS would --
  log(`publishing ${path.basename(clip)} in a loop to rtmp://127.0.0.1:${rtmpPort}/live/<key>`);
  const publishStart = Date.now();
  const ffmpeg = publish(h, { clip, rtmpUrl, logFile: ffmpegLog, loop: true });

  // -- Wait until the page plays by itself and gets ADVANCE_S seconds in --
  const fatalOrAdvanced = (advance) => {
    const s = window.selfcast;
    const video = document.getElementById('video');
    if (s && s.errors.some((e) => e.fatal)) return 'fatal';
    if (window.__firstPlayingAt === undefined) return false;
    if (window.__startCurrentTime === undefined) window.__startCurrentTime = video.currentTime;
    return video.currentTime - window.__startCurrentTime >= advance ? 'advanced' : false;
  };
  const what = `waiting for playback (video.currentTime to advance by ${ADVANCE_S} s)`;
  const outcome = await h.raceWith(
    page.waitForFunction(fatalOrAdvanced, ADVANCE_S, { timeout: 0, polling: 100 }).then((handle) => handle.jsonValue()),
    what, [server.exited, ffmpeg.exited]);
  const advancedAt = Date.now();
  const state = await page.evaluate(() => ({
    firstPlayingAt: window.__firstPlayingAt,
    errors: window.selfcast.errors,
    currentTime: document.getElementById('video').currentTime,
    startCurrentTime: window.__startCurrentTime,
    paused: document.getElementById('video').paused,
    muted: document.getElementById('video').muted,
    size: [document.getElementById('video').videoWidth, document.getElementById('video').videoHeight],
    hlsLevels: window.selfcast.hls ? window.selfcast.hls.levels.map((l) => `${l.width}x${l.height}@${l.bitrate}`) : null,
    latency: window.selfcast.hls ? window.selfcast.hls.latency : null,
  }));

  checkHlsErrors(log, state.errors, outcome);

  timings.publishToPlaying = state.firstPlayingAt - publishStart;
  timings.pageOpenToPlaying = state.firstPlayingAt - pageOpen;
  timings.playingToAdvanced = advancedAt - state.firstPlayingAt;
  log(`playing: currentTime ${state.startCurrentTime.toFixed(2)} → ${state.currentTime.toFixed(2)} s, `
    + `video ${state.size.join('x')}, muted=${state.muted}, levels ${JSON.stringify(state.hlsLevels)}, `
    + `latency ${state.latency == null ? '?' : state.latency.toFixed(1) + ' s'}`);
  if (state.size[0] !== 1280 || state.size[1] !== 720) {
    log(`note: decoded video is ${state.size.join('x')}, the source is 1280x720`);
  }
  await page.screenshot({ path: path.join(ARTIFACTS, 'playing.png') });

  const live = await getStatus(base);
  log(`/api/status while playing: ${JSON.stringify(live)}`);
  if (live.online !== true) {
    fail(`/api/status says online=${JSON.stringify(live.online)} while the page plays the stream`);
  }
  const badge = await page.evaluate(() => document.getElementById('live-badge').textContent.trim());
  if (!/live/i.test(badge)) {
    fail(`the page's badge says "${badge}" while playing`);
  }
}

function diagnose() {
  const { serverLog, ffmpegLog, browserLog } = ctx.artifacts;
  return diagnoseAll({
    pages: [[null, ctx.page, 'failure.png']],
    base: ctx.base,
    logs: [['server log', serverLog, 60], ['ffmpeg log', ffmpegLog, 20], ['browser log', browserLog, 30]],
  });
}

function pass() {
  console.log('browser test timings:');
  console.log(`  server start    → /api/status answered  : ${timings.serverToStatus} ms`);
  console.log(`  publish start   → first "playing"        : ${timings.publishToPlaying} ms`);
  console.log(`  page open       → first "playing"        : ${timings.pageOpenToPlaying} ms`);
  console.log(`  first "playing" → currentTime +${ADVANCE_S} s     : ${timings.playingToAdvanced} ms`);
  console.log(`  screenshot: ${path.relative(process.cwd(), path.join(ARTIFACTS, 'playing.png'))}`);
}

await h.run(main, { pass, diagnose });
