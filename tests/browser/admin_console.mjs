#!/usr/bin/env node
// tests/browser/admin_console.mjs — the admin console (/admin) as a streamer uses it, with a
// viewer watching in another browser:
//
//   owner context  ── /admin ──▶ selfcast ◀── / (the viewer page) ── viewer context
//        │  session cookie + X-CSRF-Token          ▲
//        └── a page on another origin (same browser, same cookie) tries the settings API
//   this script ── HTTP Basic admin API ──┘ (checks what is really stored)
//
// 1. Starts selfcast with `[server] title = "Config title"` (no publisher: the page is
//    offline); reads the generated password from <data_dir>/admin_password.
// 2. Signs in with a wrong password: the form says so and stays. Then with the right one: the
//    console shows, the title "from config.toml".
// 3. Sets the title, a summary with a link and markup in it, tags, the offline message, a social
//    link and custom CSS, and saves. The viewer page (opened before, never reloaded) shows each
//    one within LIVE_MS: the summary as text with the URL as a link (no element from the markup),
//    the tags, the link, the offline message in the player's overlay, the custom CSS applied.
//    The admin API has every value, each "console".
// 4. Bad input: a 101-character title saved together with a new summary, then a social link
//    with a javascript: URL: each shows an error at its field, and nothing is stored.
// 5. Reset on the title puts config.toml's title back (form, API, viewer page); Reset on the
//    custom CSS removes it from the viewer page.
// 5c. The images: a 64x32 PNG (made with ffmpeg) chosen in the console's Logo file input is
//    shown in the console ("64×32, N KiB") and, within LIVE_MS, beside the title on the viewer
//    page (not reloaded); a 320x180 JPEG as the Offline image shows in the viewer's offline
//    overlay, under the offline message. Refusals at the field, the images in use unchanged: a
//    text file named bad.png as the logo (400, the server's reason), a GIF as the offline image
//    (415, "Choose a PNG, JPEG or WebP image"), a file over 4 MiB (said before sending it). The
//    viewer's header with the logo still fits a phone's width.
// 6. A page on another origin in the owner's browser (so the owner's cookie goes along) posts to
//    /api/admin/settings/page (no-cors fetches typed and untyped, a CORS fetch with JSON, a
//    text/plain form) and tries to read the session's CSRF token: all refused, nothing stored.
// 7. Screenshots at 1280x800 and 390x844 (nothing wider than the phone's screen), and of the
//    viewer page with the logo and the offline image. Then "Remove" on the logo: the console
//    says "None", the API has none, /logo answers 404 and the viewer page's logo goes.
// 8. The password: a wrong current password is refused at its field; then changed; the API
//    takes the new one and refuses the old.
// 9. Sign out: the sign-in form comes back, and the old cookie is refused (401) afterwards.
// 10. The server restarts on the same data: the settings are still there (API, a reloaded
//    viewer page, the offline image in its overlay and still no logo), and the console signs in with the new password and shows them.
// 11. Wrong passwords in a row (a third browser context): the form says how long to wait, and
//    "Sign in" stays disabled meanwhile.
// Throughout: no script error and no Content-Security-Policy refusal on either page.
//
// Usage:   node tests/browser/admin_console.mjs [path/to/selfcast]
// Env:     SELFCAST_BIN, CHROMIUM, TEST_TIMEOUT_S (default 150)
// Output:  tests/browser/artifacts/: admin-desktop.png, admin-phone.png, admin-viewer.png,
//          admin-viewer-images.png, admin-slowed.png,
//          admin-server.log, admin-server-2.log, admin-browser.log (admin-failure-*.png on failure)

import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import {
  ARTIFACTS, CHROMIUM, Harness, adminRequest, diagnose as diagnoseAll, fail, fetchText,
  findBinary, launchBrowser, newPage, openPage, requireTool, restartServer, startOtherOrigin, startServer,
} from './harness.mjs';

const h = new Harness({ tag: 'admin', label: 'admin console browser test', timeoutS: 150 });
const log = (message) => h.log(message);
const results = [];
const ok = (line) => { results.push(line); log(`ok: ${line}`); };

const LIVE_MS = 15000;     // a viewer page shows a change within this (it polls every 3 s)
const CONFIG_TITLE = 'Config title';
const SET = {
  streamTitle: 'Console title ✓',
  summary: 'Watch <b>me</b> build it, notes at https://example.com/about.',
  tags: ['rust', 'live coding'],
  offlineMessage: 'Back tonight at 8',
  socialLinks: [{ platform: 'Mastodon', url: 'https://mastodon.example/@selfcast' }],
  customCss: '#stream-title { color: rgb(1, 2, 3); }',
};
const NEW_PASSWORD = `new-${randomBytes(8).toString('hex')}`;
const MAX_GUESSES = 12;    // the guard lets 5 wrong passwords through, then makes the next wait

const ctx = { base: null, password: null, owner: null, viewer: null, artifacts: {}, exits: [] };
const problems = [];   // script errors and CSP refusals, on any page

// ---- Helpers ----------------------------------------------------------------------------------

/** The admin API as a script uses it (HTTP Basic, the current password). */
const admin = (method, p, body) => adminRequest(ctx.base, ctx.password, method, p, body);
const storedPage = async () => (await admin('GET', '/api/admin/settings')).page;
const storedChat = async () => (await admin('GET', '/api/admin/settings')).chat;

/** Wait until fn(arg) is truthy in the page; its value. Fails after `ms` (default: the overall
 *  deadline) with `what` and what the page shows then. */
async function waitFor(page, fn, arg, what, ms = 0) {
  try {
    return await h.raceWith(page.waitForFunction(fn, arg, { timeout: ms, polling: 100 })
      .then((r) => r.jsonValue()), what, ctx.exits);
  } catch (err) {
    if (err.name !== 'TimeoutError') throw err;
    fail(`${what}: not within ${ms / 1000} s`);
  }
}

/** Record script errors and CSP refusals of a page. */
function watchProblems(page, name) {
  page.on('pageerror', (err) => problems.push(`${name}: ${err.message}`));
  page.on('console', (msg) => {
    if (/Content Security Policy/i.test(msg.text())) problems.push(`${name}: ${msg.text()}`);
  });
}

