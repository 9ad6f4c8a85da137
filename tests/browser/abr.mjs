#!/usr/bin/env node
// tests/browser/abr.mjs — the adaptive bitrate ladder in a real player: every rendition of the
// ladder plays in the viewer page, and hls.js can switch between them mid-stream.
//
//   ffmpeg (as OBS) ──RTMP──▶ selfcast (source + 480p + 360p) ──HLS──▶ viewer page (hls.js)
//
// 1. Starts selfcast with the ladder source (passthrough) + 480p @ 1000 kbps + 360p @ 600 kbps
//    (x264 veryfast) and publishes the 1280x720 test clip in a loop, as play.mjs does.
// 2. Opens the viewer page and waits until it plays.
// 3. Forces level switches through window.selfcast.hls: to the lowest and the highest level
//    and the one in between, alternating hls.currentLevel (switch now, buffer flushed) and
//    hls.nextLevel (switch at the next fragment). For each: waits for LEVEL_SWITCHED to that
//    level, for video.videoHeight to be the level's height, and for currentTime to advance
//    2 s on it, with no fatal hls.js error (window.selfcast.errors) and no switch elsewhere.
// 4. Saves artifacts/abr-<height>.png for each level and prints the timings.
//
// Usage:   node tests/browser/abr.mjs [path/to/selfcast]
// Env:     SELFCAST_BIN, CHROMIUM, TEST_TIMEOUT_S (default 120), as in play.mjs
// Output:  tests/browser/artifacts/: abr-360.png, abr-480.png, abr-720.png, abr-server.log,
//          abr-ffmpeg.log, abr-browser.log (and abr-failure.png on failure)

import fs from 'node:fs';
import path from 'node:path';

import {
  ARTIFACTS, CLIP_TESTSRC2, Harness, diagnose as diagnoseAll, ensureClip, fail, findBinary,
  getStatus, launchBrowser, newPage, openPage, publish, requireTools, startServer,
} from './harness.mjs';

const ADVANCE_S = 2;             // how far playback must get on each level
const HEIGHT_WAIT_MS = 10000;    // after LEVEL_SWITCHED, how long videoHeight may lag

// The ladder (config positions 0, 1, 2 = /hls/0/, /hls/1/, /hls/2/).
const LADDER = [
  { name: 'source', toml: 'passthrough = true', width: 1280, height: 720 },
  { name: '480p', toml: 'height = 480\nvideo_bitrate_kbps = 1000\ncpu_usage_level = 2', width: 854, height: 480 },
  { name: '360p', toml: 'height = 360\nvideo_bitrate_kbps = 600\ncpu_usage_level = 2', width: 640, height: 360 },
];
const LADDER_TOML = LADDER.map((v) => `\n[[video.variants]]\nname = "${v.name}"\n${v.toml}\n`).join('');

const h = new Harness({ tag: 'abr', label: 'ABR test', timeoutS: 120 });
const log = (message) => h.log(message);

const timings = { switches: [] };
const ctx = { base: null, page: null, artifacts: {} };

