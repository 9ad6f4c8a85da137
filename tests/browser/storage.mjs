#!/usr/bin/env node
// tests/browser/storage.mjs — with `[storage] kind = "s3"`, viewers fetch the video from the
// bucket, not from selfcast:
//
//   ffmpeg (as OBS) ──RTMP──▶ selfcast ──PUT──▶ moto (S3) ◀──GET (playlists, segments)── viewer page
//                                 ▲                                                     (hls.js)
//                                 └──────────── GET /api/status (hlsUrl) ───────────────────┘
//
// 1. Starts moto (an S3-compatible server, ci/lib.sh ensure_moto) on a free port and creates a
//    bucket; starts selfcast with `[storage] kind = "s3"` pointing at it (public-read objects,
//    public_base_url = the bucket's URL, path_prefix = "live"); publishes the test clip in a
//    loop as play.mjs does.
// 2. Waits until /api/status says hlsUrl = <bucket>/live/stream.m3u8 and storage.state = "ok",
//    and checks that the bucket's playlists are readable anonymously and list absolute URLs in
//    the bucket.
// 3. Opens the viewer page, records every request it makes, and waits until the video plays
//    (currentTime advances 3 s, no fatal hls.js error in window.selfcast.errors).
// 4. Checks the requests: the master playlist, a media playlist and at least 2 segments (.m4s)
//    were fetched from the bucket's origin and succeeded (CORS included: the page's origin is
//    selfcast's port); no request for video went to selfcast's /hls/. Prints the counts per
//    origin, saves artifacts/storage-playing.png and prints timings.
//
// Usage:   node tests/browser/storage.mjs [path/to/selfcast]
// Env:     SELFCAST_BIN, CHROMIUM, TEST_TIMEOUT_S (default 120), as in play.mjs;
//          SELFCAST_MOTO_VENV  moto's venv (default target/tools/moto-5.2.1, as ci/lib.sh)
// Needs:   moto: bash -c 'source ci/lib.sh && ensure_moto' (ci/test installs it)
// Output:  tests/browser/artifacts/: storage-playing.png, storage-server.log, storage-moto.log,
//          storage-ffmpeg.log, storage-browser.log, storage-requests.json (every request the page
//          made) (and storage-failure.png on failure)

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import {
  ARTIFACTS, checkHlsErrors, CLIP_TESTSRC2, Harness, REPO, TestFailure, diagnose as diagnoseAll, ensureClip, fail,
  fetchText, findBinary, freePort, getStatus, launchBrowser, newPage, openPage, publish,
  requireTools, sleep, startServer,
} from './harness.mjs';

const ADVANCE_S = 3;              // how far playback must get
const MIN_BUCKET_SEGMENTS = 2;    // .m4s the page must have fetched from the bucket
const SERVING_WAIT_MS = 45000;    // publish → /api/status sends viewers to the bucket
const MOTO_VERSION = '5.2.1';     // as ci/lib.sh
const PREFIX = 'live';

const h = new Harness({ tag: 'storage', label: 'storage browser test', timeoutS: 120 });
const log = (message) => h.log(message);

const timings = {};
const ctx = { base: null, bucketUrl: null, page: null, requests: [], lastStatus: null, artifacts: {} };

function motoServerPath() {
  const venv = process.env.SELFCAST_MOTO_VENV || path.join(REPO, 'target', 'tools', `moto-${MOTO_VERSION}`);
  const bin = path.join(venv, 'bin', 'moto_server');
  if (!fs.existsSync(bin)) {
    fail(`moto not found at ${bin} (install it: bash -c 'source ci/lib.sh && ensure_moto', or set SELFCAST_MOTO_VENV)`);
  }
  return bin;
}

/** moto_server on a free port with one bucket. Returns { endpoint, bucketUrl, moto }. */
async function startMoto(logFile) {
  const bin = motoServerPath();
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  log(`starting ${bin} -H 127.0.0.1 -p ${port}`);
  const t0 = Date.now();
  const moto = h.startProcess('moto', bin, ['-H', '127.0.0.1', '-p', String(port)], logFile);
  await h.raceWith((async () => {
    for (;;) {
      try {
        const { status } = await fetchText(`${endpoint}/`);
        if (status === 200) return;
      } catch {
        // not listening yet
      }
      await sleep(100);
    }
  })(), 'waiting for moto to answer GET /', [moto.exited]);
  timings.motoStart = Date.now() - t0;

  const bucket = `selfcast-${randomBytes(4).toString('hex')}`;
  const created = await h.raceWith(fetch(`${endpoint}/${bucket}`, { method: 'PUT', signal: AbortSignal.timeout(5000) })
    .then(async (r) => ({ status: r.status, body: await r.text() })), `creating the bucket ${bucket}`, [moto.exited]);
  if (created.status !== 200) {
    fail(`moto answered HTTP ${created.status} to PUT /${bucket} (creating the bucket): ${created.body.slice(0, 300)}`);
  }
  log(`moto answers after ${timings.motoStart} ms; bucket ${bucket} created`);
  return { endpoint, bucket, bucketUrl: `${endpoint}/${bucket}`, moto };
}

