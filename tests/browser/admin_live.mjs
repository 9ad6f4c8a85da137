#!/usr/bin/env node
// tests/browser/admin_live.mjs — the admin console (/admin) while the streamer is live: stream
// keys, stream health and chat moderation, with a real ffmpeg publish and a viewer's page:
//
//   ffmpeg ──RTMP (a key added in the console)──▶ selfcast ◀── / (viewer page, chat) ── viewer context
//                                                   ▲
//   owner context ── /admin (session cookie + X-CSRF-Token) ──┘
//   this script ── HTTP Basic admin API ──┘ (checks what is really stored)
//
// 1. Starts selfcast with a ladder of source + 240p + 1080p (the 1080p is skipped for a 720p
//    source) and a known admin password; the owner signs in. The config key says it comes from
//    config.toml and offers no Regenerate or Revoke.
// 2. Stream keys: "Add key" with a comment shows the new key in full; "Hide" masks it, "Show"
//    reveals it (the API's key), "Copy" puts it on the clipboard; "Edit comment" saves a new one.
// 3. ffmpeg publishes with the NEW key: its row says "in use", the publisher's address shows.
//    Stream health: live, the input's size, a non-zero frames-out for the source, the 1080p row
//    "skipped: ...", the preview image loaded; the Server box's CPU, memory and viewers chart.
// 4. Moderation: a viewer writes; the console's "Hide" removes it from the viewer's page,
//    "Show" brings it back (the open page, GET /api/chat, a reloaded page). Time out: the viewer's page says
//    until when. Make moderator / Remove moderator: the viewer's page and the API follow. Ban:
//    the viewer's page is removed and a message with its token is refused; Unban. IP bans: a
//    bad address is refused at the form; 127.0.0.1 banned through the form removes the viewer,
//    "Remove ban" lets it back. Chat off and on again.
// 5. Screenshots at 1280x800 and 375x812 (nothing wider than the phone's screen).
// 6. "Disconnect the publisher": the stream goes offline (console and /api/status), ffmpeg ends.
// 7. "Regenerate" gives the key a new value; "Revoke" (two clicks) removes it, and a publish with
//    it is refused (ffmpeg ends, the stream stays offline).
// Throughout: no script error on either page.
//
// Usage:   node tests/browser/admin_live.mjs [path/to/selfcast]
// Env:     SELFCAST_BIN, CHROMIUM, TEST_TIMEOUT_S (default 180)
// Output:  tests/browser/artifacts/: admin-live-desktop.png, admin-live-phone.png,
//          admin-live-server.log, admin-live-browser.log, admin-live-ffmpeg*.log
//          (admin-live-failure-*.png on failure)

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import {
  ARTIFACTS, CLIP_TESTSRC2, Harness, adminRequest, diagnose as diagnoseAll, ensureClip, fail,
  fetchText, findBinary, getStatus, launchBrowser, newPage, openPage, publish, requireTools, sleep,
  startServer,
} from './harness.mjs';

const h = new Harness({ tag: 'admin-live', label: 'admin console live browser test', timeoutS: 180 });
const log = (message) => h.log(message);
const results = [];
const ok = (line) => { results.push(line); log(`ok: ${line}`); };

const ADMIN_PASSWORD = `test-${randomBytes(8).toString('hex')}`;
const LADDER_TOML = `
[[video.variants]]
name = "source"
passthrough = true

[[video.variants]]
name = "240p"
height = 240
video_bitrate_kbps = 300
cpu_usage_level = 0

[[video.variants]]
name = "1080p"
height = 1080
video_bitrate_kbps = 5000

[admin]
password = ${JSON.stringify(ADMIN_PASSWORD)}
`;
const ctx = { base: null, owner: null, viewer: null, artifacts: {}, exits: [] };
const problems = [];   // script errors on any page

// ---- Helpers ----------------------------------------------------------------------------------

const admin = (method, p, body) => adminRequest(ctx.base, ADMIN_PASSWORD, method, p, body);