function checkNoProblems(when) {
  if (problems.length > 0) fail(`script errors or CSP refusals ${when}: ${problems.join('; ')}`);
}

const visible = (page, selector) => page.evaluate((s) => {
  const el = document.querySelector(s);
  return !!el && !el.closest('[hidden]') && el.getClientRects().length > 0;
}, selector);

/** Wait for the sign-in form or the console, whichever `view` says. */
function waitView(page, view, what) {
  return waitFor(page, (v) => window.selfcastAdmin && window.selfcastAdmin.state === v
    && !document.getElementById(v === 'signed-in' ? 'console' : 'sign-in').hidden
    && (v !== 'signed-in' || window.selfcastAdmin.page !== null), view, what);
}

async function signIn(page, password) {
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
}

/** A settings form's status line (form ids "page-...", "chatset-...") after a Save or Reset:
 *  wait until it is not "Saving…". */
function waitSaved(page, what, prefix = 'page') {
  return waitFor(page, (p) => {
    const text = document.getElementById(`${p}-status`).textContent;
    return text !== '' && text !== 'Saving…' && !document.getElementById(`${p}-save`).disabled && text;
  }, prefix, what);
}

async function fillPage(page, values) {
  for (const [key, value] of Object.entries(values)) {
    if (key === 'socialLinks') {
      for (const [i, link] of value.entries()) {
        if (await page.locator('#social-rows > li').count() <= i) await page.click('#social-add');
        await page.getByLabel(`Platform of link ${i + 1}`, { exact: true }).fill(link.platform);
        await page.getByLabel(`URL of link ${i + 1}`, { exact: true }).fill(link.url);
      }
    } else {
      await page.locator(`#page-${key}`).fill(key === 'tags' ? value.join(', ') : value);
    }
  }
}

const save = (page, form = '#page-form') => page.locator(form).getByRole('button', { name: 'Save', exact: true }).click();

/** What the viewer page shows of the page settings. */
function viewerShows(page) {
  return page.evaluate(() => {
    const summary = document.getElementById('stream-summary');
    return {
      title: document.getElementById('stream-title').textContent,
      titleColor: getComputedStyle(document.getElementById('stream-title')).color,
      summary: summary.hidden ? null : summary.textContent,
      summaryElements: [...summary.querySelectorAll('*')].map((e) => e.outerHTML),
      tags: [...document.querySelectorAll('#stream-tags li')].map((li) => li.textContent),
      links: [...document.querySelectorAll('#social-links a')].map((a) => ({ text: a.textContent, href: a.href })),
      overlay: document.getElementById('overlay').hidden ? null : document.getElementById('overlay-text').textContent,
      customStyles: document.getElementById('custom-styles').getAttribute('href'),
    };
  });
}

/** Sources and values as the console form shows them. */
function consoleShows(page) {
  return page.evaluate(() => Object.fromEntries(['streamTitle', 'summary', 'tags', 'offlineMessage', 'socialLinks', 'customCss']
    .map((key) => [key, {
      source: document.getElementById(`page-${key}-source`).textContent,
      reset: !document.querySelector(`[data-reset="${key}"]`).hidden,
      error: document.getElementById(`page-${key}-error`).hidden ? null : document.getElementById(`page-${key}-error`).textContent,
    }])));
}

