// tests/browser/harness.mjs — what the browser tests (play.mjs, reconnect.mjs, ...) share:
//
//   - a Harness: the overall deadline, logging with the elapsed time, child processes in log
//     files, cleanup (newest first, also on SIGINT/SIGTERM and when hung), and run(), which
//     prints PASS/FAIL, diagnostics on failure, and exits with the right code;
//   - setup helpers: the selfcast binary, free ports, the cached test clips, the server on a
//     temp config (and restarting it on the same data), the ffmpeg publisher, Chromium, pages
//     that log their console to a file, a page on another origin (for CSRF tests);
//   - diagnose(): what the page, the server's playlists and the logs say, after a failure.
//
// Nothing here runs by itself; each test script creates one Harness and calls run(main).

import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '..', '..');
export const ARTIFACTS = path.join(HERE, 'artifacts');
export const CACHE = path.join(HERE, '.cache');      // generated clips, kept between runs (git-ignored)
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
// SELFCAST_STATIC_DIR=static (for example): the server serves the page files from there
// ([http] static_dir), so edits to static/ are tested without rebuilding the binary.
const STATIC_DIR = process.env.SELFCAST_STATIC_DIR ? path.resolve(process.env.SELFCAST_STATIC_DIR) : null;

export class TestFailure extends Error {}

export function fail(message) {
  throw new TestFailure(message);
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---- The harness: deadline, log, children, cleanup, run ---------------------------------------

export class Harness {
  /**
   * @param {object} o
   * @param {string} o.tag         log prefix: "[tag 12.3s] ..."
   * @param {string} o.label       what PASS/FAIL lines say: "<label>: PASS"
   * @param {number} o.timeoutS    overall timeout unless TEST_TIMEOUT_S is set
   */
  constructor({ tag, label, timeoutS }) {
    this.tag = tag;
    this.label = label;
    this.timeoutMs = Number(process.env.TEST_TIMEOUT_S || timeoutS) * 1000;
    this.started = Date.now();
    this.deadline = this.started + this.timeoutMs;
    this.cleanups = [];    // everything to stop at the end, run newest first
    this.children = [];    // every child process, for the last-resort SIGKILL
    this.stopping = false;
  }

  log(message) {
    const t = ((Date.now() - this.started) / 1000).toFixed(1).padStart(5);
    console.log(`[${this.tag} ${t}s] ${message}`);
  }

  remainingMs() {
    return Math.max(0, this.deadline - Date.now());
  }

  onCleanup(step) {
    this.cleanups.push(step);
  }

  /**
   * Start a child process with its stdout+stderr in a log file. Returns { child, exited } where
   * `exited` resolves with a description when the process ends. The process is stopped at
   * cleanup; stop() stops it now (same way) and resolves when it has exited.
   */
  startProcess(name, command, args, logFile, stopSignal = 'SIGTERM') {
    const out = fs.openSync(logFile, 'w');
    // NO_COLOR: plain text in the log files (tracing-subscriber honours it).
    const child = spawn(command, args, { stdio: ['ignore', out, out], env: { ...process.env, NO_COLOR: '1' } });
    this.children.push(child);
    fs.closeSync(out);
    let done = false;
    const exited = new Promise((resolve) => {
      child.on('error', (err) => { done = true; resolve(`${name} could not start: ${err.message}`); });
      child.on('exit', (code, signal) => {
        done = true;
        resolve(`${name} exited (${signal ? 'signal ' + signal : 'code ' + code})`);
      });
    });
    const stop = async () => {
      if (done) return;
      child.kill(stopSignal);
      const stopped = await Promise.race([exited.then(() => true), sleep(5000).then(() => false)]);
      if (!stopped) {
        this.log(`${name} did not stop after ${stopSignal} within 5 s: killing it`);
        child.kill('SIGKILL');
        await exited;
      }
    };
    this.cleanups.push(stop);
    return { child, exited, stop, isDone: () => done };
  }

  /** Resolve with the value of `promise`, or fail when one of `exits` (a child's death) comes
   *  first or time runs out. */
  async raceWith(promise, what, exits) {
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new TestFailure(`timed out (${this.timeoutMs / 1000} s overall) while ${what}`)), this.remainingMs());
    });
    const deaths = exits.map((e) => e.then((why) => { throw new TestFailure(`${why} while ${what}`); }));
    try {
      return await Promise.race([promise, timeout, ...deaths]);
    } finally {
      clearTimeout(timer);
    }
  }

  async cleanup() {
    while (this.cleanups.length > 0) {
      const step = this.cleanups.pop();
      try {
        await step();
      } catch (err) {
        this.log(`cleanup: ${err.message}`);
      }
    }
  }

  /**
   * Run the test: main(), then pass() (prints timings) or, on failure, the FAIL line,
   * diagnose(), and the FAIL line again. Always cleans up, then exits the process.
   */
  async run(main, { pass, diagnose }) {
    // Last resort if something hangs outside raceWith (a screenshot, browser.close, ...): kill
    // the children hard and exit.
    setTimeout(() => {
      console.log(`${this.label}: FAIL: hung past the ${this.timeoutMs / 1000} s timeout + 30 s grace; killing everything`);
      for (const child of this.children) child.kill('SIGKILL');
      process.exit(1);
    }, this.timeoutMs + 30000).unref();

    for (const signal of ['SIGINT', 'SIGTERM']) {
      process.on(signal, async () => {
        if (this.stopping) return;
        this.stopping = true;
        this.log(`${signal}: stopping`);
        await this.cleanup();
        process.exit(130);
      });
    }

    let exitCode = 0;
    try {
      await main();
      console.log('');
      pass();
      console.log(`${this.label}: PASS`);
    } catch (err) {
      exitCode = 1;
      console.log('');
      console.log(`${this.label}: FAIL: ${err instanceof TestFailure ? err.message : err.stack || err}`);
      try {
        await diagnose();
      } catch (diagErr) {
        console.log(`(diagnostics failed: ${diagErr.message})`);
      }
      console.log(`${this.label}: FAIL: ${err instanceof TestFailure ? err.message : err.message || err}`);
    } finally {
      this.stopping = true;
      await this.cleanup();
    }
    process.exit(exitCode);
  }
}

