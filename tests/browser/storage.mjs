#!/usr/bin/env node
// tests/browser/storage.mjs — with a `[storage]` that viewers fetch the video from, the viewer
// page plays it from there, not from selfcast. One script, two kinds (--kind):
//
//   s3 (default):
//   ffmpeg (as OBS) ──RTMP──▶ selfcast ──PUT──▶ moto (S3) ◀──GET (playlists, segments)── viewer page
//                                 ▲                                                     (hls.js)
//                                 └──────────── GET /api/status (hlsUrl) ───────────────────┘
//   ipfs:
//   ffmpeg (as OBS) ──RTMP──▶ selfcast ──add+pin──▶ IPFS node (RPC API)
//                              │  ▲                  IPFS gateway ◀──GET /ipfs/<cid> (segments)── viewer page
//                              │  └──── GET /api/status (hlsUrl), GET /hls-ipfs/*.m3u8 (playlists) ──┘ (hls.js)
//
// 1. Starts the storage on free loopback ports: s3: moto (an S3-compatible server, ci/lib.sh
//    ensure_moto) and a bucket; ipfs: a js-ipfs node (ci/lib.sh ensure_ipfs; init'd in a temp
//    repo with `--emptyRepo --profile test`, then `daemon --offline`, as tests/common/ipfs.rs
//    does), ready when POST /api/v0/version answers. Starts selfcast with `[storage] kind = "s3"`
//    (public-read objects, public_base_url = the bucket's URL, path_prefix = "live") or
//    `kind = "ipfs"` (api_url, gateway_url = the node's), and publishes the test clip in a loop
//    as play.mjs does.
// 2. Waits until /api/status says storage.state = "ok" and hlsUrl = <bucket>/live/stream.m3u8
//    (s3) or /hls-ipfs/stream.m3u8 (ipfs), then checks the playlists without a browser: s3: the
//    bucket's are readable anonymously and list absolute URLs in the bucket; ipfs: selfcast's
//    /hls-ipfs/ ones list every segment and init as <gateway>/ipfs/<cid>?filename=<name>, and
//    the gateway serves one of them cross-origin (Access-Control-Allow-Origin).
// 3. Opens the viewer page, records every request it makes, and waits until the video plays
//    (currentTime advances 3 s, no fatal hls.js error in window.selfcast.errors).
// 4. Checks the requests: the master playlist and a media playlist were fetched from where the
//    kind keeps them (s3: the bucket; ipfs: selfcast's /hls-ipfs/), and the init and at least 2
//    segments (.m4s; ipfs: ?filename=seg-….m4s) from the bucket's / the gateway's origin, and
//    succeeded (CORS included: the page's origin is selfcast's port); no request for video went
//    to selfcast's /hls/. Prints the counts per origin, saves artifacts/storage-<kind>-playing.png
//    and prints timings.
//
// Usage:   node tests/browser/storage.mjs [--kind s3|ipfs] [path/to/selfcast]
// Env:     SELFCAST_BIN, CHROMIUM, TEST_TIMEOUT_S (default 120), as in play.mjs;
//          SELFCAST_MOTO_VENV  moto's venv (default target/tools/moto-5.2.1, as ci/lib.sh)
//          SELFCAST_IPFS_DIR   js-ipfs (default target/tools/ipfs-0.66.1, as ci/lib.sh)
// Needs:   s3: moto: bash -c 'source ci/lib.sh && ensure_moto'; ipfs: js-ipfs:
//          bash -c 'source ci/lib.sh && ensure_ipfs' (ci/test installs both)
// Output:  tests/browser/artifacts/storage-<kind>-*: playing.png, server.log, ffmpeg.log,
//          browser.log, requests.json (every request the page made), moto.log (s3) or
//          ipfs.log + ipfs-init.log (ipfs) (and failure.png on failure)

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import {
  ARTIFACTS, checkHlsErrors, CLIP_TESTSRC2, Harness, REPO, TestFailure, diagnose as diagnoseAll, ensureClip, fail,
  fetchText, findBinary, freePort, getStatus, launchBrowser, newPage, openPage, publish,
  requireTools, sleep, startServer, tail,
} from './harness.mjs';