/** Wait until fn(arg) is truthy in the page; its value. Fails at the overall deadline with
 *  `what`. */
function waitFor(page, fn, arg, what) {
  return h.raceWith(page.waitForFunction(fn, arg, { timeout: 0, polling: 100 }).then((r) => r.jsonValue()),
    what, ctx.exits);
}

/** Wait until check() (in this script) resolves truthy, polling every 200 ms; its value. */
async function until(check, what) {
  return h.raceWith((async () => {
    for (;;) {
      const value = await check();
      if (value) return value;
      await sleep(200);
    }
  })(), what, ctx.exits);
}

function watchProblems(page, name) {
  page.on('pageerror', (err) => problems.push(`${name}: ${err.message}`));
}

/** A row of a console list (li) by its data-key, as a locator. */
const row = (list, key) => ctx.owner.locator(`#${list} > li[data-key="${key}"]`);
/** A button in such a row by its exact text. */
const rowButton = (list, key, name) => row(list, key).getByRole('button', { name, exact: true });

/** The text of a console element (by selector), '' if it is hidden. */
const shown = (selector) => ctx.owner.evaluate((s) => {
  const el = document.querySelector(s);
  return el && !el.hidden && !el.closest('[hidden]') ? el.textContent : '';
}, selector);

/** The viewer page's chat: connected, and the user's id. */
async function viewerConnected() {
  await waitFor(ctx.viewer, () => window.selfcastChat && window.selfcastChat.state === 'connected'
    && window.selfcastChat.me && !document.getElementById('chat-input').disabled,
  null, 'waiting for the viewer\'s chat to connect');
  return ctx.viewer.evaluate(() => window.selfcastChat.me.id);
}

async function viewerSends(text) {
  await ctx.viewer.fill('#chat-input', text);
  await ctx.viewer.press('#chat-input', 'Enter');
}

const viewerShowsMessage = (id) => ctx.viewer.evaluate((i) => !!document.querySelector(`#chat-messages [data-id="${CSS.escape(i)}"]`), id);

// ---- The test ---------------------------------------------------------------------------------