function same(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

// ---- The test ---------------------------------------------------------------------------------

async function main() {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  for (const name of ['admin-desktop.png', 'admin-phone.png', 'admin-viewer.png', 'admin-viewer-images.png', 'admin-slowed.png', 'admin-server-2.log']) {
    fs.rmSync(path.join(ARTIFACTS, name), { force: true });
  }
  const serverLog = path.join(ARTIFACTS, 'admin-server.log');
  const browserLog = path.join(ARTIFACTS, 'admin-browser.log');
  fs.writeFileSync(browserLog, '');
  ctx.artifacts = { serverLog, browserLog };

  const bin = findBinary();
  requireTool('ffmpeg');
  const images = makeImages();
  if (!fs.existsSync(CHROMIUM)) fail(`chromium not found at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM)`);

  // -- 1. selfcast --
  let started = await startServer(h, {
    bin, script: 'admin_console.mjs', logFile: serverLog, serverToml: `title = ${JSON.stringify(CONFIG_TITLE)}`,
  });
  ctx.base = started.base;
  ctx.exits = [started.server.exited];
  const passwordFile = path.join(started.dataDir, 'admin_password');
  if (!fs.existsSync(passwordFile)) fail(`no generated admin password at ${passwordFile}`);
  ctx.password = fs.readFileSync(passwordFile, 'utf8').trim();
  const firstPassword = ctx.password;
  ok(`selfcast at ${ctx.base}; the admin password is in ${path.relative(path.dirname(started.configPath), passwordFile)}`);

  const browser = await launchBrowser(h, ctx.exits);
  const { page: viewer } = await newPage(browser, browserLog);
  ctx.viewer = viewer;
  watchProblems(viewer, 'viewer');
  await openPage(h, viewer, ctx.base, ctx.exits);
  await waitFor(viewer, (t) => document.getElementById('stream-title').textContent === t
    && window.selfcast.state === 'offline', CONFIG_TITLE, 'waiting for the viewer page to show config.toml\'s title, offline');
  await viewer.evaluate(() => { window.__sameDocument = true; });   // gone if the page reloads

  // -- 2. Signing in --
  const { page: owner } = await newPage(browser, browserLog, { viewport: { width: 1280, height: 800 } });
  ctx.owner = owner;
  watchProblems(owner, 'console');
  const response = await h.raceWith(owner.goto(`${ctx.base}/admin`), 'opening /admin', ctx.exits);
  if (!response || response.status() !== 200) fail(`GET /admin answered ${response ? 'HTTP ' + response.status() : 'nothing'}`);
  await waitView(owner, 'signed-out', 'waiting for the sign-in form');

  await signIn(owner, `${ctx.password}-wrong`);
  const wrong = await waitFor(owner, () => {
    const error = document.getElementById('sign-in-error');
    return !error.hidden && error.textContent !== '' && error.textContent;
  }, null, 'waiting for the sign-in form to say the password is wrong');
  if (!(await visible(owner, '#sign-in-password')) || (await visible(owner, '#console'))) {
    fail('after a wrong password the sign-in form is gone or the console shows');
  }
  ok(`a wrong password: the form says "${wrong}" and stays`);

  await signIn(owner, ctx.password);
  await waitView(owner, 'signed-in', 'waiting for the console after signing in with the right password');
  const initial = await consoleShows(owner);
  if (initial.streamTitle.source !== 'from config.toml' || initial.streamTitle.reset) {
    fail(`the title's source says "${initial.streamTitle.source}" (Reset shown: ${initial.streamTitle.reset}), expected "from config.toml" without Reset`);
  }
  const titleShown = await owner.inputValue('#page-streamTitle');
  if (titleShown !== CONFIG_TITLE) fail(`the console shows the title "${titleShown}", expected "${CONFIG_TITLE}"`);
  const sessionCookie = async () => (await owner.context().cookies(ctx.base)).find((c) => c.name === 'selfcast_admin');
  const cookie = await sessionCookie();
  if (!cookie || !cookie.httpOnly || cookie.sameSite !== 'Strict') {
    fail(`the session cookie is not there or not HttpOnly + SameSite=Strict: ${JSON.stringify(await owner.context().cookies())}`);
  }
  ok(`the right password: the console shows, the title "${CONFIG_TITLE}" from config.toml; cookie HttpOnly, SameSite=Strict`);

  // -- 3. Every page setting, live on the viewer page --
  await fillPage(owner, SET);
  await save(owner);
  const saved = await waitSaved(owner, 'waiting for Save to finish');
  const afterSave = await consoleShows(owner);
  const notHere = Object.entries(afterSave).filter(([, f]) => f.source !== 'set here' || !f.reset || f.error);
  if (notHere.length > 0) fail(`after Save ("${saved}") these fields do not say "set here" with a Reset: ${JSON.stringify(notHere)}`);
  const stored = await storedPage();
  for (const [key, value] of Object.entries(SET)) {
    if (!same(stored.values[key], value) || stored.sources[key] !== 'console') {
      fail(`stored ${key}: ${JSON.stringify(stored.values[key])} (${stored.sources[key]}), expected ${JSON.stringify(value)} (console)`);
    }
  }
  ok(`Save ("${saved}"): the API has all six values, each "console"; the form says "set here" with Reset`);

  const savedAt = Date.now();
  const checks = [
    ['the title', (s) => document.getElementById('stream-title').textContent === s.streamTitle && document.title === s.streamTitle],
    ['the summary with its link', (s) => {
      const p = document.getElementById('stream-summary');
      const a = p.querySelector('a');
      return !p.hidden && p.textContent === s.summary && a && a.href === 'https://example.com/about'
        && a.textContent === 'https://example.com/about' && a.rel === 'noopener nofollow ugc' && a.target === '_blank';
    }],
    ['the tags', (s) => JSON.stringify([...document.querySelectorAll('#stream-tags li')].map((li) => li.textContent))
      === JSON.stringify(s.tags)],
    ['the social link', (s) => {
      const links = [...document.querySelectorAll('#social-links a')];
      return links.length === 1 && links[0].textContent === s.socialLinks[0].platform && links[0].href === s.socialLinks[0].url;
    }],
    ['the offline message in the overlay', (s) => !document.getElementById('overlay').hidden
      && document.getElementById('overlay-text').textContent === s.offlineMessage],
    ['the custom CSS', () => getComputedStyle(document.getElementById('stream-title')).color === 'rgb(1, 2, 3)'],
  ];
  const seenAfter = [];
  for (const [what, fn] of checks) {
    await waitFor(viewer, fn, SET, `waiting for the viewer page to show ${what}`, LIVE_MS).catch(async (err) => {
      log(`the viewer page shows: ${JSON.stringify(await viewerShows(viewer))}`);
      throw err;
    });
    seenAfter.push(`${what} ${Date.now() - savedAt} ms`);
  }
  const shows = await viewerShows(viewer);
  if (shows.summaryElements.length !== 1) fail(`the summary made elements other than its one link: ${shows.summaryElements.join(' ')}`);
  if (!(await viewer.evaluate(() => window.__sameDocument === true))) fail('the viewer page reloaded');
  await viewer.screenshot({ path: path.join(ARTIFACTS, 'admin-viewer.png') });
  checkNoProblems('after saving');
  ok(`the viewer page (not reloaded) shows, after Save: ${seenAfter.join(', ')}; the summary's <b> is text, its URL a link (rel noopener nofollow ugc); custom styles ${shows.customStyles}`);

  // -- 4. Bad input: an error at the field, nothing stored --
  await fillPage(owner, { streamTitle: 'x'.repeat(101), summary: 'this must not be stored' });
  await save(owner);
  await waitSaved(owner, 'waiting for Save (a 101-character title) to finish');
  let shown = await consoleShows(owner);
  if (!shown.streamTitle.error) fail(`a 101-character title: no error at the title field (status "${await owner.textContent('#page-status')}")`);
  const elsewhere = Object.entries(shown).filter(([key, f]) => key !== 'streamTitle' && f.error);
  if (elsewhere.length > 0) fail(`a 101-character title: errors at other fields: ${JSON.stringify(elsewhere)}`);
  if (!(await visible(owner, '#page-streamTitle-error'))) fail('the title\'s error is not visible');
  let now = await storedPage();
  if (now.values.streamTitle !== SET.streamTitle || now.values.summary !== SET.summary) {
    fail(`a refused save stored something: title ${JSON.stringify(now.values.streamTitle)}, summary ${JSON.stringify(now.values.summary)}`);
  }
  const titleError = shown.streamTitle.error;
  await fillPage(owner, { streamTitle: SET.streamTitle, summary: SET.summary });

  await fillPage(owner, { socialLinks: [{ platform: 'Evil', url: 'javascript:alert(1)' }] });
  await save(owner);
  await waitSaved(owner, 'waiting for Save (a javascript: link) to finish');
  shown = await consoleShows(owner);
  if (!shown.socialLinks.error) fail(`a javascript: link: no error at the social links (status "${await owner.textContent('#page-status')}")`);
  now = await storedPage();
  if (!same(now.values.socialLinks, SET.socialLinks)) fail(`a refused link was stored: ${JSON.stringify(now.values.socialLinks)}`);
  ok(`bad input refused at its field, nothing stored: 101-character title "${titleError}" (the summary sent with it not stored either); javascript: link "${shown.socialLinks.error}"`);
  await fillPage(owner, { socialLinks: SET.socialLinks });

  // -- 5. Reset --
  await owner.getByRole('button', { name: 'Reset Stream title', exact: true }).click();
  const resetSaid = await waitSaved(owner, 'waiting for Reset to finish');
  await waitFor(owner, (t) => document.getElementById('page-streamTitle').value === t
    && document.getElementById('page-streamTitle-source').textContent === 'from config.toml'
    && document.querySelector('[data-reset="streamTitle"]').hidden, CONFIG_TITLE,
  'waiting for the console to show config.toml\'s title after Reset');
  now = await storedPage();
  if (now.values.streamTitle !== CONFIG_TITLE || now.sources.streamTitle !== 'config') {
    fail(`after Reset the API says ${JSON.stringify(now.values.streamTitle)} (${now.sources.streamTitle}), expected "${CONFIG_TITLE}" (config)`);
  }
  const resetAt = Date.now();
  await waitFor(viewer, (t) => document.getElementById('stream-title').textContent === t, CONFIG_TITLE,
    'waiting for the viewer page to show config.toml\'s title after Reset', LIVE_MS);
  ok(`Reset ("${resetSaid}"): the title is config.toml's again in the form, the API (source config) and the viewer page (${Date.now() - resetAt} ms)`);

  // Reset on the custom CSS: none any more, and the viewer page drops it.
  await owner.getByRole('button', { name: 'Reset Custom CSS', exact: true }).click();
  await waitSaved(owner, 'waiting for Reset (custom CSS) to finish');
  await waitFor(owner, () => document.getElementById('page-customCss').value === ''
    && document.getElementById('page-customCss-source').textContent === 'default', null,
  'waiting for the console to show no custom CSS (default) after Reset');
  await waitFor(viewer, () => getComputedStyle(document.getElementById('stream-title')).color !== 'rgb(1, 2, 3)', null,
    'waiting for the viewer page to drop the custom CSS after Reset', LIVE_MS);
  ok('Reset on the custom CSS: the console says "default", the viewer page no longer applies it');

  // -- 5b. Chat settings: saved, refused at the field, reset --
  await chatSettings(owner);

  // -- 5c. The logo and the offline image --
  await pageImages(owner, viewer, images);

  // -- 6. Another origin, in the owner's browser --
  await crossOrigin(owner);

  // -- 7. Screenshots --
  await owner.screenshot({ path: path.join(ARTIFACTS, 'admin-desktop.png'), fullPage: true });
  await owner.setViewportSize({ width: 390, height: 844 });
  const phone = await owner.evaluate(() => ({
    width: document.documentElement.scrollWidth,
    save: document.getElementById('page-save').getBoundingClientRect().right,
  }));
  if (phone.width > 390 || phone.save > 390) fail(`at 390x844 the console is ${phone.width} px wide (Save ends at ${phone.save} px)`);
  await owner.screenshot({ path: path.join(ARTIFACTS, 'admin-phone.png'), fullPage: true });
  await owner.setViewportSize({ width: 1280, height: 800 });
  await viewer.screenshot({ path: path.join(ARTIFACTS, 'admin-viewer-images.png') });
  ok('screenshots at 1280x800 and 390x844 (nothing wider than the phone\'s screen, the images\' fields included), the viewer page with the logo and offline image');

  // -- 7b. Remove the logo --
  await removeLogo(owner, viewer);

  // -- 8. The password --
  await changePassword(owner, firstPassword);

  // -- 9. Sign out --
  const sessionWith = async (value) => (await fetch(`${ctx.base}/api/admin/session`, {
    headers: { cookie: `selfcast_admin=${value}` }, signal: AbortSignal.timeout(5000),
  })).status;
  const { value: oldCookie } = await sessionCookie();
  const before = await sessionWith(oldCookie);
  if (before !== 200) fail(`GET /api/admin/session with the owner's cookie answered ${before} before signing out`);
  await owner.getByRole('button', { name: 'Sign out', exact: true }).click();
  await waitView(owner, 'signed-out', 'waiting for the sign-in form after Sign out');
  const after = await sessionWith(oldCookie);
  if (after !== 401) fail(`GET /api/admin/session with the old cookie answered ${after} after signing out, expected 401`);
  await h.raceWith(owner.reload(), 'reloading /admin', ctx.exits);
  await waitView(owner, 'signed-out', 'waiting for the sign-in form after reloading /admin');
  ok('Sign out: the sign-in form is back (also after a reload); the old cookie: 200 before, 401 after');
  checkNoProblems('in the console');

  // -- 10. Restart on the same data --
  ctx.exits = [];   // its exit is expected now
  started = await restartServer(h, started, path.join(ARTIFACTS, 'admin-server-2.log'));
  ctx.exits = [started.server.exited];
  now = await storedPage();
  const expected = { ...SET, streamTitle: CONFIG_TITLE, customCss: '' };
  for (const [key, value] of Object.entries(expected)) {
    if (!same(now.values[key], value)) fail(`after the restart ${key} is ${JSON.stringify(now.values[key])}, expected ${JSON.stringify(value)}`);
  }
  const { body } = await fetchText(`${ctx.base}/api/config`);
  const config = JSON.parse(body);
  if (config.summary !== SET.summary || !same(config.socialHandles, SET.socialLinks)) fail(`after the restart /api/config says ${body}`);
  await h.raceWith(viewer.reload(), 'reloading the viewer page', ctx.exits);
  await waitFor(viewer, (s) => document.getElementById('stream-summary').textContent === s.summary
    && document.getElementById('overlay-text').textContent === s.offlineMessage, SET,
  'waiting for the reloaded viewer page to show the summary and offline message after the restart', LIVE_MS);
  if (config.logoUrl !== null || typeof config.offlineImageUrl !== 'string') fail(`after the restart /api/config has logoUrl ${config.logoUrl}, offlineImageUrl ${config.offlineImageUrl}`);
  await waitFor(viewer, (url) => {
    const img = document.getElementById('overlay-image');
    return !img.hidden && img.complete && img.naturalWidth === 320 && img.getAttribute('src') === url
      && document.getElementById('stream-logo').hidden;
  }, config.offlineImageUrl, 'waiting for the reloaded viewer page to show the offline image (and no logo) after the restart', LIVE_MS);
  await signIn(owner, NEW_PASSWORD);
  await waitView(owner, 'signed-in', 'waiting for the console after signing in with the new password (after the restart)');
  const summaryShown = await owner.inputValue('#page-summary');
  if (summaryShown !== SET.summary) fail(`after the restart the console shows the summary ${JSON.stringify(summaryShown)}`);
  const chat = await storedChat();
  if (chat.values.slowModeSeconds !== 30 || await owner.inputValue('#chatset-slowModeSeconds') !== '30') {
    fail(`after the restart slow mode is ${chat.values.slowModeSeconds} (form: ${await owner.inputValue('#chatset-slowModeSeconds')}), expected 30`);
  }
  checkNoProblems('after the restart');
  ok('after a restart on the same data: the settings (API, /api/config, a reloaded viewer page: the offline image in its overlay, still no logo) and the new password are still there');

  // -- 11. Guessing: the form says how long to wait --
  const { page: guesser } = await newPage(browser, browserLog, { viewport: { width: 390, height: 844 } });
  watchProblems(guesser, 'guesser');
  await h.raceWith(guesser.goto(`${ctx.base}/admin`), 'opening /admin for guessing', ctx.exits);
  await waitView(guesser, 'signed-out', 'waiting for the sign-in form (guessing)');
  let slowed = null;
  for (let attempt = 1; attempt <= MAX_GUESSES && slowed === null; attempt++) {
    await signIn(guesser, `guess-${attempt}`);   // (submitting empties the error line first)
    const said = await waitFor(guesser, () => {
      const error = document.getElementById('sign-in-error');
      return !error.hidden && error.textContent !== '' && error.textContent;
    }, null, `waiting for the answer to guess ${attempt}`);
    if (/try again in \d+ (second|minute)/i.test(said)) {
      slowed = { attempt, said, disabled: await guesser.isDisabled('#sign-in-button') };
    }
  }
  if (slowed === null) fail(`${MAX_GUESSES} wrong passwords in a row and the form never said to wait`);
  if (!slowed.disabled) fail(`the form says "${slowed.said}" but "Sign in" is not disabled`);
  await guesser.screenshot({ path: path.join(ARTIFACTS, 'admin-slowed.png') });
  checkNoProblems('while guessing');
  ok(`guessing: wrong password ${slowed.attempt} was answered "${slowed.said}", "Sign in" disabled meanwhile`);
}

/** The test images, made with ffmpeg in a temp dir (removed at the end): logo.png 64x32,
 *  offline.jpg 320x180, bad.png (text), anim.gif (a real GIF: a type the server does not take). */
function makeImages() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'selfcast-admin-images-'));
  h.onCleanup(async () => fs.rmSync(dir, { recursive: true, force: true }));
  const made = {};
  for (const [name, size] of [['logo.png', '64x32'], ['offline.jpg', '320x180'], ['anim.gif', '32x32']]) {
    const file = path.join(dir, name);
    const run = spawnSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', `testsrc2=size=${size}`, '-frames:v', '1', '-update', '1', file],
      { encoding: 'utf8', timeout: 20000 });
    if (run.status !== 0 || !fs.existsSync(file)) fail(`ffmpeg could not make ${name}: ${run.error ? run.error.message : run.stderr}`);
    made[name] = file;
  }
  made['bad.png'] = path.join(dir, 'bad.png');
  fs.writeFileSync(made['bad.png'], 'this is text, not a PNG\n');
  return made;
}