const ADVANCE_S = 3;              // how far playback must get
const MIN_SEGMENTS = 2;           // .m4s the page must have fetched from the storage's origin
const SERVING_WAIT_MS = 45000;    // publish → /api/status sends viewers to the storage
const MOTO_VERSION = '5.2.1';     // as ci/lib.sh
const IPFS_VERSION = '0.66.1';    // as ci/lib.sh
const PREFIX = 'live';            // s3: path_prefix

// ---- Arguments: --kind, then the binary (what harness.findBinary reads as argv[2]) ------------

function parseArgs() {
  let kind = 's3';
  const rest = [];
  const args = process.argv.slice(2);
  for (let i = 0; i < args.length; i += 1) {
    if (args[i] === '--kind') {
      kind = args[i + 1];
      i += 1;
    } else if (args[i].startsWith('--kind=')) {
      kind = args[i].slice('--kind='.length);
    } else {
      rest.push(args[i]);
    }
  }
  if (!['s3', 'ipfs'].includes(kind)) {
    console.error(`usage: node tests/browser/storage.mjs [--kind s3|ipfs] [path/to/selfcast] (unknown kind ${JSON.stringify(kind)})`);
    process.exit(2);
  }
  process.argv.splice(2, process.argv.length - 2, ...rest);
  return kind;
}

const KIND = parseArgs();
const artifact = (name) => path.join(ARTIFACTS, `storage-${KIND}-${name}`);

const h = new Harness({ tag: `storage ${KIND}`, label: `storage browser test (${KIND})`, timeoutS: 120 });
const log = (message) => h.log(message);

const timings = {};
const ctx = { base: null, storage: null, page: null, requests: [], lastStatus: null, artifacts: {} };