// ---- Setup helpers ----------------------------------------------------------------------------

export function findBinary() {
  const given = process.argv[2] || process.env.SELFCAST_BIN || 'target/release/selfcast';
  const candidates = path.isAbsolute(given) ? [given] : [path.resolve(given), path.join(REPO, given)];
  const found = candidates.find((p) => fs.existsSync(p));
  if (!found) {
    fail(`selfcast binary not found: ${candidates.join(' or ')} (build it: cargo build --release)`);
  }
  return found;
}

export function requireTool(name, args = ['-version']) {
  const result = spawnSync(name, args, { stdio: 'ignore' });
  if (result.error || result.status !== 0) {
    fail(`${name} is not installed or does not run (${result.error ? result.error.message : 'exit ' + result.status})`);
  }
}

/** ffmpeg and chromium must be there. */
export function requireTools() {
  requireTool('ffmpeg');
  if (!fs.existsSync(CHROMIUM)) {
    fail(`chromium not found at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM)`);
  }
}

/** A free TCP port on 127.0.0.1 (the OS picks it; we close it again right away). */
export function freePort() {
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
 * A test clip: `seconds` of a lavfi video source + a sine tone, encoded the way OBS would
 * (1280x720 30 fps H.264 High with B-frames, 2 s GOP, yuv420p; AAC 48 kHz stereo). Made once
 * and kept in tests/browser/.cache, then published with `-c copy`, so the 2 cores are not busy
 * encoding during the test.
 *
 * @param {Harness} h
 * @param {object} o
 * @param {string} o.file     file name in the cache
 * @param {string} o.video    lavfi source name: testsrc2, smptebars, ...
 * @param {number} o.tone     sine frequency, Hz
 * @param {number} o.seconds  length
 */
export function ensureClip(h, { file: name, video, tone, seconds }) {
  fs.mkdirSync(CACHE, { recursive: true });
  const file = path.join(CACHE, name);
  if (fs.existsSync(file) && fs.statSync(file).size > 0) {
    return file;
  }
  h.log(`generating the ${seconds} s test clip (once): ${file}`);
  const part = `${file}.${process.pid}.part.mp4`;
  const result = spawnSync('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-nostdin', '-y',
    '-f', 'lavfi', '-i', `${video}=size=1280x720:rate=30`,
    '-f', 'lavfi', '-i', `sine=frequency=${tone}:sample_rate=48000`,
    '-t', String(seconds),
    '-c:v', 'libx264', '-preset', 'veryfast', '-bf', '2', '-g', '60', '-keyint_min', '60',
    '-sc_threshold', '0', '-pix_fmt', 'yuv420p', '-b:v', '2500k',
    '-c:a', 'aac', '-ar', '48000', '-ac', '2', '-b:a', '128k',
    '-movflags', '+faststart', '-shortest', part,
  ], { stdio: ['ignore', 'inherit', 'inherit'], timeout: h.remainingMs() });
  if (result.status !== 0) {
    fs.rmSync(part, { force: true });
    fail(`ffmpeg could not generate the test clip (${result.error ? result.error.message : 'exit ' + result.status})`);
  }
  fs.renameSync(part, file);
  return file;
}