/** What a request is for, from its path. */
function kindOf(url) {
  const p = url.pathname;
  if (p.endsWith('.m4s')) return 'segment';
  if (/\/init-[^/]*\.mp4$/.test(p)) return 'init';
  if (/\/\d+\/stream\.m3u8$/.test(p)) return 'media playlist';
  if (p.endsWith('/stream.m3u8')) return 'master playlist';
  if (p.endsWith('.m3u8')) return 'other playlist';
  return 'other';
}

/** Record every request the page makes: url, kind, HTTP status, finished or failed. */
function recordRequests(page) {
  const entries = new Map();
  page.on('request', (req) => {
    const entry = { url: req.url(), method: req.method(), resourceType: req.resourceType(), at: Date.now(),
      status: null, outcome: 'pending', failure: null };
    entries.set(req, entry);
    ctx.requests.push(entry);
  });
  page.on('response', (res) => {
    const entry = entries.get(res.request());
    if (entry) entry.status = res.status();
  });
  page.on('requestfinished', (req) => {
    const entry = entries.get(req);
    if (entry) entry.outcome = 'finished';
  });
  page.on('requestfailed', (req) => {
    const entry = entries.get(req);
    if (entry) {
      entry.outcome = 'failed';
      entry.failure = req.failure()?.errorText || 'unknown';
    }
  });
}

/** The requests by origin ("bucket", "selfcast", or the origin) and kind. */
function summarize(requests, { base, bucketUrl }) {
  const bucketOrigin = new URL(bucketUrl).origin;
  const selfOrigin = new URL(base).origin;
  const byOrigin = {};
  for (const r of requests) {
    let url;
    try {
      url = new URL(r.url);
    } catch {
      continue;
    }
    const origin = url.origin === bucketOrigin ? 'bucket' : url.origin === selfOrigin ? 'selfcast' : (url.origin === 'null' ? url.protocol : url.origin);
    const kind = kindOf(url);
    const ok = r.outcome === 'finished' && r.status >= 200 && r.status < 300;
    byOrigin[origin] ??= {};
    byOrigin[origin][kind] ??= { total: 0, ok: 0, failed: 0, pending: 0 };
    const c = byOrigin[origin][kind];
    c.total += 1;
    if (ok) c.ok += 1;
    else if (r.outcome === 'pending') c.pending += 1;
    else c.failed += 1;
  }
  return byOrigin;
}

function printSummary(byOrigin) {
  for (const [origin, kinds] of Object.entries(byOrigin)) {
    const parts = Object.entries(kinds).map(([k, c]) =>
      `${k} ${c.ok}/${c.total} ok${c.failed ? `, ${c.failed} failed` : ''}${c.pending ? `, ${c.pending} pending` : ''}`);
    console.log(`    ${origin.padEnd(8)}: ${parts.join('; ')}`);
  }
}