const storedImages = async () => (await admin('GET', '/api/admin/settings')).images;

/** An image field of the console (slot "logo" or "offline"): the preview, its size text, Remove,
 *  the error and status lines. */
function imageFieldShows(page, slot) {
  return page.evaluate((s) => {
    const part = (name) => document.getElementById(`page-${s}${name ? '-' + name : ''}`);
    const preview = part('preview');
    const error = part('error');
    return {
      src: preview.hidden ? null : preview.getAttribute('src'),
      loadedWidth: !preview.hidden && preview.complete ? preview.naturalWidth : 0,
      info: part('info').textContent,
      remove: !part('remove').hidden,
      error: error.hidden ? null : error.textContent,
      invalid: part().getAttribute('aria-invalid') === 'true',
      status: part('status').textContent,
      busy: part().disabled,
    };
  }, slot);
}

/** Choose `file` in the console's file input labelled `label`; wait until the upload is
 *  answered (the input enabled again, and a status or an error said). */
async function chooseImage(owner, slot, label, file) {
  await owner.getByLabel(label, { exact: true }).setInputFiles(file);
  return waitFor(owner, (s) => {
    const input = document.getElementById(`page-${s}`);
    const status = document.getElementById(`page-${s}-status`).textContent;
    const error = document.getElementById(`page-${s}-error`);
    return !input.disabled && ((status !== 'Uploading…' && status !== '') || !error.hidden);
  }, slot, `waiting for the ${label} upload to be answered`);
}