async function main() {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  for (const name of fs.readdirSync(ARTIFACTS).filter((f) => f.startsWith('admin-live'))) {
    fs.rmSync(path.join(ARTIFACTS, name), { force: true });
  }
  ctx.artifacts = {
    serverLog: path.join(ARTIFACTS, 'admin-live-server.log'),
    browserLog: path.join(ARTIFACTS, 'admin-live-browser.log'),
    ffmpegLog: path.join(ARTIFACTS, 'admin-live-ffmpeg.log'),
    refusedLog: path.join(ARTIFACTS, 'admin-live-ffmpeg-refused.log'),
  };
  fs.writeFileSync(ctx.artifacts.browserLog, '');
  const bin = findBinary();
  requireTools();
  const clip = ensureClip(h, CLIP_TESTSRC2);

  // -- 1. selfcast, the owner signed in --
  const started = await startServer(h, {
    bin, script: 'admin_live.mjs', logFile: ctx.artifacts.serverLog, extraToml: LADDER_TOML,
  });
  ctx.base = started.base;
  ctx.exits = [started.server.exited];
  const browser = await launchBrowser(h, ctx.exits);
  const { page: owner } = await newPage(browser, ctx.artifacts.browserLog, { viewport: { width: 1280, height: 800 } });
  ctx.owner = owner;
  watchProblems(owner, 'console');
  await owner.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: ctx.base });
  await h.raceWith(owner.goto(`${ctx.base}/admin`), 'opening /admin', ctx.exits);
  await owner.getByLabel('Password', { exact: true }).fill(ADMIN_PASSWORD);
  await owner.getByRole('button', { name: 'Sign in', exact: true }).click();
  await waitFor(owner, () => window.selfcastAdmin.state === 'signed-in'
    && document.querySelector('#keys-list > li[data-key="config"]'), null, 'waiting for the console and its key list');
  const configButtons = await row('keys-list', 'config').getByRole('button').allTextContents();
  const configSays = await row('keys-list', 'config').textContent();
  if (!/from config\.toml/.test(configSays) || configButtons.some((b) => /Regenerate|Revoke|Edit/.test(b))) {
    fail(`the config key says "${configSays}" with buttons ${JSON.stringify(configButtons)}`);
  }
  ok(`signed in; the config key says it comes from config.toml, buttons ${configButtons.join(', ')}`);

  // -- 2. A new key --
  await owner.getByLabel('Comment for a new key', { exact: true }).fill('guest');
  await owner.getByRole('button', { name: 'Add key', exact: true }).click();
  const stored = await until(async () => (await admin('GET', '/api/admin/streamkeys')).keys
    .find((k) => k.comment === 'guest'), 'waiting for the new key in the API');
  const { key: newKey } = await admin('POST', '/api/admin/streamkeys/reveal', { id: stored.id });
  await waitFor(owner, ({ id, key }) => {
    const li = document.querySelector(`#keys-list > li[data-key="${id}"]`);
    return li && li.querySelector('.key-value').textContent === key;
  }, { id: stored.id, key: newKey }, 'waiting for the console to show the new key in full');
  await rowButton('keys-list', stored.id, 'Hide').click();
  await waitFor(owner, ({ id, masked }) => document.querySelector(`#keys-list > li[data-key="${id}"] .key-value`).textContent === masked,
    { id: stored.id, masked: stored.masked }, 'waiting for "Hide" to mask the key');
  await rowButton('keys-list', stored.id, 'Show').click();
  await waitFor(owner, ({ id, key }) => document.querySelector(`#keys-list > li[data-key="${id}"] .key-value`).textContent === key,
    { id: stored.id, key: newKey }, 'waiting for "Show" to reveal the key');
  await rowButton('keys-list', stored.id, 'Copy').click();
  await waitFor(owner, (id) => /Copied/.test(document.querySelector(`#keys-list > li[data-key="${id}"] .key-status`).textContent),
    stored.id, 'waiting for "Copy" to say it copied');
  const clipboard = await owner.evaluate(() => navigator.clipboard.readText());
  if (clipboard !== newKey) fail(`the clipboard holds ${JSON.stringify(clipboard)}, not the new key`);
  await rowButton('keys-list', stored.id, 'Edit comment').click();
  await row('keys-list', stored.id).getByLabel('New comment', { exact: true }).fill('guest laptop');
  await rowButton('keys-list', stored.id, 'Save comment').click();
  await until(async () => (await admin('GET', '/api/admin/streamkeys')).keys
    .find((k) => k.id === stored.id && k.comment === 'guest laptop'), 'waiting for the new comment in the API');
  ok(`"Add key" showed the new key in full (${newKey.length} characters); Hide masked it (${stored.masked}), Show revealed it, Copy put it on the clipboard; the comment was edited`);

  // -- 3. Publishing with the new key; stream health --
  const rtmpBase = started.rtmpUrl.slice(0, started.rtmpUrl.lastIndexOf('/') + 1);
  const ffmpeg = publish(h, { clip, rtmpUrl: rtmpBase + newKey, logFile: ctx.artifacts.ffmpegLog, loop: true });
  ctx.exits = [started.server.exited, ffmpeg.exited];
  const inUse = await waitFor(owner, (id) => {
    const badge = document.querySelector(`#keys-list > li[data-key="${id}"] .key-in-use`);
    const publisher = document.getElementById('keys-publisher').textContent;
    return badge && !badge.hidden && /127\.0\.0\.1/.test(publisher) && publisher;
  }, stored.id, 'waiting for the new key to be "in use"');
  const health = await waitFor(owner, () => {
    const rows = [...document.querySelectorAll('#health-variant-rows > tr')].map((tr) => [...tr.children].map((c) => c.textContent));
    const source = rows.find((r) => r[0] === 'source');
    const img = document.getElementById('health-preview');
    const facts = {
      state: document.getElementById('health-state').textContent,
      size: document.getElementById('health-size').textContent,
      fps: document.getElementById('health-fps').textContent,
      publisher: document.getElementById('health-publisher').textContent,
      rows,
      preview: !img.hidden && img.naturalWidth,
    };
    return /^Live/.test(facts.state) && facts.size === '1280×720' && facts.publisher === '127.0.0.1'
      && /^\d+(\.\d+)? fps$/.test(facts.fps) && source && Number(source[2]) > 0 && facts.preview > 0 && facts;
  }, null, 'waiting for the health section to show the live input, frames out and the preview');
  const skipped = health.rows.find((r) => r[0] === '1080p');
  if (!skipped || !/^skipped: ./.test(skipped[6])) fail(`the 1080p row says ${JSON.stringify(skipped)}, expected "skipped: <why>"`);
  ok(`published with the new key: "${inUse}"; health: ${health.state} ${health.size} at ${health.fps} from ${health.publisher}, source frames out ${health.rows.find((r) => r[0] === 'source')[2]}, 1080p "${skipped[6]}", preview ${health.preview} px wide`);
  // The Server box: CPU and memory measured, and the viewers chart of this broadcast (the
  // server samples every 5 s: a point, then a line).
  const server = await waitFor(owner, () => {
    const facts = {
      cpu: document.getElementById('health-cpu').textContent,
      memory: document.getElementById('health-memory').textContent,
      note: document.getElementById('health-chart-note').textContent,
      line: document.querySelector('#health-chart polyline')?.getAttribute('points') || '',
    };
    return /^\d+\.\d % of \d+ cores?$/.test(facts.cpu) && /^\d+\.\d MiB$/.test(facts.memory)
      && /^Viewers since /.test(facts.note) && facts.line.split(' ').length >= 2 && facts;
  }, null, 'waiting for the Server box to show CPU, memory and the viewers chart');
  ok(`server: CPU ${server.cpu}, memory ${server.memory}; "${server.note}" (${server.line.split(' ').length} points)`);

  // -- 4. Moderation --
  await moderate(browser);

  // -- 5. Screenshots --
  await owner.screenshot({ path: path.join(ARTIFACTS, 'admin-live-desktop.png'), fullPage: true });
  await owner.setViewportSize({ width: 375, height: 812 });
  const phoneWidth = await waitFor(owner, () => document.documentElement.scrollWidth, null, 'measuring the console at 375 px');
  if (phoneWidth > 375) {
    const wide = await owner.evaluate(() => [...document.querySelectorAll('body *')]
      .filter((e) => e.getBoundingClientRect().right > 376).slice(0, 5).map((e) => `${e.tagName}#${e.id}.${e.className}`));
    fail(`at 375x812 the console is ${phoneWidth} px wide: ${wide.join(', ')}`);
  }
  await owner.screenshot({ path: path.join(ARTIFACTS, 'admin-live-phone.png'), fullPage: true });
  await owner.setViewportSize({ width: 1280, height: 800 });
  ok('screenshots at 1280x800 and 375x812 (nothing wider than the phone\'s screen)');

  // -- 6. Disconnect the publisher --
  await owner.getByRole('button', { name: 'Disconnect the publisher', exact: true }).click();
  ctx.exits = [started.server.exited];
  await waitFor(owner, () => /^Offline/.test(document.getElementById('health-state').textContent)
    && document.getElementById('keys-disconnect').hidden, null, 'waiting for the console to show the stream offline');
  const afterDisconnect = await getStatus(ctx.base);
  if (afterDisconnect.online) fail('/api/status still says online after "Disconnect the publisher"');
  const ffmpegEnded = await h.raceWith(ffmpeg.exited, 'waiting for ffmpeg to end after the disconnect', ctx.exits);
  ok(`"Disconnect the publisher": the console and /api/status say offline; ${ffmpegEnded}`);

  // -- 7. Regenerate, revoke, and a publish with the revoked key --
  await rowButton('keys-list', stored.id, 'Regenerate').click();
  await rowButton('keys-list', stored.id, 'Confirm regenerate').click();
  const regenerated = await waitFor(owner, ({ id, old }) => {
    const text = document.querySelector(`#keys-list > li[data-key="${id}"] .key-value`).textContent;
    return text.length === old.length && text !== old && text;
  }, { id: stored.id, old: newKey }, 'waiting for the regenerated key to show in full');
  const { key: apiKey } = await admin('POST', '/api/admin/streamkeys/reveal', { id: stored.id });
  if (apiKey !== regenerated) fail('the console shows another key than the API after Regenerate');
  await rowButton('keys-list', stored.id, 'Revoke').click();
  await rowButton('keys-list', stored.id, 'Confirm revoke').click();
  await waitFor(owner, (id) => !document.querySelector(`#keys-list > li[data-key="${id}"]`) && document.getElementById('keys-done').textContent,
    stored.id, 'waiting for the revoked key to leave the list');
  const left = (await admin('GET', '/api/admin/streamkeys')).keys.map((k) => k.id);
  if (left.includes(stored.id)) fail(`the API still lists the revoked key: ${JSON.stringify(left)}`);
  const refused = publish(h, { name: 'ffmpeg (revoked key)', clip, rtmpUrl: rtmpBase + regenerated, logFile: ctx.artifacts.refusedLog, seconds: 10 });
  const refusedEnded = await h.raceWith(refused.exited, 'waiting for a publish with the revoked key to end', [started.server.exited]);
  if (/code 0/.test(refusedEnded)) fail(`a publish with the revoked key ran to its end: ${refusedEnded}`);
  if ((await getStatus(ctx.base)).online) fail('the stream is online with a revoked key');
  ok(`Regenerate showed a new key (the API's); Revoke (two clicks) removed it; a publish with it was refused: ${refusedEnded}`);

  if (problems.length > 0) fail(`script errors: ${problems.join('; ')}`);
}