async function main() {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  for (const name of fs.readdirSync(ARTIFACTS).filter((f) => f.startsWith('abr-'))) {
    fs.rmSync(path.join(ARTIFACTS, name), { force: true });
  }
  const serverLog = path.join(ARTIFACTS, 'abr-server.log');
  const ffmpegLog = path.join(ARTIFACTS, 'abr-ffmpeg.log');
  const browserLog = path.join(ARTIFACTS, 'abr-browser.log');
  ctx.artifacts = { serverLog, ffmpegLog, browserLog };

  const bin = findBinary();
  requireTools();
  const clip = ensureClip(h, CLIP_TESTSRC2);

  // -- Server with the ladder, and the publisher --
  const { base, rtmpUrl, server, serverToStatus } = await startServer(h, {
    bin, script: 'abr.mjs', logFile: serverLog, extraToml: LADDER_TOML,
  });
  ctx.base = base;
  timings.serverToStatus = serverToStatus;
  log(`/api/status answered after ${serverToStatus} ms; publishing ${path.basename(clip)} in a loop`);
  const publishStart = Date.now();
  const ffmpeg = publish(h, { clip, rtmpUrl, logFile: ffmpegLog, loop: true });
  const exits = [server.exited, ffmpeg.exited];

  // -- The page plays --
  const browser = await launchBrowser(h, exits);
  const { page } = await newPage(browser, browserLog);
  ctx.page = page;
  await openPage(h, page, base, exits);
  const started = await h.raceWith(page.waitForFunction(() => {
    const s = window.selfcast;
    const video = document.getElementById('video');
    if (s && s.errors.some((e) => e.fatal)) return 'fatal';
    if (window.__firstPlayingAt === undefined || !s.hls || s.hls.levels.length === 0) return false;
    if (window.__startCurrentTime === undefined) window.__startCurrentTime = video.currentTime;
    return video.currentTime - window.__startCurrentTime >= 1 ? 'playing' : false;
  }, null, { timeout: 0, polling: 100 }).then((handle) => handle.jsonValue()), 'waiting for the page to play', exits);
  if (started === 'fatal') {
    fail(`fatal hls.js error(s) before playback: ${JSON.stringify(await fatalErrors(page))}`);
  }
  timings.publishToPlaying = (await page.evaluate(() => window.__firstPlayingAt)) - publishStart;

  // -- The levels hls.js sees, and a recorder of its switches --
  const levels = await page.evaluate(() => {
    const hls = window.selfcast.hls;
    window.__abr = { hls, switched: [] };
    hls.on(window.Hls.Events.LEVEL_SWITCHED, (event, data) => {
      window.__abr.switched.push({ level: data.level, at: Date.now(), currentTime: document.getElementById('video').currentTime });
    });
    return hls.levels.map((l, index) => ({ index, width: l.width, height: l.height, bitrate: l.bitrate, url: l.url[0] || l.url }));
  });
  const initial = await page.evaluate(() => window.selfcast.hls.currentLevel);
  log(`playing after ${timings.publishToPlaying} ms on level ${initial}; levels: `
    + levels.map((l) => `#${l.index} ${l.width}x${l.height} ${Math.round(l.bitrate / 1000)} kbps`).join(', '));
  const got = levels.map((l) => `${l.width}x${l.height}`).sort().join(' ');
  const want = LADDER.map((v) => `${v.width}x${v.height}`).sort().join(' ');
  if (got !== want) {
    fail(`hls.js sees the levels ${got}; the ladder is ${want}`);
  }

  // Lowest and highest first (whichever is not playing now goes first, so that each step is
  // a real switch), then the one in between.
  const byHeight = [...levels].sort((a, b) => a.height - b.height);
  const [lowest, middle, highest] = byHeight;
  const order = initial === lowest.index ? [highest, lowest, middle] : [lowest, highest, middle];
  const methods = ['currentLevel', 'nextLevel', 'currentLevel'];

  for (let i = 0; i < order.length; i++) {
    await switchTo(page, order[i], methods[i], exits);
  }

  // -- Afterwards --
  const errors = await page.evaluate(() => window.selfcast.errors);
  const nonFatal = errors.filter((e) => !e.fatal);
  if (nonFatal.length > 0) {
    log(`non-fatal hls.js errors (${nonFatal.length}): ${nonFatal.map((e) => `${e.type}/${e.details}`).join(', ')}`);
  }
  const status = await getStatus(base);
  log(`/api/status: ${JSON.stringify({ online: status.online, input: status.input, variants: status.variants })}`);
  if (status.online !== true) {
    fail(`/api/status says online=${JSON.stringify(status.online)} while the page plays`);
  }
  for (const v of status.variants || []) {
    if (v.framesDropped > 0) {
      log(`note: variant ${v.id} (${v.name}) dropped ${v.framesDropped} frames (the machine was busy)`);
    }
  }
}

async function fatalErrors(page) {
  return page.evaluate(() => window.selfcast.errors.filter((e) => e.fatal).map((e) => `${e.type}/${e.details}`));
}