async function main() {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  for (const name of fs.readdirSync(ARTIFACTS).filter((f) => f.startsWith('storage-'))) {
    fs.rmSync(path.join(ARTIFACTS, name), { force: true });
  }
  const serverLog = path.join(ARTIFACTS, 'storage-server.log');
  const motoLog = path.join(ARTIFACTS, 'storage-moto.log');
  const ffmpegLog = path.join(ARTIFACTS, 'storage-ffmpeg.log');
  const browserLog = path.join(ARTIFACTS, 'storage-browser.log');
  ctx.artifacts = { serverLog, motoLog, ffmpegLog, browserLog };

  const bin = findBinary();
  requireTools();
  motoServerPath();
  const clip = ensureClip(h, CLIP_TESTSRC2);

  // -- S3: moto and a bucket --
  const { endpoint, bucket, bucketUrl, moto } = await startMoto(motoLog);
  ctx.bucketUrl = bucketUrl;
  const expectedHlsUrl = `${bucketUrl}/${PREFIX}/stream.m3u8`;

  // -- selfcast, uploading to the bucket --
  const storageToml = [
    '',
    '[storage]',
    'kind = "s3"',
    '',
    '[storage.s3]',
    `endpoint = ${JSON.stringify(endpoint)}`,
    'region = "us-east-1"',
    `bucket = ${JSON.stringify(bucket)}`,
    'access_key = "selfcast-test"',
    'secret_key = "selfcast-test-secret"',
    'force_path_style = true',
    'acl = "public-read"',
    `public_base_url = ${JSON.stringify(bucketUrl)}`,
    `path_prefix = ${JSON.stringify(PREFIX)}`,
    '',
  ].join('\n');
  const { base, rtmpUrl, rtmpPort, server, initial, serverToStatus } = await startServer(h, {
    bin, script: 'storage.mjs', logFile: serverLog, extraToml: storageToml,
  });
  ctx.base = base;
  timings.serverToStatus = serverToStatus;
  log(`/api/status answered after ${serverToStatus} ms: hlsUrl ${JSON.stringify(initial.hlsUrl)}, `
    + `storage ${JSON.stringify(initial.storage && { state: initial.storage.state, target: initial.storage.target })}`);
  if (!initial.storage || initial.storage.kind !== 's3') {
    fail(`/api/status has no storage of kind "s3": ${JSON.stringify(initial.storage)}`);
  }
  if (initial.hlsUrl !== '/hls/stream.m3u8') {
    fail(`/api/status hlsUrl is ${JSON.stringify(initial.hlsUrl)} before anything is uploaded; expected "/hls/stream.m3u8"`);
  }

  // -- Publish, as OBS would --
  log(`publishing ${path.basename(clip)} in a loop to rtmp://127.0.0.1:${rtmpPort}/live/<key>`);
  const publishStart = Date.now();
  const ffmpeg = publish(h, { clip, rtmpUrl, logFile: ffmpegLog, loop: true });
  const exits = [server.exited, ffmpeg.exited, moto.exited];

  // -- Wait until /api/status sends viewers to the bucket --
  let lastLine = '';
  let lastKey = '';
  let lastLoggedAt = 0;
  const serving = h.raceWith((async () => {
    const until = Date.now() + SERVING_WAIT_MS;
    while (Date.now() < until) {
      let status;
      try {
        status = await getStatus(base);
      } catch {
        await sleep(250);
        continue;
      }
      ctx.lastStatus = status;
      const s = status.storage || {};
      const line = `online=${status.online} hlsUrl=${status.hlsUrl} storage.state=${s.state} stored=${s.stored} `
        + `failures=${s.failures}${s.lastError ? ` lastError=${JSON.stringify(s.lastError)}` : ''}`;
      // A line when where viewers go or the storage's state changes, else one every 5 s.
      const key = `${status.online} ${status.hlsUrl} ${s.state}`;
      if (key !== lastKey || Date.now() - lastLoggedAt >= 5000) {
        log(`status: ${line}`);
        lastKey = key;
        lastLoggedAt = Date.now();
      }
      lastLine = line;
      if (status.hlsUrl === expectedHlsUrl && s.state === 'ok') return status;
      await sleep(250);
    }
    throw new TestFailure(`/api/status did not send viewers to the bucket within ${SERVING_WAIT_MS / 1000} s of `
      + `publishing (expected hlsUrl ${expectedHlsUrl} and storage.state "ok"); last: ${lastLine}`);
  })(), 'waiting for /api/status to send viewers to the bucket', exits);
  const servingStatus = await serving;
  timings.publishToServing = Date.now() - publishStart;
  log(`viewers are sent to the bucket ${timings.publishToServing} ms after publishing `
    + `(stored ${servingStatus.storage.stored}, putMs ${JSON.stringify(servingStatus.storage.putMs)})`);

  // -- The bucket's playlists: readable anonymously, absolute URLs in the bucket --
  const master = await fetchText(expectedHlsUrl);
  if (master.status !== 200) {
    fail(`anonymous GET ${expectedHlsUrl} answered HTTP ${master.status}: ${master.body.slice(0, 300)}`);
  }
  const uris = (text) => text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const variants = uris(master.body);
  if (variants.length === 0) fail(`the bucket's master playlist lists no variant:\n${master.body}`);
  const outside = variants.filter((u) => !u.startsWith(`${bucketUrl}/${PREFIX}/`));
  if (outside.length > 0) {
    fail(`the bucket's master playlist lists URLs outside ${bucketUrl}/${PREFIX}/: ${outside.join(', ')}`);
  }
  const media = await fetchText(variants[0]);
  if (media.status !== 200) fail(`anonymous GET ${variants[0]} answered HTTP ${media.status}: ${media.body.slice(0, 300)}`);
  const mapUris = [...media.body.matchAll(/#EXT-X-MAP:URI="([^"]+)"/g)].map((m) => m[1]);
  const mediaUris = [...uris(media.body), ...mapUris];
  const mediaOutside = mediaUris.filter((u) => !u.startsWith(`${bucketUrl}/${PREFIX}/`));
  if (mediaUris.length === 0 || mediaOutside.length > 0) {
    fail(`the bucket's media playlist ${variants[0]} should list only absolute URLs in the bucket:\n${media.body}`);
  }
  log(`bucket playlists: master lists ${variants.length} variant(s); ${variants[0]} lists `
    + `${uris(media.body).length} segment(s), all absolute URLs in the bucket`);

  // -- Browser: the viewer page, every request recorded --
  const browser = await launchBrowser(h, exits);
  const { page } = await newPage(browser, browserLog);
  ctx.page = page;
  recordRequests(page);
  const pageOpen = Date.now();
  log(`opening ${base}/`);
  await openPage(h, page, base, exits);

  const fatalOrAdvanced = (advance) => {
    const s = window.selfcast;
    const video = document.getElementById('video');
    if (s && s.errors.some((e) => e.fatal)) return 'fatal';
    if (window.__firstPlayingAt === undefined) return false;
    if (window.__startCurrentTime === undefined) window.__startCurrentTime = video.currentTime;
    return video.currentTime - window.__startCurrentTime >= advance ? 'advanced' : false;
  };
  const outcome = await h.raceWith(
    page.waitForFunction(fatalOrAdvanced, ADVANCE_S, { timeout: 0, polling: 100 }).then((handle) => handle.jsonValue()),
    `waiting for playback (video.currentTime to advance by ${ADVANCE_S} s)`, exits);
  const advancedAt = Date.now();
  const state = await page.evaluate(() => ({
    firstPlayingAt: window.__firstPlayingAt,
    errors: window.selfcast.errors,
    streamUrl: window.selfcast.streamUrl,
    currentTime: document.getElementById('video').currentTime,
    startCurrentTime: window.__startCurrentTime,
    size: [document.getElementById('video').videoWidth, document.getElementById('video').videoHeight],
  }));
  checkHlsErrors(log, state.errors, outcome);
  timings.pageOpenToPlaying = state.firstPlayingAt - pageOpen;
  timings.playingToAdvanced = advancedAt - state.firstPlayingAt;
  log(`playing ${state.streamUrl}: currentTime ${state.startCurrentTime.toFixed(2)} → ${state.currentTime.toFixed(2)} s, `
    + `video ${state.size.join('x')}`);
  await page.screenshot({ path: path.join(ARTIFACTS, 'storage-playing.png') });

  // -- Where the page fetched video from --
  const requests = ctx.requests.slice();
  fs.writeFileSync(path.join(ARTIFACTS, 'storage-requests.json'), JSON.stringify(requests, null, 2));
  const byOrigin = summarize(requests, { base, bucketUrl });
  timings.byOrigin = byOrigin;
  log(`requests by origin (bucket ${new URL(bucketUrl).origin}, selfcast ${new URL(base).origin}):`);
  printSummary(byOrigin);

  // Video bandwidth must not come from selfcast: no segment, and nothing under /hls/.
  const selfOrigin = new URL(base).origin;
  const fromSelfcast = requests.filter((r) => {
    const url = new URL(r.url);
    return url.origin === selfOrigin && (url.pathname.startsWith('/hls/') || kindOf(url) === 'segment');
  });
  const selfSegments = fromSelfcast.filter((r) => kindOf(new URL(r.url)) === 'segment');
  if (selfSegments.length > 0) {
    fail(`${selfSegments.length} segment request(s) went to selfcast instead of the bucket, e.g. ${selfSegments[0].url}`);
  }
  if (fromSelfcast.length > 0) {
    fail(`${fromSelfcast.length} request(s) for video went to selfcast's /hls/ instead of the bucket: `
      + fromSelfcast.slice(0, 5).map((r) => r.url).join(', '));
  }
  const fromBucket = byOrigin.bucket || {};
  const okIn = (kind) => (fromBucket[kind] ? fromBucket[kind].ok : 0);
  if (okIn('master playlist') < 1) fail(`no successful request for the master playlist to the bucket (${JSON.stringify(fromBucket)})`);
  if (okIn('media playlist') < 1) fail(`no successful request for a media playlist to the bucket (${JSON.stringify(fromBucket)})`);
  if (okIn('segment') < MIN_BUCKET_SEGMENTS) {
    fail(`only ${okIn('segment')} successful segment (.m4s) request(s) to the bucket; expected at least ${MIN_BUCKET_SEGMENTS} `
      + `(${JSON.stringify(fromBucket)})`);
  }
  if (state.streamUrl !== expectedHlsUrl) {
    fail(`the page plays ${JSON.stringify(state.streamUrl)}, not the bucket's ${expectedHlsUrl}`);
  }
  const bucketFailed = requests.filter((r) => r.url.startsWith(`${new URL(bucketUrl).origin}/`) && r.outcome === 'failed');
  if (bucketFailed.length > 0) {
    log(`note: ${bucketFailed.length} bucket request(s) failed (hls.js aborts some loads): `
      + bucketFailed.slice(0, 3).map((r) => `${r.url} ${r.failure}`).join(', '));
  }

  const live = await getStatus(base);
  ctx.lastStatus = live;
  timings.storage = live.storage;
  if (live.hlsUrl !== expectedHlsUrl || live.storage.state !== 'ok') {
    fail(`after playing, /api/status says hlsUrl ${live.hlsUrl}, storage.state ${live.storage.state} `
      + `(lastError ${JSON.stringify(live.storage.lastError)})`);
  }
}

async function diagnose() {
  const { serverLog, motoLog, ffmpegLog, browserLog } = ctx.artifacts;
  if (ctx.lastStatus) {
    console.log(`--- last /api/status storage ---\n${JSON.stringify(ctx.lastStatus.storage ?? null, null, 2)}`);
  }
  if (ctx.requests.length > 0 && ctx.base && ctx.bucketUrl) {
    fs.writeFileSync(path.join(ARTIFACTS, 'storage-requests.json'), JSON.stringify(ctx.requests, null, 2));
    console.log(`--- the page's requests (${ctx.requests.length}; all in artifacts/storage-requests.json) ---`);
    printSummary(summarize(ctx.requests, { base: ctx.base, bucketUrl: ctx.bucketUrl }));
    for (const r of ctx.requests.filter((x) => x.outcome !== 'finished' || x.status >= 400).slice(-10)) {
      console.log(`    ${r.outcome} ${r.status ?? '-'} ${r.failure ?? ''} ${r.url}`);
    }
  }
  if (ctx.bucketUrl) {
    for (const p of [`${PREFIX}/stream.m3u8`, `${PREFIX}/0/stream.m3u8`]) {
      const url = `${ctx.bucketUrl}/${p}`;
      try {
        const { status, body } = await fetchText(url);
        console.log(`--- GET ${url} → HTTP ${status} ---\n${body.slice(0, 1500)}`);
      } catch (err) {
        console.log(`--- GET ${url} failed: ${err.message}`);
      }
    }
  }
  await diagnoseAll({
    pages: [[null, ctx.page, 'storage-failure.png']],
    base: ctx.base,
    logs: [['server log', serverLog, 60], ['moto log', motoLog, 30], ['ffmpeg log', ffmpegLog, 20],
      ['browser log', browserLog, 30]],
  });
}

function pass() {
  const s = timings.storage || {};
  console.log('storage browser test:');
  console.log(`  moto start      → GET / answered         : ${timings.motoStart} ms`);
  console.log(`  server start    → /api/status answered  : ${timings.serverToStatus} ms`);
  console.log(`  publish start   → hlsUrl is the bucket   : ${timings.publishToServing} ms`);
  console.log(`  page open       → first "playing"        : ${timings.pageOpenToPlaying} ms`);
  console.log(`  first "playing" → currentTime +${ADVANCE_S} s     : ${timings.playingToAdvanced} ms`);
  console.log(`  storage: stored ${s.stored}, deleted ${s.deleted}, failures ${s.failures}, `
    + `putMs ${JSON.stringify(s.putMs)}, segmentListedMs ${JSON.stringify(s.segmentListedMs)}`);
  console.log('  requests the page made, by origin:');
  printSummary(timings.byOrigin);
  console.log(`  screenshot: ${path.relative(process.cwd(), path.join(ARTIFACTS, 'storage-playing.png'))}`);
}

await h.run(main, { pass, diagnose });
