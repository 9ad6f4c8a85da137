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
// Needs:   ffmpeg on PATH, chromium, `npm ci` done in tests/browser.
// Output:  tests/browser/artifacts/: playing.png, offline.png, server.log, ffmpeg.log, browser.log
//          (and failure.png on failure); the generated test clip is cached in tests/browser/.cache/

import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..', '..');
const ARTIFACTS = path.join(HERE, 'artifacts');
const CACHE = path.join(HERE, '.cache');      // the generated clip, kept between runs (git-ignored)
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const TIMEOUT_MS = Number(process.env.TEST_TIMEOUT_S || 90) * 1000;
const ADVANCE_S = 3;          // how far playback must get
const INPUT_SECONDS = 20;     // length of the generated clip, published in a loop

const started = Date.now();
const deadline = started + TIMEOUT_MS;

// Everything to stop at the end, newest first.
const cleanups = [];

class TestFailure extends Error {}

function fail(message) {
  throw new TestFailure(message);
}

function log(message) {
  const t = ((Date.now() - started) / 1000).toFixed(1).padStart(5);
  console.log(`[play ${t}s] ${message}`);
}

function remainingMs() {
  return Math.max(0, deadline - Date.now());
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---- Setup helpers ----------------------------------------------------------------------------

function findBinary() {
  const given = process.argv[2] || process.env.SELFCAST_BIN || 'target/release/selfcast';
  const candidates = path.isAbsolute(given) ? [given] : [path.resolve(given), path.join(REPO, given)];
  const found = candidates.find((p) => fs.existsSync(p));
  if (!found) {
    fail(`selfcast binary not found: ${candidates.join(' or ')} (build it: cargo build --release)`);
  }
  return found;
}

function requireTool(name, args = ['-version']) {
  const result = spawnSync(name, args, { stdio: 'ignore' });
  if (result.error || result.status !== 0) {
    fail(`${name} is not installed or does not run (${result.error ? result.error.message : 'exit ' + result.status})`);
  }
}

/** A free TCP port on 127.0.0.1 (the OS picks it; we close it again right away). */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * The test clip: 20 s of testsrc2 + a sine tone, encoded the way OBS would (H.264 High with
 * B-frames, 2 s GOP, yuv420p; AAC 48 kHz stereo). Made once and kept in tests/browser/.cache,
 * then published with `-c copy`, so the 2 cores are not busy encoding during the test.
 */
function ensureInputClip() {
  fs.mkdirSync(CACHE, { recursive: true });
  const file = path.join(CACHE, `clip-v1-${INPUT_SECONDS}s.mp4`);
  if (fs.existsSync(file) && fs.statSync(file).size > 0) {
    return file;
  }
  log(`generating the ${INPUT_SECONDS} s test clip (once): ${file}`);
  const part = `${file}.${process.pid}.part.mp4`;
  const result = spawnSync('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-nostdin', '-y',
    '-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=30',
    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-t', String(INPUT_SECONDS),
    '-c:v', 'libx264', '-preset', 'veryfast', '-bf', '2', '-g', '60', '-keyint_min', '60',
    '-sc_threshold', '0', '-pix_fmt', 'yuv420p', '-b:v', '2500k',
    '-c:a', 'aac', '-ar', '48000', '-ac', '2', '-b:a', '128k',
    '-movflags', '+faststart', '-shortest', part,
  ], { stdio: ['ignore', 'inherit', 'inherit'], timeout: remainingMs() });
  if (result.status !== 0) {
    fs.rmSync(part, { force: true });
    fail(`ffmpeg could not generate the test clip (${result.error ? result.error.message : 'exit ' + result.status})`);
  }
  fs.renameSync(part, file);
  return file;
}

/**
 * Start a child process with its stdout+stderr in a log file. Returns { child, exited } where
 * `exited` resolves with a description when the process ends. The process is stopped at cleanup.
 */
function startProcess(name, command, args, logFile, stopSignal = 'SIGTERM') {
  const out = fs.openSync(logFile, 'w');
  // NO_COLOR: plain text in the log files (tracing-subscriber honours it).
  const child = spawn(command, args, { stdio: ['ignore', out, out], env: { ...process.env, NO_COLOR: '1' } });
  children.push(child);
  fs.closeSync(out);
  let done = false;
  const exited = new Promise((resolve) => {
    child.on('error', (err) => { done = true; resolve(`${name} could not start: ${err.message}`); });
    child.on('exit', (code, signal) => {
      done = true;
      resolve(`${name} exited (${signal ? 'signal ' + signal : 'code ' + code})`);
    });
  });
  cleanups.push(async () => {
    if (done) return;
    child.kill(stopSignal);
    const stopped = await Promise.race([exited.then(() => true), sleep(5000).then(() => false)]);
    if (!stopped) {
      log(`${name} did not stop after ${stopSignal} within 5 s: killing it`);
      child.kill('SIGKILL');
      await exited;
    }
  });
  return { child, exited };
}

/** Resolve with the value of `promise`, or fail when `exited` (a child's death) comes first or
 *  time runs out. */