const playlistUris = (text) => text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
const mapUris = (text) => [...text.matchAll(/#EXT-X-MAP:URI="([^"]+)"/g)].map((m) => m[1]);

async function fetchOk(url, what) {
  const got = await fetchText(url);
  if (got.status !== 200) fail(`GET ${url} (${what}) answered HTTP ${got.status}: ${got.body.slice(0, 300)}`);
  return got.body;
}

// ---- The storages -----------------------------------------------------------------------------
//
// start(logs) starts the storage and returns what the rest of the test needs:
//   exits          the storage's processes' `exited` promises
//   startLine      [label, ms] for the timings
//   toml           the config's [storage] tables
//   where          where viewers are sent, in words ("the bucket")
//   videoLabel     what the summary calls the origin the video comes from
//   videoOrigin    the origin every segment and init must come from
//   videoUrl       a regex every segment/init URL must match
//   hlsUrl(base)   what /api/status must say
//   playlistPrefix(base)  the URL prefix every playlist the page fetches must have
//   precheck(base) checks the playlists (and the video's URLs) without a browser
//   diagnoseUrls(base)    playlists to print after a failure
//   logs           [name, file, lines] to print after a failure

function motoServerPath() {
  const venv = process.env.SELFCAST_MOTO_VENV || path.join(REPO, 'target', 'tools', `moto-${MOTO_VERSION}`);
  const bin = path.join(venv, 'bin', 'moto_server');
  if (!fs.existsSync(bin)) {
    fail(`moto not found at ${bin} (install it: bash -c 'source ci/lib.sh && ensure_moto', or set SELFCAST_MOTO_VENV)`);
  }
  return bin;
}

/** Polls `probe` (true when ready) every 100 ms until it says so; fails if a process exits first. */
function waitReady(probe, what, exits) {
  return h.raceWith((async () => {
    for (;;) {
      try {
        if (await probe()) return;
      } catch {
        // not listening yet
      }
      await sleep(100);
    }
  })(), what, exits);
}

/** s3: moto_server on a free port with one bucket. */
async function startS3() {
  const bin = motoServerPath();
  const motoLog = artifact('moto.log');
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  log(`starting ${bin} -H 127.0.0.1 -p ${port}`);
  const t0 = Date.now();
  const moto = h.startProcess('moto', bin, ['-H', '127.0.0.1', '-p', String(port)], motoLog);
  await waitReady(async () => (await fetchText(`${endpoint}/`)).status === 200, 'waiting for moto to answer GET /', [moto.exited]);
  const startMs = Date.now() - t0;

  const bucket = `selfcast-${randomBytes(4).toString('hex')}`;
  const created = await h.raceWith(fetch(`${endpoint}/${bucket}`, { method: 'PUT', signal: AbortSignal.timeout(5000) })
    .then(async (r) => ({ status: r.status, body: await r.text() })), `creating the bucket ${bucket}`, [moto.exited]);
  if (created.status !== 200) {
    fail(`moto answered HTTP ${created.status} to PUT /${bucket} (creating the bucket): ${created.body.slice(0, 300)}`);
  }
  log(`moto answers after ${startMs} ms; bucket ${bucket} created`);
  const bucketUrl = `${endpoint}/${bucket}`;
  const inBucket = `${bucketUrl}/${PREFIX}/`;

  return {
    exits: [moto.exited],
    startLine: ['moto start      → GET / answered', startMs],
    toml: [
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
    ].join('\n'),
    where: 'the bucket',
    videoLabel: 'bucket',
    videoOrigin: endpoint,
    videoUrl: new RegExp(`^${escapeRe(inBucket)}`),
    hlsUrl: () => `${inBucket}stream.m3u8`,
    playlistPrefix: () => inBucket,
    // The bucket's playlists: readable anonymously, absolute URLs in the bucket.
    async precheck() {
      const masterUrl = `${inBucket}stream.m3u8`;
      const master = await fetchOk(masterUrl, "the bucket's master playlist, anonymously");
      const variants = playlistUris(master);
      if (variants.length === 0) fail(`the bucket's master playlist lists no variant:\n${master}`);
      const outside = variants.filter((u) => !u.startsWith(inBucket));
      if (outside.length > 0) fail(`the bucket's master playlist lists URLs outside ${inBucket}: ${outside.join(', ')}`);
      const media = await fetchOk(variants[0], "the bucket's media playlist, anonymously");
      const listed = [...playlistUris(media), ...mapUris(media)];
      if (listed.length === 0 || listed.some((u) => !u.startsWith(inBucket))) {
        fail(`the bucket's media playlist ${variants[0]} should list only absolute URLs in the bucket:\n${media}`);
      }
      log(`bucket playlists: master lists ${variants.length} variant(s); ${variants[0]} lists `
        + `${playlistUris(media).length} segment(s), all absolute URLs in the bucket`);
    },
    diagnoseUrls: () => [`${inBucket}stream.m3u8`, `${inBucket}0/stream.m3u8`],
    logs: [['moto log', motoLog, 30]],
  };
}

function ipfsCliJs() {
  const dir = process.env.SELFCAST_IPFS_DIR || path.join(REPO, 'target', 'tools', `ipfs-${IPFS_VERSION}`);
  const cli = path.join(dir, 'node_modules', 'ipfs', 'src', 'cli.js');
  if (!fs.existsSync(cli)) {
    fail(`js-ipfs not found at ${cli} (install it: bash -c 'source ci/lib.sh && ensure_ipfs', or set SELFCAST_IPFS_DIR)`);
  }
  return cli;
}

/** ipfs: a js-ipfs node, offline, with a repo of its own and loopback addresses on free ports. */
async function startIpfs() {
  const cli = ipfsCliJs();
  const ipfsLog = artifact('ipfs.log');
  const initLog = artifact('ipfs-init.log');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'selfcast-storage-ipfs-'));
  h.onCleanup(async () => fs.rmSync(tmp, { recursive: true, force: true }));
  const ports = new Set();
  while (ports.size < 4) ports.add(await freePort());
  const [apiPort, gatewayPort, rpcPort, swarmPort] = [...ports];
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
  const repo = path.join(tmp, 'repo');
  const configFile = path.join(tmp, 'config.json');
  fs.writeFileSync(configFile, JSON.stringify({
    Addresses: {
      API: `/ip4/127.0.0.1/tcp/${apiPort}`,
      Gateway: `/ip4/127.0.0.1/tcp/${gatewayPort}`,
      RPC: `/ip4/127.0.0.1/tcp/${rpcPort}`,
      Swarm: [`/ip4/127.0.0.1/tcp/${swarmPort}`],
      Delegates: [],
    },
    Bootstrap: [],
    Discovery: { MDNS: { Enabled: false }, webRTCStar: { Enabled: false } },
  }));
  // `env` execs node, so the signals at cleanup reach the node itself.
  const ipfs = (name, args, logFile) => h.startProcess(name, 'env', [`IPFS_PATH=${repo}`, process.execPath, cli, ...args], logFile);

  const t0 = Date.now();
  log(`ipfs init (js-ipfs ${IPFS_VERSION}, repo ${repo})`);
  const init = ipfs('ipfs init', ['init', '--emptyRepo', '--profile', 'test', '--defaultConfig', configFile], initLog);
  const initEnd = await h.raceWith(init.exited, 'waiting for ipfs init', []);
  if (init.child.exitCode !== 0) fail(`${initEnd}:\n${tail(initLog, 30)}`);
  timings.ipfsInit = Date.now() - t0;

  log(`ipfs daemon --offline (api ${apiUrl}, gateway ${gatewayUrl})`);
  const daemon = ipfs('ipfs daemon', ['daemon', '--offline', '--enable-preload=false'], ipfsLog);
  // The RPC API takes POST only, and refuses requests with an Origin header (fetch sends none).
  await waitReady(async () => (await fetch(`${apiUrl}/api/v0/version`, { method: 'POST', signal: AbortSignal.timeout(2000) })).ok,
    "waiting for the IPFS node's API to answer POST /api/v0/version", [daemon.exited]);
  const startMs = Date.now() - t0;
  log(`the IPFS node answers after ${startMs} ms (init ${timings.ipfsInit} ms)`);

  const inSelfcast = (base) => `${base}/hls-ipfs/`;
  // CIDv1 in base32 ("b" + lowercase base32), then the file name for the extension.
  const gatewayFile = new RegExp(`^${escapeRe(gatewayUrl)}/ipfs/b[a-z2-7]+\\?filename=(seg-[\\w.-]+\\.m4s|init-[\\w.-]+\\.mp4)$`);
  return {
    exits: [daemon.exited],
    startLine: ['ipfs init       → API answers', startMs],
    toml: [
      '',
      '[storage]',
      'kind = "ipfs"',
      '',
      '[storage.ipfs]',
      `api_url = ${JSON.stringify(apiUrl)}`,
      `gateway_url = ${JSON.stringify(gatewayUrl)}`,
      '',
    ].join('\n'),
    where: "selfcast's /hls-ipfs/ (video from the gateway)",
    videoLabel: 'gateway',
    videoOrigin: gatewayUrl,
    videoUrl: gatewayFile,
    hlsUrl: () => '/hls-ipfs/stream.m3u8',
    playlistPrefix: inSelfcast,
    // selfcast's /hls-ipfs/ playlists: relative variants there, every file at the gateway; and
    // the gateway serves a listed file to another origin.
    async precheck(base) {
      const masterUrl = `${inSelfcast(base)}stream.m3u8`;
      const master = await fetchOk(masterUrl, 'the IPFS master playlist');
      const variants = playlistUris(master).map((u) => new URL(u, masterUrl).href);
      if (variants.length === 0) fail(`${masterUrl} lists no variant:\n${master}`);
      const outside = variants.filter((u) => !u.startsWith(inSelfcast(base)));
      if (outside.length > 0) fail(`${masterUrl} lists variants outside ${inSelfcast(base)}: ${outside.join(', ')}`);
      const media = await fetchOk(variants[0], 'an IPFS media playlist');
      const segments = playlistUris(media);
      const listed = [...mapUris(media), ...segments];
      if (segments.length === 0 || listed.some((u) => !gatewayFile.test(u))) {
        fail(`${variants[0]} should list every segment and init as ${gatewayUrl}/ipfs/<cid>?filename=<name>:\n${media}`);
      }
      const init = mapUris(media)[0];
      const origin = new URL(base).origin;
      const t = Date.now();
      // An unknown CID hangs at the gateway: a timeout, not a wait.
      const got = await h.raceWith(fetch(init, { headers: { Origin: origin }, signal: AbortSignal.timeout(10000) })
        .then(async (r) => ({ status: r.status, headers: r.headers, size: (await r.arrayBuffer()).byteLength })),
      `fetching ${init} from the gateway`, []);
      const acao = got.headers.get('access-control-allow-origin');
      if (got.status !== 200 || (acao !== origin && acao !== '*')) {
        fail(`GET ${init} with Origin ${origin} answered HTTP ${got.status}, Access-Control-Allow-Origin ${JSON.stringify(acao)}`);
      }
      log(`IPFS playlists: ${masterUrl} lists ${variants.length} variant(s); ${variants[0]} lists ${segments.length} `
        + `segment(s) + init, all at ${gatewayUrl}/ipfs/<cid>?filename=…; the gateway serves the init (${got.size} bytes, `
        + `Content-Type ${got.headers.get('content-type')}, Access-Control-Allow-Origin ${acao}) in ${Date.now() - t} ms`);
    },
    diagnoseUrls: (base) => [`${inSelfcast(base)}stream.m3u8`, `${inSelfcast(base)}0/stream.m3u8`],
    logs: [['ipfs log', ipfsLog, 30], ['ipfs init log', initLog, 10]],
  };
}