/** Step 5c: the logo and the offline image, uploaded from the console, on the viewer page. */
async function pageImages(owner, viewer, images) {
  // The logo.
  let shown = await imageFieldShows(owner, 'logo');
  if (shown.src !== null || shown.info !== 'None' || shown.remove) fail(`before any upload the Logo field shows ${JSON.stringify(shown)}`);
  const logoAt = Date.now();
  await chooseImage(owner, 'logo', 'Logo', images['logo.png']);
  let stored = await storedImages();
  const logo = stored.logo;
  if (!logo || logo.width !== 64 || logo.height !== 32 || logo.contentType !== 'image/png'
    || logo.bytes !== fs.statSync(images['logo.png']).size || !/^\/logo\?v=/.test(logo.url)) {
    fail(`after choosing logo.png the API has the logo ${JSON.stringify(logo)} (the field: ${JSON.stringify(await imageFieldShows(owner, 'logo'))})`);
  }
  const info = await waitFor(owner, (url) => {
    const img = document.getElementById('page-logo-preview');
    return !img.hidden && img.getAttribute('src') === url && img.complete && img.naturalWidth === 64
      && !document.getElementById('page-logo-remove').hidden && document.getElementById('page-logo-info').textContent;
  }, logo.url, 'waiting for the console to show the uploaded logo', LIVE_MS);
  if (!/^64×32, \d+(\.\d)? KiB$/.test(info)) fail(`the Logo field says "${info}", expected "64×32, N KiB"`);
  const consoleLogoMs = Date.now() - logoAt;
  await waitFor(viewer, (url) => {
    const img = document.getElementById('stream-logo');
    return !img.hidden && img.getAttribute('src') === url && img.complete && img.naturalWidth === 64;
  }, logo.url, 'waiting for the viewer page to show the logo in its header', LIVE_MS);
  const viewerLogoMs = Date.now() - logoAt;
  const placed = await viewer.evaluate(() => {
    const img = document.getElementById('stream-logo').getBoundingClientRect();
    const title = document.getElementById('stream-title').getBoundingClientRect();
    const header = document.querySelector('.site-header').getBoundingClientRect();
    return { beside: img.right <= title.left + 1 && img.top >= header.top && img.bottom <= header.bottom, height: img.height };
  });
  if (!placed.beside || placed.height > 40.5) fail(`the viewer's logo is not beside the title within the header at most 2.5rem tall: ${JSON.stringify(placed)}`);
  if (!(await viewer.evaluate(() => window.__sameDocument === true))) fail('the viewer page reloaded');
  // On a phone the header still fits: logo, title and badge on one line.
  await viewer.setViewportSize({ width: 390, height: 844 });
  const phone = await viewer.evaluate(() => {
    const box = (id) => document.getElementById(id).getBoundingClientRect();
    return { width: document.documentElement.scrollWidth, logo: box('stream-logo').right, title: box('stream-title').left,
      badge: box('live-badge').right, header: document.querySelector('.site-header').getBoundingClientRect().height };
  });
  await viewer.setViewportSize({ width: 1280, height: 720 });
  if (phone.width > 390 || phone.badge > 390 || phone.logo > phone.title + 1 || phone.header > 57) fail(`at 390x844 the viewer's header with the logo does not fit: ${JSON.stringify(phone)}`);
  ok(`the logo (64x32 PNG, "${info}"): in the console ${consoleLogoMs} ms, beside the title on the viewer page (not reloaded, ${placed.height} px tall; at 390 px wide the header still one ${phone.header} px line) ${viewerLogoMs} ms after choosing the file`);

  // The offline image.
  const offlineAt = Date.now();
  await chooseImage(owner, 'offline', 'Offline image', images['offline.jpg']);
  stored = await storedImages();
  const offline = stored.offline;
  if (!offline || offline.width !== 320 || offline.height !== 180 || offline.contentType !== 'image/jpeg') {
    fail(`after choosing offline.jpg the API has ${JSON.stringify(offline)} (the field: ${JSON.stringify(await imageFieldShows(owner, 'offline'))})`);
  }
  const offlineInfo = await waitFor(owner, (url) => {
    const img = document.getElementById('page-offline-preview');
    return !img.hidden && img.getAttribute('src') === url && img.complete && img.naturalWidth === 320
      && document.getElementById('page-offline-info').textContent;
  }, offline.url, 'waiting for the console to show the uploaded offline image', LIVE_MS);
  await waitFor(viewer, (url) => {
    const img = document.getElementById('overlay-image');
    return !document.getElementById('overlay').hidden && !img.hidden && img.getAttribute('src') === url
      && img.complete && img.naturalWidth === 320;
  }, offline.url, 'waiting for the viewer page to show the offline image in its overlay', LIVE_MS);
  const viewerOfflineMs = Date.now() - offlineAt;
  // The offline message is still there, drawn over the image, which fills the player.
  const layered = await viewer.evaluate(() => {
    const text = document.getElementById('overlay-text');
    const r = text.getBoundingClientRect();
    const top = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
    const image = document.getElementById('overlay-image').getBoundingClientRect();
    const player = document.getElementById('player').getBoundingClientRect();
    return { text: text.textContent, onTop: !!top && text.contains(top), covers: image.width === player.width && image.height === player.height };
  });
  if (layered.text !== SET.offlineMessage || !layered.onTop || !layered.covers) {
    fail(`the viewer's overlay with the offline image: ${JSON.stringify(layered)} (the message must be on top, the image fill the player)`);
  }
  ok(`the offline image (320x180 JPEG, "${offlineInfo}"): in the viewer's offline overlay, under the offline message, ${viewerOfflineMs} ms after choosing the file`);

  // Refusals: at the field; nothing else changes.
  const badAt = Date.now();
  await chooseImage(owner, 'logo', 'Logo', images['bad.png']);
  shown = await imageFieldShows(owner, 'logo');
  const badMs = Date.now() - badAt;
  if (!shown.error || !shown.invalid || !(await visible(owner, '#page-logo-error'))) fail(`a text file as bad.png: no error at the Logo field: ${JSON.stringify(shown)}`);
  if (shown.src !== logo.url || shown.info !== info || !shown.remove || shown.loadedWidth !== 64) fail(`after the refusal the Logo field changed: ${JSON.stringify(shown)}`);
  await chooseImage(owner, 'offline', 'Offline image', images['anim.gif']);
  const gif = await imageFieldShows(owner, 'offline');
  if (gif.error !== 'Choose a PNG, JPEG or WebP image.' || gif.src !== offline.url) fail(`a GIF as the offline image: the field shows ${JSON.stringify(gif)}`);
  // Over 4 MiB: the console says so without sending it.
  await owner.getByLabel('Logo', { exact: true }).setInputFiles({ name: 'big.png', mimeType: 'image/png', buffer: Buffer.alloc(4 * 1024 * 1024 + 1) });
  const big = await waitFor(owner, () => {
    const e = document.getElementById('page-logo-error');
    return !e.hidden && /4 MiB/.test(e.textContent) && e.textContent;
  }, null, 'waiting for the Logo field to refuse a file over 4 MiB');
  stored = await storedImages();
  if (!same(stored, { logo, offline })) fail(`a refused image changed what is stored: ${JSON.stringify(stored)}`);
  const errors = await owner.evaluate(() => [...document.querySelectorAll('#page-section .field-error')]
    .filter((e) => !e.hidden).map((e) => e.id));
  if (!same(errors, ['page-logo-error', 'page-offline-error'])) fail(`errors shown in the Page section: ${errors.join(', ')}`);
  const still = await viewer.evaluate(() => [document.getElementById('stream-logo').getAttribute('src'), document.getElementById('overlay-image').getAttribute('src')]);
  if (!same(still, [logo.url, offline.url])) fail(`after the refusals the viewer page shows ${JSON.stringify(still)}`);
  checkNoProblems('after the images');
  ok(`refused at the field, nothing else changed (API, console, viewer page): a text file as bad.png "${shown.error}" (${badMs} ms), a GIF "${gif.error}", over 4 MiB "${big}"`);
}