async function raceWith(promise, what, exits) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new TestFailure(`timed out (${TIMEOUT_MS / 1000} s overall) while ${what}`)), remainingMs());
  });
  const deaths = exits.map((e) => e.then((why) => { throw new TestFailure(`${why} while ${what}`); }));
  try {
    return await Promise.race([promise, timeout, ...deaths]);
  } finally {
    clearTimeout(timer);
  }
}

async function fetchText(url, timeoutMs = 2000) {
  const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), cache: 'no-store' });
  const body = await response.text();
  return { status: response.status, body };
}

async function getStatus(base) {
  const { status, body } = await fetchText(`${base}/api/status`);
  if (status !== 200) {
    throw new Error(`/api/status answered HTTP ${status}: ${body.slice(0, 200)}`);
  }
  return JSON.parse(body);
}

function tail(file, lines = 40) {
  try {
    const text = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
    return text.slice(-lines).join('\n');
  } catch (err) {
    return `(cannot read ${file}: ${err.message})`;
  }
}

// ---- The test ---------------------------------------------------------------------------------

const timings = {};
const ctx = { base: null, artifacts: {} };

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
  requireTool('ffmpeg');
  if (!fs.existsSync(CHROMIUM)) {
    fail(`chromium not found at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM)`);
  }
  const clip = ensureInputClip();

  // -- Server --
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'selfcast-play-'));
  cleanups.push(async () => fs.rmSync(tmp, { recursive: true, force: true }));
  const [rtmpPort, httpPort] = [await freePort(), await freePort()];
  const streamKey = `test-${randomBytes(8).toString('hex')}`;
  const configPath = path.join(tmp, 'config.toml');
  fs.writeFileSync(configPath, [
    '# written by tests/browser/play.mjs',
    '[server]',
    `data_dir = ${JSON.stringify(path.join(tmp, 'data'))}`,
    '',
    '[rtmp]',
    `listen = "127.0.0.1:${rtmpPort}"`,
    `stream_key = ${JSON.stringify(streamKey)}`,
    '',
    '[http]',
    `listen = "127.0.0.1:${httpPort}"`,
    '',
    '[hls]',
    'segment_seconds = 2',
    'playlist_segments = 6',
    '',
  ].join('\n'));
  const base = `http://127.0.0.1:${httpPort}`;
  ctx.base = base;

  log(`starting ${bin} --config ${configPath} (rtmp ${rtmpPort}, http ${httpPort})`);
  const serverStart = Date.now();
  const server = startProcess('selfcast', bin, ['--config', configPath], serverLog, 'SIGINT');
  const initial = await raceWith((async () => {
    for (;;) {
      try {
        return await getStatus(base);
      } catch {
        await sleep(100);
      }
    }
  })(), 'waiting for GET /api/status to answer', [server.exited]);
  timings.serverToStatus = Date.now() - serverStart;
  log(`/api/status answered after ${timings.serverToStatus} ms: ${JSON.stringify(initial)}`);
  if (initial.online !== false) {
    fail(`/api/status says online=${JSON.stringify(initial.online)} before anyone publishes; expected false`);
  }
  if (typeof initial.viewerCount !== 'number') {
    fail(`/api/status has no numeric viewerCount: ${JSON.stringify(initial)}`);
  }

  // -- Browser: open the page while the stream is offline --
  const browser = await raceWith(chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // playwright-core gives every launch a new, empty user-data-dir of its own.
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-quic', '--autoplay-policy=no-user-gesture-required',
    ],
  }), 'launching chromium', [server.exited]);
  cleanups.push(() => browser.close().catch(() => {}));
  const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
  ctx.page = page;
  const browserLines = [];
  const note = (line) => {
    browserLines.push(`${new Date().toISOString()} ${line}`);
    fs.appendFileSync(browserLog, `${browserLines[browserLines.length - 1]}\n`);
  };
  page.on('console', (msg) => note(`console.${msg.type()}: ${msg.text()}`));
  page.on('pageerror', (err) => note(`pageerror: ${err.message}`));
  page.on('requestfailed', (req) => note(`requestfailed: ${req.url()} ${req.failure()?.errorText}`));
  page.on('response', (res) => { if (res.status() >= 400) note(`HTTP ${res.status()}: ${res.url()}`); });
  // Record when the <video> first plays, independent of player.js (media events don't bubble,
  // but a capturing listener on the document sees them).
  await page.addInitScript(() => {
    document.addEventListener('playing', () => {
      if (window.__firstPlayingAt === undefined) window.__firstPlayingAt = Date.now();
    }, true);
  });

  const pageOpen = Date.now();
  log(`opening ${base}/`);
  const response = await raceWith(page.goto(`${base}/`, { waitUntil: 'load' }), 'loading the page', [server.exited]);
  if (!response || response.status() !== 200) {
    fail(`GET / answered ${response ? 'HTTP ' + response.status() : 'nothing'}`);
  }

  // The page must say the stream is offline.
  await raceWith(page.waitForFunction(() => {
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
  const rtmpUrl = `rtmp://127.0.0.1:${rtmpPort}/live/${streamKey}`;
  log(`publishing ${path.basename(clip)} in a loop to rtmp://127.0.0.1:${rtmpPort}/live/<key>`);
  const publishStart = Date.now();
  const ffmpeg = startProcess('ffmpeg', 'ffmpeg', [
    '-hide_banner', '-loglevel', 'warning', '-nostdin',
    '-re', '-stream_loop', '-1', '-i', clip,
    '-c', 'copy', '-f', 'flv', '-flvflags', 'no_duration_filesize', rtmpUrl,
  ], ffmpegLog);

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
  const outcome = await raceWith(
    page.waitForFunction(fatalOrAdvanced, ADVANCE_S, { timeout: 0, polling: 100 }).then((h) => h.jsonValue()),
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

  const nonFatal = state.errors.filter((e) => !e.fatal);
  if (nonFatal.length > 0) {
    log(`non-fatal hls.js errors (${nonFatal.length}):`);
    for (const e of nonFatal) console.log(`    ${e.type} ${e.details}`);
  }
  if (outcome === 'fatal') {
    const fatal = state.errors.filter((e) => e.fatal).map((e) => `${e.type}/${e.details}`);
    fail(`fatal hls.js error(s): ${fatal.join(', ')}`);
  }

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

async function diagnose() {
  if (ctx.page) {
    await ctx.page.screenshot({ path: path.join(ARTIFACTS, 'failure.png') }).catch(() => {});
    const pageState = await ctx.page.evaluate(() => ({
      state: window.selfcast && window.selfcast.state,
      errors: window.selfcast && window.selfcast.errors,
      currentTime: document.getElementById('video').currentTime,
      readyState: document.getElementById('video').readyState,
      overlayShown: !document.getElementById('overlay').hidden,
      overlayText: document.getElementById('overlay-text').textContent,
      overlayDetail: document.getElementById('overlay-detail').textContent,
    })).catch((err) => `(cannot read page state: ${err.message})`);
    console.log('--- page state ---');
    console.log(JSON.stringify(pageState, null, 2));
  }
  if (ctx.base) {
    // What the server serves, to tell a server problem from a page problem.
    for (const p of ['/api/status', '/hls/stream.m3u8']) {
      try {
        const { status, body } = await fetchText(`${ctx.base}${p}`);
        console.log(`--- GET ${p} → HTTP ${status} ---\n${body.slice(0, 2000)}`);
        const variant = p.endsWith('.m3u8') && body.split('\n').find((l) => l && !l.startsWith('#'));
        if (variant && variant.trim().endsWith('.m3u8')) {
          const url = new URL(variant.trim(), `${ctx.base}${p}`).href;
          const v = await fetchText(url);
          console.log(`--- GET ${url} → HTTP ${v.status} ---\n${v.body.slice(0, 2000)}`);
        }
      } catch (err) {
        console.log(`--- GET ${p} failed: ${err.message}`);
      }
    }
  }
  const { serverLog, ffmpegLog, browserLog } = ctx.artifacts;
  for (const [name, file, lines] of [['server log', serverLog, 60], ['ffmpeg log', ffmpegLog, 20], ['browser log', browserLog, 30]]) {
    if (file && fs.existsSync(file)) {
      console.log(`--- ${name} (last ${lines} lines of ${path.relative(process.cwd(), file)}) ---`);
      console.log(tail(file, lines));
    }
  }
}

async function cleanup() {
  while (cleanups.length > 0) {
    const step = cleanups.pop();
    try {
      await step();
    } catch (err) {
      log(`cleanup: ${err.message}`);
    }
  }
}

// Last resort if something hangs outside raceWith (a screenshot, browser.close, ...): kill the
// children hard and exit.
const children = [];
setTimeout(() => {
  console.log(`browser test: FAIL: hung past the ${TIMEOUT_MS / 1000} s timeout + 30 s grace; killing everything`);
  for (const child of children) child.kill('SIGKILL');
  process.exit(1);
}, TIMEOUT_MS + 30000).unref();

let exitCode = 0;
let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, async () => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping`);
    await cleanup();
    process.exit(130);
  });
}

try {
  await main();
  console.log('');
  console.log('browser test timings:');
  console.log(`  server start    → /api/status answered  : ${timings.serverToStatus} ms`);
  console.log(`  publish start   → first "playing"        : ${timings.publishToPlaying} ms`);
  console.log(`  page open       → first "playing"        : ${timings.pageOpenToPlaying} ms`);
  console.log(`  first "playing" → currentTime +${ADVANCE_S} s     : ${timings.playingToAdvanced} ms`);
  console.log(`  screenshot: ${path.relative(process.cwd(), path.join(ARTIFACTS, 'playing.png'))}`);
  console.log('browser test: PASS');
} catch (err) {
  exitCode = 1;
  console.log('');
  console.log(`browser test: FAIL: ${err instanceof TestFailure ? err.message : err.stack || err}`);
  try {
    await diagnose();
  } catch (diagErr) {
    console.log(`(diagnostics failed: ${diagErr.message})`);
  }
  console.log(`browser test: FAIL: ${err instanceof TestFailure ? err.message : err.message || err}`);
} finally {
  stopping = true;
  await cleanup();
}
process.exit(exitCode);
