#!/usr/bin/env node
// tests/browser/chat_moderator.mjs — a viewer the owner made a moderator moderates from the viewer
// page (issue 14):
//
//   page A (moderator) ──ws──▶ selfcast ◀──ws── page B (a normal viewer)
//            └── POST /api/chat/...?accessToken=A ──┘
//
// 1. Starts `selfcast` (no publisher) and opens the viewer page twice, in separate browser
//    contexts: two chat users, A and B. B writes; neither page shows moderation buttons.
// 2. The owner promotes A through the admin API (HTTP Basic, as a script would). A's page says
//    so and shows "Hide" on B's message, and "Time out" and "Ban" on it; B's page still shows none.
// 3. A clicks "Hide" on B's message: it vanishes on B's page and on A's (from the server's
//    VISIBILITY-UPDATE).
// 4. B forges the same request from its page with its own token: refused (403), and A's message
//    is still on both pages and in GET /api/chat.
// 5. A clicks "Time out" on B's next message: B's page says until when and turns its input off.
// 6. A clicks "Ban" twice: B's page says it was removed and stops; its messages are gone.
//
// Usage:   node tests/browser/chat_moderator.mjs [path/to/selfcast]
// Env:     SELFCAST_BIN, CHROMIUM, TEST_TIMEOUT_S (default 90)
// Output:  tests/browser/artifacts/: chat-moderator.png, chat-moderator-server.log,
//          chat-moderator-browser.log (chat-moderator-failure-*.png on failure)

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import {
  ARTIFACTS, CHROMIUM, Harness, adminRequest, diagnose as diagnoseAll, fail, fetchText,
  findBinary, launchBrowser, newPage, openPage, startServer,
} from './harness.mjs';

const h = new Harness({ tag: 'chat-mod', label: 'chat moderator browser test', timeoutS: 90 });
const log = (message) => h.log(message);
const ADMIN_PASSWORD = `test-${randomBytes(8).toString('hex')}`;
const ctx = { base: null, pages: [], artifacts: {}, exits: [] };
const pageErrors = [];

async function chatPage(browser, name) {
  const { page } = await newPage(browser, ctx.artifacts.browserLog);
  page.on('dialog', (dialog) => {
    pageErrors.push(`${name}: a ${dialog.type()} dialog opened: "${dialog.message()}"`);
    dialog.dismiss().catch(() => {});
  });
  page.on('pageerror', (err) => pageErrors.push(`${name}: ${err.message}`));
  ctx.pages.push([name, page]);
  return page;
}

function waitFor(page, fn, arg, what) {
  return h.raceWith(page.waitForFunction(fn, arg, { timeout: 0, polling: 100 }).then((r) => r.jsonValue()),
    what, ctx.exits);
}

async function waitConnected(page, who) {
  await waitFor(page, () => window.selfcastChat && window.selfcastChat.state === 'connected'
    && window.selfcastChat.me && !document.getElementById('chat-input').disabled,
  null, `waiting for ${who}'s chat to connect`);
  return page.evaluate(() => window.selfcastChat.me.id);
}

/** The id of the message line whose text is `body`, once the page shows it. */
function waitMessage(page, body, who) {
  return waitFor(page, (text) => {
    const line = [...document.querySelectorAll('#chat-messages .chat-msg')]
      .find((li) => li.querySelector('.chat-body').textContent === text);
    return line ? line.getAttribute('data-id') : false;
  }, body, `waiting for ${who} to show ${JSON.stringify(body)}`);
}

function waitGone(page, id, who) {
  return waitFor(page, (i) => !document.querySelector(`#chat-messages [data-id="${CSS.escape(i)}"]`),
    id, `waiting for ${who} to remove message ${id}`);
}

/** The moderation buttons the page shows on the message `id`. */
function buttonsOn(page, id) {
  return page.evaluate((i) => {
    const line = document.querySelector(`#chat-messages [data-id="${CSS.escape(i)}"]`);
    return line ? [...line.querySelectorAll('.chat-mod button')].map((b) => b.textContent) : null;
  }, id);
}

const countControls = (page) => page.evaluate(() => document.querySelectorAll('.chat-mod, .chat-mod-button').length);

async function send(page, text) {
  await page.fill('#chat-input', text);
  await page.press('#chat-input', 'Enter');
}

function click(page, id, label) {
  return page.click(`#chat-messages [data-id="${id}"] .chat-mod button:text-is("${label}")`);
}

const results = [];
const ok = (line) => { results.push(line); log(`ok: ${line}`); };