/** The clip play.mjs publishes (testsrc2 + 440 Hz, 20 s); reconnect.mjs uses it too. */
export const CLIP_TESTSRC2 = { file: 'clip-v1-20s.mp4', video: 'testsrc2', tone: 440, seconds: 20 };

export async function fetchText(url, timeoutMs = 2000) {
  const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), cache: 'no-store' });
  const body = await response.text();
  return { status: response.status, body };
}

/** The admin API as a script or bot uses it: HTTP Basic auth, a JSON body, no Origin. Fails the
 *  test on any answer but 2xx; returns the parsed JSON answer. */
export async function adminRequest(base, password, method, p, body) {
  const response = await fetch(`${base}${p}`, {
    method,
    headers: {
      authorization: `Basic ${Buffer.from(`admin:${password}`).toString('base64')}`,
      'content-type': 'application/json',
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  const text = await response.text();
  if (!response.ok) fail(`${method} ${p} answered HTTP ${response.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

export async function getStatus(base) {
  const { status, body } = await fetchText(`${base}/api/status`);
  if (status !== 200) {
    throw new Error(`/api/status answered HTTP ${status}: ${body.slice(0, 200)}`);
  }
  return JSON.parse(body);
}

export function tail(file, lines = 40) {
  try {
    const text = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
    return text.slice(-lines).join('\n');
  } catch (err) {
    return `(cannot read ${file}: ${err.message})`;
  }
}

/**
 * Start `selfcast --config <temp config>` on free loopback ports (segment_seconds = 2,
 * playlist_segments = 6; [http] static_dir = $SELFCAST_STATIC_DIR when set) and wait until
 * /api/status answers. `extraToml` (optional) is appended to the config, e.g.
 * `[[video.variants]]` tables for a ladder of the test's own; `serverToml` (optional) is more
 * lines of its `[server]` table, e.g. `title = "..."`. Returns
 * { base, rtmpUrl, rtmpPort, server, initial (the first status), serverToStatus (ms), bin,
 *   configPath, dataDir } (restartServer takes it).
 */
export async function startServer(h, { bin, script, logFile, extraToml = '', serverToml = '' }) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `selfcast-${path.basename(script, '.mjs')}-`));
  h.onCleanup(async () => fs.rmSync(tmp, { recursive: true, force: true }));
  const [rtmpPort, httpPort] = [await freePort(), await freePort()];
  const streamKey = `test-${randomBytes(8).toString('hex')}`;
  const configPath = path.join(tmp, 'config.toml');
  fs.writeFileSync(configPath, [
    `# written by tests/browser/${script}`,
    '[server]',
    `data_dir = ${JSON.stringify(path.join(tmp, 'data'))}`,
    serverToml,
    '',
    '[rtmp]',
    `listen = "127.0.0.1:${rtmpPort}"`,
    `stream_key = ${JSON.stringify(streamKey)}`,
    '',
    '[http]',
    `listen = "127.0.0.1:${httpPort}"`,
    ...(STATIC_DIR ? [`static_dir = ${JSON.stringify(STATIC_DIR)}`] : []),
    '',
    '[hls]',
    'segment_seconds = 2',
    'playlist_segments = 6',
    '',
  ].join('\n') + extraToml);
  const base = `http://127.0.0.1:${httpPort}`;

  h.log(`starting ${bin} --config ${configPath} (rtmp ${rtmpPort}, http ${httpPort})`);
  const started = await runServer(h, { name: 'selfcast', bin, configPath, base, logFile });
  const rtmpUrl = `rtmp://127.0.0.1:${rtmpPort}/live/${streamKey}`;
  return { ...started, base, rtmpUrl, rtmpPort, bin, configPath, dataDir: path.join(tmp, 'data') };
}

/**
 * Stop the server startServer (or an earlier restartServer) started, start it again on the same
 * config, ports and data directory, and wait until /api/status answers. Returns what startServer
 * returns, with the new process.
 */
export async function restartServer(h, started, logFile) {
  h.log('stopping the server');
  await started.server.stop();
  h.log(`starting ${started.bin} again on the same config and data (${logFile})`);
  const again = await runServer(h, { name: 'selfcast (restarted)', ...started, logFile });
  return { ...started, ...again };
}

async function runServer(h, { name, bin, configPath, base, logFile }) {
  const serverStart = Date.now();
  const server = h.startProcess(name, bin, ['--config', configPath], logFile, 'SIGINT');
  const initial = await h.raceWith((async () => {
    for (;;) {
      try {
        return await getStatus(base);
      } catch {
        await sleep(100);
      }
    }
  })(), 'waiting for GET /api/status to answer', [server.exited]);
  return { server, initial, serverToStatus: Date.now() - serverStart };
}

/**
 * The attacker's site of the CSRF tests: one page on another port of 127.0.0.1 (another origin,
 * but the same site, so a SameSite=Strict cookie of selfcast's is sent along). It has an
 * <iframe name="sink"> for form posts. Stopped at cleanup; returns its base URL.
 */
export async function startOtherOrigin(h) {
  const port = await freePort();
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>a page on another site</title><iframe name="sink"></iframe>');
  });
  await new Promise((resolve, reject) => {
    server.on('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  h.onCleanup(() => new Promise((resolve) => server.close(resolve)));
  return `http://127.0.0.1:${port}`;
}

/**
 * Publish a clip over RTMP as OBS would (`-re`, `-c copy`), in a loop or once (optionally only
 * its first `seconds`). Returns the process as startProcess does.
 */
export function publish(h, { name = 'ffmpeg', clip, rtmpUrl, logFile, loop, seconds }) {
  return h.startProcess(name, 'ffmpeg', [
    '-hide_banner', '-loglevel', 'warning', '-nostdin',
    '-re', ...(loop ? ['-stream_loop', '-1'] : []), ...(seconds ? ['-t', String(seconds)] : []), '-i', clip,
    '-c', 'copy', '-f', 'flv', '-flvflags', 'no_duration_filesize', rtmpUrl,
  ], logFile);
}

/** Debian's Chromium, headless, allowed to autoplay. Closed at cleanup. */
export async function launchBrowser(h, exits) {
  const browser = await h.raceWith(chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // playwright-core gives every launch a new, empty user-data-dir of its own.
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-quic', '--autoplay-policy=no-user-gesture-required',
    ],
  }), 'launching chromium', exits);
  h.onCleanup(() => browser.close().catch(() => {}));
  return browser;
}