/** Step 7b: "Remove" on the logo. */
async function removeLogo(owner, viewer) {
  const removeAt = Date.now();
  await owner.getByRole('button', { name: 'Remove logo', exact: true }).click();
  const said = await waitFor(owner, () => document.getElementById('page-logo-info').textContent === 'None'
    && document.getElementById('page-logo-preview').hidden && document.getElementById('page-logo-remove').hidden
    && document.getElementById('page-logo-error').hidden && document.getElementById('page-logo-status').textContent,
  null, 'waiting for the console to show no logo after Remove', LIVE_MS);
  const stored = await storedImages();
  if (stored.logo !== null || stored.offline === null) fail(`after Remove the API has ${JSON.stringify(stored)}`);
  const { status } = await fetchText(`${ctx.base}/logo`);
  if (status !== 404) fail(`after Remove GET /logo answered ${status}, expected 404`);
  await waitFor(viewer, () => {
    const img = document.getElementById('stream-logo');
    return img.hidden && !img.getAttribute('src') && img.getClientRects().length === 0;
  }, null, 'waiting for the viewer page\'s logo to go after Remove', LIVE_MS);
  const goneMs = Date.now() - removeAt;
  if (!(await viewer.evaluate(() => window.__sameDocument === true))) fail('the viewer page reloaded');
  const overlay = await viewer.evaluate(() => !document.getElementById('overlay-image').hidden);
  if (!overlay) fail('removing the logo also took the offline image off the viewer page');
  checkNoProblems('after removing the logo');
  ok(`Remove on the logo ("${said}"): the console says "None", the API none, /logo 404, the viewer page's logo gone ${goneMs} ms after the click; the offline image stays`);
}