/** Force a switch to `level` by setting hls[method], then wait for it to play there. */
async function switchTo(page, level, method, exits) {
  const label = `${level.width}x${level.height} (level ${level.index}, hls.${method})`;
  log(`switching to ${label}`);
  const setAt = await page.evaluate(({ index, method }) => {
    window.__abr.target = index;
    window.__abr.setAt = Date.now();
    window.__abr.phase = null;
    window.selfcast.hls[method] = index;
    return window.__abr.setAt;
  }, { index: level.index, method });

  // One waiting function, three phases: LEVEL_SWITCHED to the level, videoHeight = its height,
  // then currentTime + ADVANCE_S on it. Anything else (a fatal error, a new hls.js instance, a
  // switch to another level) ends the wait with a reason.
  const outcome = await h.raceWith(page.waitForFunction(({ height, advance, heightWaitMs }) => {
    const a = window.__abr;
    const s = window.selfcast;
    const video = document.getElementById('video');
    if (s.errors.some((e) => e.fatal)) return { failed: 'fatal hls.js error' };
    if (s.hls !== a.hls) return { failed: 'the page started playback over (new hls.js instance)' };
    const mine = a.switched.filter((e) => e.at >= a.setAt);
    const to = mine.findIndex((e) => e.level === a.target);
    if (to < 0) return false;
    const away = mine.slice(to + 1).find((e) => e.level !== a.target);
    if (away) return { failed: `hls.js switched on to level ${away.level}` };
    const switched = mine[to];
    if (a.phase === null) a.phase = { switchedAt: switched.at, switchedTime: switched.currentTime };
    if (a.phase.heightAt === undefined) {
      if (video.videoHeight !== height) {
        return Date.now() - switched.at > heightWaitMs
          ? { failed: `video.videoHeight is ${video.videoHeight} ${heightWaitMs / 1000} s after LEVEL_SWITCHED` }
          : false;
      }
      a.phase.heightAt = Date.now();
      a.phase.heightTime = video.currentTime;
    }
    if (video.currentTime - a.phase.heightTime < advance) return false;
    return {
      ok: true,
      switchedAt: a.phase.switchedAt,
      heightAt: a.phase.heightAt,
      advancedAt: Date.now(),
      size: [video.videoWidth, video.videoHeight],
      from: a.phase.heightTime,
      to: video.currentTime,
      currentLevel: s.hls.currentLevel,
    };
  }, { height: level.height, advance: ADVANCE_S, heightWaitMs: HEIGHT_WAIT_MS }, { timeout: 0, polling: 100 })
    .then((handle) => handle.jsonValue()), `waiting for playback on ${label}`, exits);
  if (!outcome.ok) {
    const fatal = await fatalErrors(page);
    fail(`switching to ${label}: ${outcome.failed}${fatal.length ? ': ' + fatal.join(', ') : ''}`);
  }
  if (outcome.size[0] !== level.width || outcome.size[1] !== level.height) {
    fail(`on ${label} the video is ${outcome.size.join('x')}`);
  }
  await page.screenshot({ path: path.join(ARTIFACTS, `abr-${level.height}.png`) });
  const t = {
    label,
    setToSwitched: outcome.switchedAt - setAt,
    switchedToHeight: outcome.heightAt - outcome.switchedAt,
    heightToAdvanced: outcome.advancedAt - outcome.heightAt,
    currentTime: `${outcome.from.toFixed(2)} → ${outcome.to.toFixed(2)}`,
  };
  timings.switches.push(t);
  log(`on ${label}: LEVEL_SWITCHED after ${t.setToSwitched} ms, videoHeight ${level.height} after `
    + `+${t.switchedToHeight} ms, currentTime ${t.currentTime} (+${ADVANCE_S} s) after +${t.heightToAdvanced} ms`);
}

function diagnose() {
  const { serverLog, ffmpegLog, browserLog } = ctx.artifacts;
  const abr = ctx.page
    ? ctx.page.evaluate(() => ({
      abr: window.__abr && { target: window.__abr.target, setAt: window.__abr.setAt, phase: window.__abr.phase, switched: window.__abr.switched },
      currentLevel: window.selfcast.hls && window.selfcast.hls.currentLevel,
      videoSize: [document.getElementById('video').videoWidth, document.getElementById('video').videoHeight],
    })).then((s) => console.log(`--- level switching ---\n${JSON.stringify(s, null, 2)}`)).catch(() => {})
    : Promise.resolve();
  return abr.then(() => diagnoseAll({
    pages: [[null, ctx.page, 'abr-failure.png']],
    base: ctx.base,
    logs: [['server log', serverLog, 60], ['ffmpeg log', ffmpegLog, 20], ['browser log', browserLog, 30]],
  }));
}

function pass() {
  console.log('ABR test timings:');
  console.log(`  server start  → /api/status answered : ${timings.serverToStatus} ms`);
  console.log(`  publish start → first "playing"      : ${timings.publishToPlaying} ms`);
  console.log('  level switch                                  set→LEVEL_SWITCHED  →videoHeight  →+2 s played   currentTime');
  for (const t of timings.switches) {
    console.log(`  ${t.label.padEnd(44)} ${String(t.setToSwitched).padStart(10)} ms ${String(t.switchedToHeight).padStart(9)} ms `
      + `${String(t.heightToAdvanced).padStart(10)} ms   ${t.currentTime}`);
  }
  console.log(`  screenshots: ${path.relative(process.cwd(), ARTIFACTS)}/abr-{360,480,720}.png`);
}

await h.run(main, { pass, diagnose });