/**
 * A new page (1280x720 unless `viewport` says otherwise), in a browser context of its own (more
 * pages can be opened in it: page.context().newPage()), whose console, page errors, failed
 * requests and HTTP errors go to `logFile`, and which records when its <video> first plays
 * (window.__firstPlayingAt). Returns { page, note } (note(line) adds a line to the log).
 */
export async function newPage(browser, logFile, { viewport = { width: 1280, height: 720 } } = {}) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const note = (line) => {
    fs.appendFileSync(logFile, `${new Date().toISOString()} ${line}\n`);
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
  return { page, note };
}

/** Open the viewer page; fails unless GET / answers 200. */
export async function openPage(h, page, base, exits) {
  const response = await h.raceWith(page.goto(`${base}/`, { waitUntil: 'load' }), 'loading the page', exits);
  if (!response || response.status() !== 200) {
    fail(`GET / answered ${response ? 'HTTP ' + response.status() : 'nothing'}`);
  }
}

// ---- After a failure --------------------------------------------------------------------------

/** What the viewer page shows and what player.js knows (for diagnostics). */
export function pageState(page) {
  return page.evaluate(() => ({
    state: window.selfcast && window.selfcast.state,
    errors: window.selfcast && window.selfcast.errors,
    currentTime: document.getElementById('video').currentTime,
    readyState: document.getElementById('video').readyState,
    overlayShown: !document.getElementById('overlay').hidden,
    overlayText: document.getElementById('overlay-text').textContent,
    overlayDetail: document.getElementById('overlay-detail').textContent,
  }));
}