/** Step 4: the Chat section against a viewer's page. */
async function moderate(browser) {
  const owner = ctx.owner;
  const { page: viewer } = await newPage(browser, ctx.artifacts.browserLog);
  ctx.viewer = viewer;
  watchProblems(viewer, 'viewer');
  await openPage(h, viewer, ctx.base, ctx.exits);
  const userId = await viewerConnected();
  await viewerSends('hello from the viewer');
  const message = await waitFor(owner, () => {
    const li = [...document.querySelectorAll('#chat-message-list > li')]
      .find((m) => m.querySelector('.chat-message-body').textContent === 'hello from the viewer');
    return li && li.getAttribute('data-key');
  }, null, 'waiting for the console to show the viewer\'s message');
  await waitFor(viewer, (i) => !!document.querySelector(`#chat-messages [data-id="${CSS.escape(i)}"]`), message,
    'waiting for the viewer page to show its message');

  // Hide and Show.
  await rowButton('chat-message-list', message, 'Hide').click();
  await waitFor(viewer, (i) => !document.querySelector(`#chat-messages [data-id="${CSS.escape(i)}"]`), message,
    'waiting for the viewer page to drop the hidden message');
  await rowButton('chat-message-list', message, 'Show').click();
  await until(async () => JSON.parse((await fetchText(`${ctx.base}/api/chat`)).body).some((m) => m.id === message),
    'waiting for GET /api/chat to list the message again');
  await rowButton('chat-message-list', message, 'Hide').waitFor();
  await waitFor(viewer, (i) => !!document.querySelector(`#chat-messages [data-id="${CSS.escape(i)}"]`), message,
    'waiting for the open viewer page (not reloaded) to show the message again');
  await h.raceWith(viewer.reload(), 'reloading the viewer page', ctx.exits);
  await viewerConnected();
  await waitFor(viewer, (i) => !!document.querySelector(`#chat-messages [data-id="${CSS.escape(i)}"]`), message,
    'waiting for the reloaded viewer page to show the message again');
  ok('"Hide" removed the viewer\'s message from the viewer page; "Show" brought it back on the open page and after a reload');

  // Time out.
  await owner.getByLabel('Time-out length, minutes', { exact: true }).fill('2');
  await rowButton('chat-user-list', userId, 'Time out').click();
  const timedOut = await waitFor(viewer, () => {
    const e = document.getElementById('chat-error');
    return document.getElementById('chat-input').disabled && !e.hidden && /timed out until/.test(e.textContent) && e.textContent;
  }, null, 'waiting for the viewer page to say it is timed out');
  await waitFor(owner, (id) => /timed out until/.test(document.querySelector(`#chat-user-list > li[data-key="${id}"] .chat-user-timeout`).textContent),
    userId, 'waiting for the console to show the time-out');
  await rowButton('chat-user-list', userId, 'End time-out').click();
  await until(async () => (await admin('GET', '/api/admin/chat/clients')).some((c) => c.user.id === userId && !c.user.timedOutUntil),
    'waiting for the time-out to be lifted');
  ok(`"Time out" (2 minutes): the viewer page says "${timedOut}"; "End time-out" lifted it`);

  // Moderator.
  await rowButton('chat-user-list', userId, 'Make moderator').click();
  await waitFor(viewer, () => [...document.querySelectorAll('#chat-messages .chat-notice')]
    .some((n) => n.textContent.includes('You are now a moderator')), null, 'waiting for the viewer page to say it is a moderator');
  await rowButton('chat-user-list', userId, 'Remove moderator').click();
  await until(async () => (await admin('GET', '/api/admin/chat/users/moderators')).length === 0,
    'waiting for the moderator to be removed');
  await rowButton('chat-user-list', userId, 'Make moderator').waitFor();
  ok('"Make moderator": the viewer page says so; "Remove moderator": the API lists no moderator');

  // Ban: the page is removed, and the next message with the user's token is refused.
  await rowButton('chat-user-list', userId, 'Ban').click();
  await waitFor(viewer, () => window.selfcastChat.state === 'removed', null, 'waiting for the viewer page to be removed after Ban');
  const answer = await h.raceWith(viewer.evaluate(() => new Promise((resolve) => {
    const token = localStorage.getItem('selfcast.chat.accessToken');
    const ws = new WebSocket(`${location.origin.replace(/^http/, 'ws')}/ws?accessToken=${encodeURIComponent(token)}`);
    ws.onopen = () => ws.send(JSON.stringify({ type: 'CHAT', body: 'a banned user writes' }));
    ws.onmessage = (event) => {
      const type = JSON.parse(event.data).type;
      if (/^ERROR_/.test(type)) resolve(type);
    };
    ws.onclose = (event) => resolve(`closed ${event.code}`);
  })), 'a message with the banned user\'s token', ctx.exits);
  if (!/ERROR_USER_DISABLED|closed 1008/.test(answer)) fail(`a message with the banned user's token got ${answer}`);
  const kept = JSON.parse((await fetchText(`${ctx.base}/api/chat`)).body);
  if (kept.some((m) => m.body === 'a banned user writes')) fail('the banned user\'s message is in the history');
  await rowButton('chat-user-list', userId, 'Unban').click();
  await until(async () => (await admin('GET', '/api/admin/chat/users/disabled')).length === 0, 'waiting for Unban');
  ok(`"Ban": the viewer page was removed and a message with its token was refused (${answer}); "Unban" enabled it again`);

  // IP bans through the form.
  await h.raceWith(viewer.reload(), 'reloading the viewer page after Unban', ctx.exits);
  await viewerConnected();
  const banAddress = owner.getByLabel('Address to ban', { exact: true });
  await banAddress.fill('not an address');
  await owner.getByRole('button', { name: 'Ban address', exact: true }).click();
  const banRefused = await waitFor(owner, () => {
    const e = document.getElementById('chat-ban-error');
    return !e.hidden && e.textContent;
  }, null, 'waiting for the ban form to refuse a bad address');
  await banAddress.fill('127.0.0.1');
  await owner.getByRole('button', { name: 'Ban address', exact: true }).click();
  await waitFor(owner, () => !!document.querySelector('#chat-ban-list > li[data-key="127.0.0.1"]'), null,
    'waiting for the console to list the IP ban');
  await waitFor(viewer, () => window.selfcastChat.state === 'removed', null, 'waiting for the viewer page to be removed by the IP ban');
  await rowButton('chat-ban-list', '127.0.0.1', 'Remove ban').click();
  await waitFor(owner, () => !document.querySelector('#chat-ban-list > li'), null, 'waiting for the IP ban to leave the list');
  if ((await admin('GET', '/api/admin/chat/users/ipbans')).length !== 0) fail('the API still lists an IP ban');
  await h.raceWith(viewer.reload(), 'reloading the viewer page after removing the IP ban', ctx.exits);
  await viewerConnected();
  ok(`IP bans: a bad address refused at the form ("${banRefused}"); 127.0.0.1 banned through the form removed the viewer; "Remove ban" let it back`);

  // Chat off and on.
  await owner.getByRole('button', { name: 'Turn chat off', exact: true }).click();
  await until(async () => (await getStatus(ctx.base)).chatEnabled === false, 'waiting for chat to be off');
  await waitFor(owner, () => /Chat is off/.test(document.getElementById('chat-state').textContent), null, 'waiting for the console to say chat is off');
  await owner.getByRole('button', { name: 'Turn chat on', exact: true }).click();
  await until(async () => (await getStatus(ctx.base)).chatEnabled === true, 'waiting for chat to be on again');
  ok('"Turn chat off" / "Turn chat on": /api/status follows');
  await viewerSends('a last word');   // for the screenshots
  await waitFor(owner, () => [...document.querySelectorAll('#chat-message-list .chat-message-body')]
    .some((b) => b.textContent === 'a last word'), null, 'waiting for the console to show the last message');
  // The ban hid the user's messages (docs/API.md), and Unban leaves them hidden.
  await rowButton('chat-message-list', message, 'Show').waitFor();
  if (await viewerShowsMessage(message)) fail('the viewer page shows a message the ban hid');
  const usersSay = await shown(`#chat-user-list > li[data-key="${userId}"] .chat-user-where`);
  if (!/127\.0\.0\.1/.test(usersSay)) fail(`the console's user row says "${usersSay}", expected the address`);
}