/** Step 6: forged requests from a page on another origin, in the owner's browser context. */
/** The Chat settings form: slow mode saved (the API says "console"), a longest message of 0
 *  refused at its field with nothing saved, the streamer name set and reset. */
async function chatSettings(owner) {
  await owner.locator('#chatset-slowModeSeconds').fill('30');
  await owner.locator('#chatset-streamerName').fill('Console Host');
  await save(owner, '#chatset-form');
  const said = await waitSaved(owner, 'waiting for the chat settings to save', 'chatset');
  let chat = await storedChat();
  if (chat.values.slowModeSeconds !== 30 || chat.sources.slowModeSeconds !== 'console' || chat.values.streamerName !== 'Console Host') {
    fail(`after Save the chat settings are ${JSON.stringify(chat)} ("${said}")`);
  }
  await waitFor(owner, () => document.getElementById('chatset-slowModeSeconds-source').textContent === 'set here', null,
    'waiting for the form to say slow mode is set here');
  await owner.locator('#chatset-maxMessageChars').fill('0');
  await save(owner, '#chatset-form');
  await waitSaved(owner, 'waiting for Save (a longest message of 0) to finish', 'chatset');
  const error = await owner.textContent('#chatset-maxMessageChars-error');
  if (!(await visible(owner, '#chatset-maxMessageChars-error')) || !error) fail(`a longest message of 0: no error at its field (status "${await owner.textContent('#chatset-status')}")`);
  chat = await storedChat();
  if (chat.values.maxMessageChars !== 500) fail(`a refused longest message was stored: ${chat.values.maxMessageChars}`);
  await owner.locator('#chatset-maxMessageChars').fill('500');
  await owner.getByRole('button', { name: 'Reset Streamer name', exact: true }).click();
  await waitSaved(owner, 'waiting for Reset (streamer name) to finish', 'chatset');
  chat = await storedChat();
  if (chat.sources.streamerName === 'console') fail(`after Reset the streamer name is still the console's: ${JSON.stringify(chat)}`);
  ok(`chat settings: slow mode 30 s and a streamer name saved ("${said}"), a longest message of 0 refused at its field ("${error}") with nothing stored, the name reset to ${JSON.stringify(chat.values.streamerName)}`);
}