/**
 * Print what went wrong: each page's state (and save `failure*.png`), what the server serves
 * (status, master and media playlist), and the tails of the logs.
 *
 * @param {object} o
 * @param {Array<[string|null, import('playwright-core').Page, string]>} o.pages
 *        [name (null: just "page state"), page, screenshot file name]
 * @param {string|null} o.base
 * @param {Array<[string, string, number]>} o.logs   [name, file, lines]
 */
export async function diagnose({ pages, base, logs }) {
  for (const [name, page, shot] of pages) {
    if (!page) continue;
    await page.screenshot({ path: path.join(ARTIFACTS, shot) }).catch(() => {});
    const state = await pageState(page).catch((err) => `(cannot read page state: ${err.message})`);
    console.log(name ? `--- page state (${name}) ---` : '--- page state ---');
    console.log(JSON.stringify(state, null, 2));
  }
  if (base) {
    // What the server serves, to tell a server problem from a page problem.
    for (const p of ['/api/status', '/hls/stream.m3u8']) {
      try {
        const { status, body } = await fetchText(`${base}${p}`);
        console.log(`--- GET ${p} → HTTP ${status} ---\n${body.slice(0, 2000)}`);
        const variant = p.endsWith('.m3u8') && body.split('\n').find((l) => l && !l.startsWith('#'));
        if (variant && variant.trim().endsWith('.m3u8')) {
          const url = new URL(variant.trim(), `${base}${p}`).href;
          const v = await fetchText(url);
          console.log(`--- GET ${url} → HTTP ${v.status} ---\n${v.body.slice(0, 2000)}`);
        }
      } catch (err) {
        console.log(`--- GET ${p} failed: ${err.message}`);
      }
    }
  }
  for (const [name, file, lines] of logs) {
    if (file && fs.existsSync(file)) {
      console.log(`--- ${name} (last ${lines} lines of ${path.relative(process.cwd(), file)}) ---`);
      console.log(tail(file, lines));
    }
  }
}

// Logs the non-fatal hls.js errors of a page's window.selfcast.errors and fails the test on a
// fatal one (`outcome` is what the wait for playback ended with).
export function checkHlsErrors(log, errors, outcome) {
  const nonFatal = errors.filter((e) => !e.fatal);
  if (nonFatal.length > 0) {
    log(`non-fatal hls.js errors (${nonFatal.length}):`);
    for (const e of nonFatal) console.log(`    ${e.type} ${e.details}`);
  }
  if (outcome === 'fatal') {
    const fatal = errors.filter((e) => e.fatal).map((e) => `${e.type}/${e.details}`);
    fail(`fatal hls.js error(s): ${fatal.join(', ')}`);
  }
}