const STORAGES = { s3: startS3, ipfs: startIpfs };

function escapeRe(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// ---- The page's requests ----------------------------------------------------------------------

/** What a request is for, from its file name (`?filename=` for the gateway's /ipfs/<cid>) and path. */
function kindOf(url) {
  const p = url.pathname;
  const file = url.searchParams.get('filename') || p.slice(p.lastIndexOf('/') + 1);
  if (file.endsWith('.m4s')) return 'segment';
  if (/^init-.*\.mp4$/.test(file)) return 'init';
  if (/\/\d+\/stream\.m3u8$/.test(p)) return 'media playlist';
  if (p.endsWith('/stream.m3u8')) return 'master playlist';
  if (p.endsWith('.m3u8')) return 'other playlist';
  return 'other';
}

const isVideo = (kind) => kind === 'segment' || kind === 'init';
const isPlaylist = (kind) => kind.endsWith('playlist');
const succeeded = (r) => r.outcome === 'finished' && r.status >= 200 && r.status < 300;

/** Record every request the page makes: url, HTTP status, CORS header, finished or failed. */
function recordRequests(page) {
  const entries = new Map();
  page.on('request', (req) => {
    const entry = { url: req.url(), method: req.method(), resourceType: req.resourceType(), at: Date.now(),
      status: null, contentType: null, allowOrigin: null, outcome: 'pending', failure: null };
    entries.set(req, entry);
    ctx.requests.push(entry);
  });
  page.on('response', (res) => {
    const entry = entries.get(res.request());
    if (!entry) return;
    const headers = res.headers();
    entry.status = res.status();
    entry.contentType = headers['content-type'] ?? null;
    entry.allowOrigin = headers['access-control-allow-origin'] ?? null;
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

/** Where a request went: the storage's label, "selfcast /hls/", "selfcast /hls-ipfs/", "selfcast", or the origin. */
function whereOf(url, { base, storage }) {
  if (url.origin === storage.videoOrigin) return storage.videoLabel;
  if (url.origin === new URL(base).origin) {
    const top = url.pathname.split('/')[1];
    return top === 'hls' || top === 'hls-ipfs' ? `selfcast /${top}/` : 'selfcast';
  }
  return url.origin === 'null' ? url.protocol : url.origin;
}

/** The requests by where they went and kind. */
function summarize(requests, where) {
  const byOrigin = {};
  for (const r of requests) {
    let url;
    try {
      url = new URL(r.url);
    } catch {
      continue;
    }
    const origin = whereOf(url, where);
    const kind = kindOf(url);
    byOrigin[origin] ??= {};
    byOrigin[origin][kind] ??= { total: 0, ok: 0, failed: 0, pending: 0 };
    const c = byOrigin[origin][kind];
    c.total += 1;
    if (succeeded(r)) c.ok += 1;
    else if (r.outcome === 'pending') c.pending += 1;
    else c.failed += 1;
  }
  return byOrigin;
}

function printSummary(byOrigin) {
  for (const [origin, kinds] of Object.entries(byOrigin)) {
    const parts = Object.entries(kinds).map(([k, c]) =>
      `${k} ${c.ok}/${c.total} ok${c.failed ? `, ${c.failed} failed` : ''}${c.pending ? `, ${c.pending} pending` : ''}`);
    console.log(`    ${origin.padEnd(19)}: ${parts.join('; ')}`);
  }
}

/**
 * The page fetched the playlists from where the storage keeps them and the video (init and
 * ≥ MIN_SEGMENTS segments) from the storage's origin, successfully, and none of it from
 * selfcast's /hls/.
 */
function checkRequests(requests, { base, storage }) {
  const selfOrigin = new URL(base).origin;
  if (storage.videoOrigin === selfOrigin) fail(`the video's origin ${storage.videoOrigin} is the page's: CORS is not tested`);
  const all = requests.map((r) => ({ ...r, u: new URL(r.url), kind: kindOf(new URL(r.url)) }));

  // Video bandwidth must not come from selfcast: no segment or init, and nothing under /hls/.
  const fromSelfcast = all.filter((r) => r.u.origin === selfOrigin && (r.u.pathname.startsWith('/hls/') || isVideo(r.kind)));
  const selfVideo = fromSelfcast.filter((r) => isVideo(r.kind));
  if (selfVideo.length > 0) {
    fail(`${selfVideo.length} segment/init request(s) went to selfcast instead of the ${storage.videoLabel}, e.g. ${selfVideo[0].url}`);
  }
  if (fromSelfcast.length > 0) {
    fail(`${fromSelfcast.length} request(s) for video went to selfcast's /hls/ instead of ${storage.where}: `
      + fromSelfcast.slice(0, 5).map((r) => r.url).join(', '));
  }

  // Playlists: all from where the storage keeps them.
  const prefix = storage.playlistPrefix(base);
  const strayPlaylists = all.filter((r) => isPlaylist(r.kind) && !r.url.startsWith(prefix));
  if (strayPlaylists.length > 0) {
    fail(`${strayPlaylists.length} playlist request(s) outside ${prefix}, e.g. ${strayPlaylists[0].url}`);
  }
  const okPlaylists = (kind) => all.filter((r) => r.kind === kind && succeeded(r)).length;
  for (const kind of ['master playlist', 'media playlist']) {
    if (okPlaylists(kind) < 1) {
      fail(`no successful request for the ${kind} under ${prefix} (${JSON.stringify(summarize(requests, { base, storage }))})`);
    }
  }

  // Video: all from the storage's origin, in its URL shape; the init and ≥ MIN_SEGMENTS segments succeeded.
  const video = all.filter((r) => isVideo(r.kind));
  const stray = video.filter((r) => r.u.origin !== storage.videoOrigin || !storage.videoUrl.test(r.url));
  if (stray.length > 0) {
    fail(`${stray.length} segment/init request(s) not of the form ${storage.videoUrl.source}, e.g. ${stray[0].url}`);
  }
  const okVideo = (kind) => video.filter((r) => r.kind === kind && succeeded(r));
  const counts = JSON.stringify(summarize(requests, { base, storage })[storage.videoLabel] ?? {});
  if (okVideo('init').length < 1) fail(`no successful init request to the ${storage.videoLabel} (${counts})`);
  if (okVideo('segment').length < MIN_SEGMENTS) {
    fail(`only ${okVideo('segment').length} successful segment (.m4s) request(s) to the ${storage.videoLabel}; `
      + `expected at least ${MIN_SEGMENTS} (${counts})`);
  }
  const failed = video.filter((r) => r.outcome === 'failed');
  if (failed.length > 0) {
    log(`note: ${failed.length} ${storage.videoLabel} request(s) failed (hls.js aborts some loads): `
      + failed.slice(0, 3).map((r) => `${r.url} ${r.failure}`).join(', '));
  }
  const seen = (key) => [...new Set(okVideo('segment').map((r) => r[key]))].map((v) => JSON.stringify(v)).join(', ');
  log(`segments from the ${storage.videoLabel}: Content-Type ${seen('contentType')}, Access-Control-Allow-Origin ${seen('allowOrigin')} `
    + `(page origin ${selfOrigin})`);
}

// ---- The test ---------------------------------------------------------------------------------

async function main() {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  for (const name of fs.readdirSync(ARTIFACTS).filter((f) => f.startsWith(`storage-${KIND}-`))) {
    fs.rmSync(path.join(ARTIFACTS, name), { force: true });
  }
  const serverLog = artifact('server.log');
  const ffmpegLog = artifact('ffmpeg.log');
  const browserLog = artifact('browser.log');
  ctx.artifacts = { serverLog, ffmpegLog, browserLog };

  const bin = findBinary();
  requireTools();
  if (KIND === 's3') motoServerPath();
  else ipfsCliJs();
  const clip = ensureClip(h, CLIP_TESTSRC2);

  // -- The storage --
  const storage = await STORAGES[KIND]();
  ctx.storage = storage;

  // -- selfcast, storing there --
  const { base, rtmpUrl, rtmpPort, server, initial, serverToStatus } = await startServer(h, {
    bin, script: 'storage.mjs', logFile: serverLog, extraToml: storage.toml,
  });
  ctx.base = base;
  const expectedHlsUrl = storage.hlsUrl(base);
  timings.serverToStatus = serverToStatus;
  log(`/api/status answered after ${serverToStatus} ms: hlsUrl ${JSON.stringify(initial.hlsUrl)}, `
    + `storage ${JSON.stringify(initial.storage && { state: initial.storage.state, target: initial.storage.target })}`);
  if (!initial.storage || initial.storage.kind !== KIND) {
    fail(`/api/status has no storage of kind ${JSON.stringify(KIND)}: ${JSON.stringify(initial.storage)}`);
  }
  if (initial.hlsUrl !== '/hls/stream.m3u8') {
    fail(`/api/status hlsUrl is ${JSON.stringify(initial.hlsUrl)} before anything is stored; expected "/hls/stream.m3u8"`);
  }

  // -- Publish, as OBS would --
  log(`publishing ${path.basename(clip)} in a loop to rtmp://127.0.0.1:${rtmpPort}/live/<key>`);
  const publishStart = Date.now();
  const ffmpeg = publish(h, { clip, rtmpUrl, logFile: ffmpegLog, loop: true });
  const exits = [server.exited, ffmpeg.exited, ...storage.exits];

  // -- Wait until /api/status sends viewers to the storage --
  let lastLine = '';
  let lastKey = '';
  let lastLoggedAt = 0;
  const servingStatus = await h.raceWith((async () => {
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
    throw new TestFailure(`/api/status did not send viewers to ${storage.where} within ${SERVING_WAIT_MS / 1000} s of `
      + `publishing (expected hlsUrl ${expectedHlsUrl} and storage.state "ok"); last: ${lastLine}`);
  })(), `waiting for /api/status to send viewers to ${storage.where}`, exits);
  timings.publishToServing = Date.now() - publishStart;
  log(`viewers are sent to ${storage.where} ${timings.publishToServing} ms after publishing `
    + `(stored ${servingStatus.storage.stored}, putMs ${JSON.stringify(servingStatus.storage.putMs)})`);

  await storage.precheck(base);

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
  await page.screenshot({ path: artifact('playing.png') });

  // -- Where the page fetched video from --
  const requests = ctx.requests.slice();
  fs.writeFileSync(artifact('requests.json'), JSON.stringify(requests, null, 2));
  timings.byOrigin = summarize(requests, { base, storage });
  log(`requests by origin (${storage.videoLabel} ${storage.videoOrigin}, selfcast ${new URL(base).origin}):`);
  printSummary(timings.byOrigin);
  checkRequests(requests, { base, storage });
  if (state.streamUrl !== expectedHlsUrl) {
    fail(`the page plays ${JSON.stringify(state.streamUrl)}, not ${expectedHlsUrl}`);
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
  const { serverLog, ffmpegLog, browserLog } = ctx.artifacts;
  const { storage, base } = ctx;
  if (ctx.lastStatus) {
    console.log(`--- last /api/status storage ---\n${JSON.stringify(ctx.lastStatus.storage ?? null, null, 2)}`);
  }
  if (ctx.requests.length > 0 && base && storage) {
    fs.writeFileSync(artifact('requests.json'), JSON.stringify(ctx.requests, null, 2));
    console.log(`--- the page's requests (${ctx.requests.length}; all in ${path.relative(process.cwd(), artifact('requests.json'))}) ---`);
    printSummary(summarize(ctx.requests, { base, storage }));
    for (const r of ctx.requests.filter((x) => x.outcome !== 'finished' || x.status >= 400).slice(-10)) {
      console.log(`    ${r.outcome} ${r.status ?? '-'} ${r.failure ?? ''} ${r.url}`);
    }
  }
  if (storage && base) {
    for (const url of storage.diagnoseUrls(base)) {
      try {
        const { status, body } = await fetchText(url);
        console.log(`--- GET ${url} → HTTP ${status} ---\n${body.slice(0, 1500)}`);
      } catch (err) {
        console.log(`--- GET ${url} failed: ${err.message}`);
      }
    }
  }
  await diagnoseAll({
    pages: [[null, ctx.page, `storage-${KIND}-failure.png`]],
    base,
    logs: [['server log', serverLog, 60], ...(storage ? storage.logs : []), ['ffmpeg log', ffmpegLog, 20],
      ['browser log', browserLog, 30]],
  });
}

function pass() {
  const s = timings.storage || {};
  const line = (label, value) => console.log(`  ${label.padEnd(40)}: ${value}`);
  console.log(`storage browser test (${KIND}):`);
  line(ctx.storage.startLine[0], `${ctx.storage.startLine[1]} ms`);
  line('server start    → /api/status answered', `${timings.serverToStatus} ms`);
  line(`publish start   → hlsUrl is ${KIND === 's3' ? 'the bucket' : '/hls-ipfs/'}`, `${timings.publishToServing} ms`);
  line('page open       → first "playing"', `${timings.pageOpenToPlaying} ms`);
  line(`first "playing" → currentTime +${ADVANCE_S} s`, `${timings.playingToAdvanced} ms`);
  console.log(`  storage: stored ${s.stored}, deleted ${s.deleted}, failures ${s.failures}, `
    + `putMs ${JSON.stringify(s.putMs)}, segmentListedMs ${JSON.stringify(s.segmentListedMs)}`);
  console.log('  requests the page made, by origin:');
  printSummary(timings.byOrigin);
  console.log(`  screenshot: ${path.relative(process.cwd(), artifact('playing.png'))}`);
}

await h.run(main, { pass, diagnose });