async function crossOrigin(owner) {
  const otherBase = await startOtherOrigin(h);
  const context = owner.context();
  const before = await storedPage();
  // (Its console is not watched: selfcast refusing to be framed there is a CSP message.)
  const other = await context.newPage();
  const attacks = [];   // what reached selfcast's admin API from that page (its iframe too)
  const onResponse = (res) => {
    if (res.url().startsWith(`${ctx.base}/api/admin/`) && res.frame().page() === other) {
      attacks.push({ method: res.request().method(), status: res.status(), contentType: res.request().headers()['content-type'] ?? null });
    }
  };
  context.on('response', onResponse);
  try {
    await h.raceWith(other.goto(`${otherBase}/`), 'opening the page on another origin', ctx.exits);
    const forged = JSON.stringify({ streamTitle: 'forged by another site', summary: 'forged' });
    const outcome = await h.raceWith(other.evaluate(async ({ target, body }) => {
      const url = `${target}/api/admin/settings/page`;
      const tries = [
        ['no-cors, untyped', { mode: 'no-cors', body: new Blob([body]) }],
        ['no-cors, text/plain', { mode: 'no-cors', body: new Blob([body], { type: 'text/plain' }) }],
        ['cors, application/json', { mode: 'cors', headers: { 'content-type': 'application/json' }, body }],
      ];
      const said = [];
      for (const [name, init] of tries) {
        try {
          const r = await fetch(url, { method: 'POST', credentials: 'include', ...init });
          said.push(`${name}: ${r.type === 'opaque' ? 'opaque answer' : 'HTTP ' + r.status}`);
        } catch (err) {
          said.push(`${name}: refused by the browser (${err.name})`);
        }
      }
      // The CSRF token: can this page read the session?
      try {
        const r = await fetch(`${target}/api/admin/session`, { credentials: 'include' });
        said.push(`reading the session: HTTP ${r.status} ${await r.text()}`);
      } catch (err) {
        said.push(`reading the session: refused by the browser (${err.name})`);
      }
      return said;
    }, { target: ctx.base, body: forged }), 'the forged fetches', ctx.exits);
    await h.raceWith(Promise.all([
      other.waitForEvent('response', (res) => res.url().endsWith('/api/admin/settings/page') && res.request().frame()?.name() === 'sink'),
      other.evaluate(({ target }) => {
        const form = document.createElement('form');
        form.method = 'POST';
        form.enctype = 'text/plain';
        form.action = `${target}/api/admin/settings/page`;
        form.target = 'sink';
        const input = document.createElement('input');
        input.name = '{"streamTitle":"forged by a form","x":"';
        input.value = '"}';
        form.append(input);
        document.body.append(form);
        form.submit();
      }, { target: ctx.base }),
    ]), 'the forged form post', ctx.exits);
    const read = outcome.find((line) => line.startsWith('reading the session'));
    if (/csrfToken/.test(read)) fail(`the other origin read the session: ${read}`);
    const through = attacks.filter((a) => a.method === 'POST' && a.status < 400);
    if (through.length > 0) fail(`forged posts were accepted: ${JSON.stringify(through)}`);
    const posts = attacks.filter((a) => a.method === 'POST');
    if (posts.length < 3) fail(`the browser reported ${posts.length} forged posts reaching selfcast, expected 3 (2 no-cors fetches, the form): ${JSON.stringify(attacks)}`);
    const after = await storedPage();
    if (!same(after, before)) fail(`the other origin changed the settings: ${JSON.stringify(after.values)}`);
    ok(`another origin with the owner's cookie: ${outcome.join('; ')}; posts that reached selfcast answered ${[...new Set(posts.map((a) => a.status))].join(', ')}; nothing stored`);
  } finally {
    context.off('response', onResponse);
    await other.close();
  }
}

/** Step 8: the Password section. */
async function changePassword(owner, oldPassword) {
  await owner.fill('#password-old', `${oldPassword}-wrong`);
  await owner.fill('#password-new', NEW_PASSWORD);
  await owner.fill('#password-repeat', NEW_PASSWORD);
  await owner.getByRole('button', { name: 'Change password', exact: true }).click();
  const refused = await waitFor(owner, () => {
    const e = document.getElementById('password-old-error');
    return !e.hidden && e.textContent;
  }, null, 'waiting for the console to refuse a wrong current password');
  await admin('GET', '/api/admin/settings');   // the old password still works

  await owner.fill('#password-old', oldPassword);
  await owner.fill('#password-new', NEW_PASSWORD);
  await owner.fill('#password-repeat', NEW_PASSWORD);
  await owner.getByRole('button', { name: 'Change password', exact: true }).click();
  const changed = await waitFor(owner, () => /changed/i.test(document.getElementById('password-status').textContent)
    && document.getElementById('password-status').textContent, null, 'waiting for the password to be changed');
  ctx.password = NEW_PASSWORD;
  await admin('GET', '/api/admin/settings');
  const old = await fetch(`${ctx.base}/api/admin/settings`, {
    headers: { authorization: `Basic ${Buffer.from(`admin:${oldPassword}`).toString('base64')}` },
    signal: AbortSignal.timeout(5000),
  });
  if (old.status !== 401) fail(`the old password still answers HTTP ${old.status} on the Basic API`);
  if (!(await visible(owner, '#console'))) fail('changing the password signed this console out');
  ok(`password: a wrong current one refused at its field ("${refused}"); changed ("${changed}"); the Basic API takes the new one, refuses the old (401); this console stays signed in`);
}

async function diagnose() {
  for (const [name, page] of [['console', ctx.owner], ['viewer', ctx.viewer]]) {
    if (!page || page.isClosed()) continue;
    await page.screenshot({ path: path.join(ARTIFACTS, `admin-failure-${name}.png`), fullPage: true }).catch(() => {});
  }
  if (ctx.owner && !ctx.owner.isClosed()) {
    const state = await ctx.owner.evaluate(() => ({
      state: window.selfcastAdmin && window.selfcastAdmin.state,
      status: document.getElementById('page-status').textContent,
      banner: document.getElementById('admin-error').textContent,
      signInError: document.getElementById('sign-in-error').textContent,
      fieldErrors: [...document.querySelectorAll('.field-error')].filter((e) => !e.hidden).map((e) => `${e.id}: ${e.textContent}`),
    })).catch((err) => `(cannot read the console: ${err.message})`);
    console.log(`--- the console ---\n${JSON.stringify(state, null, 2)}`);
  }
  if (ctx.viewer && !ctx.viewer.isClosed()) {
    console.log(`--- the viewer page ---\n${JSON.stringify(await viewerShows(ctx.viewer).catch((err) => err.message), null, 2)}`);
  }
  if (problems.length > 0) console.log(`--- script errors / CSP refusals ---\n${problems.join('\n')}`);
  if (ctx.base) {
    for (const p of ['/api/status', '/api/config']) {
      const answer = await fetchText(`${ctx.base}${p}`).catch((err) => ({ status: '-', body: err.message }));
      console.log(`--- GET ${p} → HTTP ${answer.status} ---\n${answer.body.slice(0, 2000)}`);
    }
  }
  await diagnoseAll({
    pages: [],
    base: null,
    logs: [['server log', ctx.artifacts.serverLog, 40], ['restarted server log', path.join(ARTIFACTS, 'admin-server-2.log'), 20],
      ['browser log', ctx.artifacts.browserLog, 40]],
  });
}

function pass() {
  console.log('admin console browser test checked:');
  for (const line of results) console.log(`  - ${line}`);
  console.log(`  screenshots: ${['admin-desktop.png', 'admin-phone.png', 'admin-viewer.png', 'admin-viewer-images.png', 'admin-slowed.png']
    .map((f) => path.relative(process.cwd(), path.join(ARTIFACTS, f))).join(', ')}`);
}

await h.run(main, { pass, diagnose });