async function diagnose() {
  if (ctx.owner && !ctx.owner.isClosed()) {
    const state = await ctx.owner.evaluate(() => ({
      state: window.selfcastAdmin && window.selfcastAdmin.state,
      banner: document.getElementById('admin-error').textContent,
      errors: [...document.querySelectorAll('.field-error')].filter((e) => !e.hidden).map((e) => `${e.id || e.className}: ${e.textContent}`),
      publisher: document.getElementById('keys-publisher').textContent,
      health: document.getElementById('health-state').textContent,
    })).catch((err) => `(cannot read the console: ${err.message})`);
    console.log(`--- the console ---\n${JSON.stringify(state, null, 2)}`);
  }
  if (problems.length > 0) console.log(`--- script errors ---\n${problems.join('\n')}`);
  await diagnoseAll({
    pages: [['console', ctx.owner, 'admin-live-failure-console.png'], ['viewer', ctx.viewer, 'admin-live-failure-viewer.png']]
      .filter(([, page]) => page && !page.isClosed()),
    base: ctx.base,
    logs: [['server log', ctx.artifacts.serverLog, 40], ['ffmpeg log', ctx.artifacts.ffmpegLog, 10],
      ['ffmpeg (revoked key) log', ctx.artifacts.refusedLog, 10], ['browser log', ctx.artifacts.browserLog, 30]],
  });
}

await h.run(main, {
  pass: () => {
    console.log('admin console live browser test checked:');
    for (const line of results) console.log(`  - ${line}`);
  },
  diagnose,
});