async function main() {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  for (const name of fs.readdirSync(ARTIFACTS).filter((f) => f.startsWith('chat-moderator'))) {
    fs.rmSync(path.join(ARTIFACTS, name), { force: true });
  }
  ctx.artifacts = {
    serverLog: path.join(ARTIFACTS, 'chat-moderator-server.log'),
    browserLog: path.join(ARTIFACTS, 'chat-moderator-browser.log'),
  };
  const bin = findBinary();
  if (!fs.existsSync(CHROMIUM)) {
    fail(`chromium not found at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM)`);
  }
  const { base, server } = await startServer(h, {
    bin, script: 'chat_moderator.mjs', logFile: ctx.artifacts.serverLog,
    extraToml: `\n[admin]\npassword = ${JSON.stringify(ADMIN_PASSWORD)}\n`,
  });
  ctx.base = base;
  ctx.exits = [server.exited];
  const admin = (method, p, body) => adminRequest(base, ADMIN_PASSWORD, method, p, body);
  const browser = await launchBrowser(h, ctx.exits);

  // -- 1. Two viewers; nobody is a moderator --
  const a = await chatPage(browser, 'A');
  const b = await chatPage(browser, 'B');
  await openPage(h, a, base, ctx.exits);
  await openPage(h, b, base, ctx.exits);
  const idA = await waitConnected(a, 'A');
  await waitConnected(b, 'B');
  await send(b, 'B writes something rude');
  const rude = await waitMessage(a, 'B writes something rude', 'A');
  await send(a, 'A says hello');
  const hello = await waitMessage(b, 'A says hello', 'B');
  for (const [who, page] of [['A', a], ['B', b]]) {
    const n = await countControls(page);
    if (n !== 0) fail(`${who} shows ${n} moderation control(s) before anyone is a moderator`);
  }
  ok('two viewers, no moderation controls on either page');

  // -- 2. The owner promotes A --
  const promoted = await admin('POST', '/api/admin/chat/users/setmoderator', { userId: idA, isModerator: true });
  if (JSON.stringify(promoted.user && promoted.user.scopes) !== '["MODERATOR"]') {
    fail(`setmoderator answered ${JSON.stringify(promoted)}`);
  }
  await waitFor(a, (i) => {
    const line = document.querySelector(`#chat-messages [data-id="${CSS.escape(i)}"]`);
    return line && line.querySelector('.chat-mod button');
  }, rude, 'waiting for A to show moderation buttons on B\'s message');
  const onRude = await buttonsOn(a, rude);
  if (JSON.stringify(onRude) !== '["Hide","Time out","Ban"]') {
    fail(`A shows ${JSON.stringify(onRude)} on B's message, expected Hide, Time out, Ban`);
  }
  const onOwn = await buttonsOn(a, hello);
  if (JSON.stringify(onOwn) !== '["Hide"]') fail(`A shows ${JSON.stringify(onOwn)} on its own message, expected only Hide`);
  const told = await a.evaluate(() => [...document.querySelectorAll('#chat-messages .chat-notice')]
    .some((n) => n.textContent.includes('You are now a moderator')));
  if (!told) fail('A\'s page did not say that A is now a moderator');
  if ((await countControls(b)) !== 0) fail('B shows moderation controls, and B is no moderator');
  ok(`promoted: A shows ${onRude.join(', ')} on B's message (Hide on its own), B shows none`);

  // -- 3. A hides B's message from the page --
  await click(a, rude, 'Hide');
  await waitGone(b, rude, 'B');
  await waitGone(a, rude, 'A');
  ok('A clicked Hide: B\'s message vanished on B\'s page and on A\'s');

  // -- 4. B forges the moderator's request with its own token --
  const forged = await b.evaluate(async (id) => {
    const token = localStorage.getItem('selfcast.chat.accessToken');
    const response = await fetch(`/api/chat/messagevisibility?accessToken=${encodeURIComponent(token)}`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ idArray: [id], visible: false }),
    });
    return { status: response.status, body: await response.text() };
  }, hello);
  if (forged.status !== 403) fail(`B's forged hide answered HTTP ${forged.status}: ${forged.body}`);
  await send(b, 'B after the forgery');
  await waitMessage(a, 'B after the forgery', 'A');
  for (const [who, page] of [['A', a], ['B', b]]) {
    const still = await page.evaluate((i) => !!document.querySelector(`#chat-messages [data-id="${CSS.escape(i)}"]`), hello);
    if (!still) fail(`${who} no longer shows A's message after B's forged request`);
  }
  const kept = JSON.parse((await fetchText(`${base}/api/chat`)).body).map((m) => m.id);
  if (!kept.includes(hello) || kept.includes(rude)) fail(`GET /api/chat lists ${JSON.stringify(kept)}`);
  ok(`B's forged request with B's token: HTTP 403 ${forged.body}; A's message still shown everywhere`);

  // -- 5. Time out --
  const next = await waitMessage(a, 'B after the forgery', 'A');
  await click(a, next, 'Time out');
  const timedOut = await waitFor(b, () => {
    const e = document.getElementById('chat-error');
    return document.getElementById('chat-input').disabled && !e.hidden && /timed out until/.test(e.textContent)
      && e.textContent;
  }, null, 'waiting for B to say it is timed out, with its input off');
  await waitFor(a, () => [...document.querySelectorAll('#chat-messages .chat-notice')]
    .some((n) => /is timed out until/.test(n.textContent)), null, 'waiting for A to confirm the timeout');
  ok(`A clicked Time out: B's page says "${timedOut}" and its input is off`);

  // -- 6. Ban (two clicks) --
  await click(a, next, 'Ban');
  const label = await a.textContent(`#chat-messages [data-id="${next}"] .chat-mod button[data-confirm="yes"]`);
  if (label !== 'Confirm ban') fail(`the first click on Ban shows "${label}", expected "Confirm ban"`);
  await click(a, next, 'Confirm ban');
  await waitFor(b, () => window.selfcastChat.state === 'removed', null, 'waiting for B to be removed');
  await waitGone(a, next, 'A');
  await a.screenshot({ path: path.join(ARTIFACTS, 'chat-moderator.png') });
  ok('A clicked Ban twice: B\'s page says it was removed, B\'s messages are gone from A\'s');

  if (pageErrors.length > 0) fail(`script errors or dialogs: ${pageErrors.join('; ')}`);
}

await h.run(main, {
  pass: () => {
    for (const line of results) console.log(`  ${line}`);
  },
  diagnose: () => diagnoseAll({
    pages: ctx.pages.map(([name, page]) => [name, page, `chat-moderator-failure-${name}.png`]),
    base: ctx.base,
    logs: [['server log', ctx.artifacts.serverLog, 40], ['browser log', ctx.artifacts.browserLog, 40]],
  }),
});
