#!/usr/bin/env node
// tests/browser/chat.mjs — the chat beside the video, as two viewers and the streamer use it:
//
//   page A ──ws──▶ selfcast chat hub ◀──ws── page B        (two browser contexts: two users)
//                        ▲
//                        └── admin API (the streamer's message, hiding a message)
//
// 1. Starts `selfcast --config <temp config>` (no publisher: the chat works while offline) and
//    opens the viewer page twice, in separate browser contexts (separate localStorage), so each
//    registers its own chat user and shows "you are <name>".
// 2. A sends with Enter, B with the button; each sees the other's message under the sender's name.
// 3. A sends `<img src=x onerror=alert(1)>`: both pages show those characters as text, no <img>
//    appears in the message list, no dialog opens and no script error happens. A message with
//    `https://example.com/x.` shows a link to https://example.com/x (rel noopener nofollow,
//    target _blank). A 501-character message is refused in the page, with an error by the input.
// 4. The streamer posts through the admin API: marked with a badge on both pages. The admin hides
//    B's message: it disappears from both pages.
// 5. B tries the streamer's name (the server's refusal shows by B's input), then renames itself
//    to a name with markup in it; A sees the name change as text, and B's next message under it.
// 6. A reloads: same name (the token kept in localStorage), history shown once, hidden message
//    absent. A page with a token the server does not know registers again by itself.
// 7. /embed/chat loads (no extension) and shows the history and nothing else (no player runs);
//    ?readonly hides the input; ?transparent in an iframe lets the page behind show through;
//    banning that user makes the embed say so and stop reconnecting. /embed/video loads and its
//    player runs (offline state) without the header and without the chat (no chat user made).
// 8. Layout: at 1280x720 the chat is beside the video, at 390x844 (a phone) below it with the
//    input on screen. Screenshots.
// 9. Scrolling: with the reader scrolled up, a new message does not move the list and a
//    "new messages" button appears; clicking it jumps to the newest message.
// 10. The server restarts: the page says it is reconnecting and disables the input, then
//    reconnects by itself as the same user, and messages flow again.
//
// Usage:   node tests/browser/chat.mjs [path/to/selfcast]
// Env:     SELFCAST_BIN, CHROMIUM, TEST_TIMEOUT_S (default 120), as play.mjs
// Output:  tests/browser/artifacts/: chat-desktop.png, chat-phone.png, chat-embed.png,
//          chat-reconnecting.png, chat-server.log, chat-browser.log (chat-failure-*.png on failure)

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import {
  ARTIFACTS, CHROMIUM, Harness, diagnose as diagnoseAll, fail, fetchText, findBinary,
  launchBrowser, newPage, openPage, sleep, startServer,
  adminRequest,
} from './harness.mjs';

const h = new Harness({ tag: 'chat', label: 'chat browser test', timeoutS: 120 });
const log = (message) => h.log(message);

const XSS = '<img src=x onerror=alert(1)>';
const ADMIN_PASSWORD = `test-${randomBytes(8).toString('hex')}`;

const ctx = { base: null, pages: [], artifacts: {}, exits: [] };
const problems = { dialogs: [], pageErrors: [] };

// ---- Helpers ----------------------------------------------------------------------------------

/** A page in its own browser context, with dialogs and script errors recorded. */
async function chatPage(browser, name) {
  const { page } = await newPage(browser, ctx.artifacts.browserLog);
  page.on('dialog', (dialog) => {
    problems.dialogs.push(`${name}: ${dialog.type()} "${dialog.message()}"`);
    dialog.dismiss().catch(() => {});
  });
  page.on('pageerror', (err) => problems.pageErrors.push(`${name}: ${err.message}`));
  ctx.pages.push([name, page]);
  return page;
}

function waitFor(page, fn, arg, what) {
  return h.raceWith(page.waitForFunction(fn, arg, { timeout: 0, polling: 100 }).then((r) => r.jsonValue()),
    what, ctx.exits);
}

/** Which of `selectors` the page shows (present and laid out). */
function shown(page, selectors) {
  return page.evaluate((list) => list.filter((sel) => {
    const el = document.querySelector(sel);
    return el && el.getClientRects().length > 0;
  }), selectors);
}

/** Wait until the chat is connected; returns the name the page shows. */
async function waitConnected(page, who) {
  await waitFor(page, () => window.selfcastChat && window.selfcastChat.state === 'connected'
    && window.selfcastChat.me && !document.getElementById('chat-input').disabled,
  null, `waiting for ${who}'s chat to connect`);
  return page.evaluate(() => document.getElementById('chat-name').textContent);
}

/** Wait for a chat message whose body text is exactly `body`; returns what the line shows. */
function waitMessage(page, body, who) {
  return waitFor(page, (text) => {
    const line = [...document.querySelectorAll('#chat-messages .chat-msg')]
      .find((li) => li.querySelector('.chat-body').textContent === text);
    if (!line) return false;
    return {
      id: line.getAttribute('data-id'),
      author: line.querySelector('.chat-author').textContent,
      time: line.querySelector('.chat-time').textContent,
      badge: line.querySelector('.chat-badge') ? line.querySelector('.chat-badge').textContent : null,
      classes: line.className,
      bodyChildren: [...line.querySelector('.chat-body').childNodes].map((n) => n.nodeName),
    };
  }, body, `waiting for ${who} to show the message ${JSON.stringify(body)}`);
}

function countMessages(page, body) {
  return page.evaluate((text) => [...document.querySelectorAll('#chat-messages .chat-msg .chat-body')]
    .filter((b) => b.textContent === text).length, body);
}

async function send(page, text, how) {
  await page.fill('#chat-input', text);
  if (how === 'button') {
    await page.click('#chat-send');
  } else {
    await page.press('#chat-input', 'Enter');
  }
}

/** The admin API with the test's password. */
const admin = (method, p, body) => adminRequest(ctx.base, ADMIN_PASSWORD, method, p, body);

function checkNoProblems(when) {
  if (problems.dialogs.length > 0) {
    fail(`a dialog opened ${when}: ${problems.dialogs.join('; ')}`);
  }
  if (problems.pageErrors.length > 0) {
    fail(`script error(s) ${when}: ${problems.pageErrors.join('; ')}`);
  }
}

async function noElements(page, who, selector) {
  const n = await page.evaluate((s) => document.querySelectorAll(s).length, selector);
  if (n !== 0) {
    fail(`${who}: ${n} element(s) matching "${selector}" in the chat (message text made elements)`);
  }
}

function rect(page, selector) {
  return page.evaluate((s) => {
    const r = document.querySelector(s).getBoundingClientRect();
    return { left: r.left, top: r.top, right: r.right, bottom: r.bottom, width: r.width, height: r.height };
  }, selector);
}

const round = (r) => `${Math.round(r.left)},${Math.round(r.top)} ${Math.round(r.width)}x${Math.round(r.height)}`;

// ---- The test ---------------------------------------------------------------------------------

const results = [];
const ok = (line) => { results.push(line); log(`ok: ${line}`); };

async function main() {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  for (const name of fs.readdirSync(ARTIFACTS).filter((f) => f.startsWith('chat-'))) {
    fs.rmSync(path.join(ARTIFACTS, name), { force: true });
  }
  const serverLog = path.join(ARTIFACTS, 'chat-server.log');
  const browserLog = path.join(ARTIFACTS, 'chat-browser.log');
  ctx.artifacts = { serverLog, browserLog };

  const bin = findBinary();
  if (!fs.existsSync(CHROMIUM)) {
    fail(`chromium not found at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM)`);
  }

  // -- Server (no publisher), with a known admin password --
  const { base, server } = await startServer(h, {
    bin, script: 'chat.mjs', logFile: serverLog,
    extraToml: `\n[admin]\npassword = ${JSON.stringify(ADMIN_PASSWORD)}\n`,
  });
  ctx.base = base;
  ctx.exits = [server.exited];

  const browser = await launchBrowser(h, ctx.exits);

  // -- 1. Two viewers, two users --
  const a = await chatPage(browser, 'A');
  const b = await chatPage(browser, 'B');
  await openPage(h, a, base, ctx.exits);
  await openPage(h, b, base, ctx.exits);
  const nameA = await waitConnected(a, 'A');
  const nameB = await waitConnected(b, 'B');
  const idA = await a.evaluate(() => window.selfcastChat.me.id);
  const idB = await b.evaluate(() => window.selfcastChat.me.id);
  if (!nameA || !nameB || nameA === '…' || nameB === '…') {
    fail(`the pages show no name: A "${nameA}", B "${nameB}"`);
  }
  if (idA === idB) {
    fail(`both pages are the same chat user (${idA}): separate browser contexts must register separately`);
  }
  const tokenA = await a.evaluate(() => localStorage.getItem('selfcast.chat.accessToken'));
  if (!tokenA) {
    fail('page A kept no access token in localStorage (selfcast.chat.accessToken)');
  }
  ok(`two users: A is "${nameA}", B is "${nameB}" (token kept in localStorage)`);

  // -- 2. Messages both ways --
  await send(a, 'hello from A', 'enter');
  const seenByB = await waitMessage(b, 'hello from A', 'B');
  if (seenByB.author !== nameA) fail(`B shows A's message from "${seenByB.author}", expected "${nameA}"`);
  if (!/^\d\d:\d\d$/.test(seenByB.time)) fail(`the message time is "${seenByB.time}", expected HH:MM`);
  await waitMessage(a, 'hello from A', 'A (its own message)');
  if ((await a.inputValue('#chat-input')) !== '') fail('the input box was not emptied after sending');
  await send(b, 'hi from B', 'button');
  const seenByA = await waitMessage(a, 'hi from B', 'A');
  if (seenByA.author !== nameB) fail(`A shows B's message from "${seenByA.author}", expected "${nameB}"`);
  ok(`A → B (Enter) and B → A (button), with the sender's name and time ${seenByB.time}`);

  // -- 3. Text, not HTML; links; length --
  await send(a, XSS, 'enter');
  const xssOnB = await waitMessage(b, XSS, 'B');
  await waitMessage(a, XSS, 'A');
  if (xssOnB.bodyChildren.join(',') !== '#text') {
    fail(`B rendered the markup message as ${xssOnB.bodyChildren.join(',')}, expected one text node`);
  }
  await sleep(500);   // an <img src=x> would have failed to load and fired onerror by now
  for (const [who, page] of [['A', a], ['B', b]]) {
    await noElements(page, who, '#chat-messages img');
  }
  checkNoProblems('after the markup message');
  ok(`"${XSS}" shows as text on both pages: no <img>, no dialog, no script error`);

  await send(a, 'docs at https://example.com/x. Thanks', 'enter');
  await waitMessage(b, 'docs at https://example.com/x. Thanks', 'B');
  const link = await b.evaluate(() => {
    const body = [...document.querySelectorAll('#chat-messages .chat-body')]
      .find((el) => el.textContent.startsWith('docs at'));
    const links = body.querySelectorAll('a');
    return [...links].map((l) => ({ href: l.getAttribute('href'), text: l.textContent, rel: l.rel, target: l.target }));
  });
  if (link.length !== 1) fail(`expected one link in the message, found ${JSON.stringify(link)}`);
  const [l] = link;
  if (l.href !== 'https://example.com/x' || l.text !== 'https://example.com/x') {
    fail(`the link is ${JSON.stringify(l)}, expected href and text https://example.com/x (trailing dot not part of it)`);
  }
  const rel = l.rel.split(/\s+/);
  if (!rel.includes('noopener') || !rel.includes('nofollow') || l.target !== '_blank') {
    fail(`the link has rel="${l.rel}" target="${l.target}", expected noopener nofollow and _blank`);
  }
  ok(`https://example.com/x became <a href=… target=_blank rel="${l.rel}">`);

  const long = 'x'.repeat(501);
  await send(a, long, 'enter');
  const refused = await waitFor(a, () => {
    const e = document.getElementById('chat-error');
    return !e.hidden && e.textContent;
  }, null, 'waiting for A to refuse a 501-character message');
  if (!/500/.test(refused)) fail(`the too-long error says "${refused}"; expected it to name the limit 500`);
  if ((await a.inputValue('#chat-input')).length !== 501) fail('the refused message was not kept in the input box');
  if ((await countMessages(b, long)) !== 0) fail('the 501-character message reached B');
  await a.fill('#chat-input', '');
  ok(`501 characters refused by the page: "${refused}"`);

  // -- 4. The streamer; moderation --
  await admin('POST', '/api/admin/chat/send', { body: 'Welcome to the stream!' });
  for (const [who, page] of [['A', a], ['B', b]]) {
    const m = await waitMessage(page, 'Welcome to the stream!', who);
    if (!m.badge || !/chat-msg-streamer/.test(m.classes)) {
      fail(`${who} does not mark the streamer's message (badge ${JSON.stringify(m.badge)}, classes "${m.classes}")`);
    }
  }
  ok('the streamer\'s message has a badge and its own style on both pages');

  const hiddenId = seenByA.id;
  if (!hiddenId) fail('B\'s message has no data-id on page A');
  await admin('POST', '/api/admin/chat/messagevisibility', { idArray: [hiddenId], visible: false });
  for (const [who, page] of [['A', a], ['B', b]]) {
    await waitFor(page, (id) => !document.querySelector(`#chat-messages [data-id="${CSS.escape(id)}"]`),
      hiddenId, `waiting for ${who} to remove the hidden message`);
  }
  ok(`hiding message ${hiddenId} removed it from both pages`);

  // -- 5. Names --
  await b.click('#chat-name');
  await b.fill('#chat-rename-input', 'Streamer');
  await b.press('#chat-rename-input', 'Enter');
  const nameError = await waitFor(b, () => {
    const e = document.getElementById('chat-error');
    return !e.hidden && e.textContent;
  }, null, 'waiting for B to show the refusal of the streamer\'s name');
  if ((await b.textContent('#chat-name')) !== nameB) fail('B\'s name changed to a refused one');
  ok(`taking the streamer's name is refused, shown by B's input: "${nameError}"`);

  const newB = 'Bea <b>Bold</b>';
  await b.click('#chat-name');
  await b.fill('#chat-rename-input', newB);
  await b.press('#chat-rename-input', 'Enter');
  const notice = await waitFor(a, (name) => {
    const n = [...document.querySelectorAll('#chat-messages .chat-notice')]
      .find((li) => li.textContent.includes(` is now ${name}`));
    return n ? n.textContent : false;
  }, newB, 'waiting for A to show B\'s name change');
  if (!notice.includes(nameB)) fail(`the name change notice "${notice}" does not name B's old name "${nameB}"`);
  await waitFor(b, (name) => document.getElementById('chat-name').textContent === name, newB,
    'waiting for B to show its new name');
  await noElements(a, 'A', '#chat-messages b');
  await send(b, 'renamed!', 'enter');
  const renamed = await waitMessage(a, 'renamed!', 'A');
  if (renamed.author !== newB) fail(`B's message after the rename shows "${renamed.author}", expected "${newB}"`);
  ok(`B renamed to "${newB}": A shows "${notice.replace(/^\d\d:\d\d/, '').trim()}" as text, and B's next message under the new name`);

  // -- 6. Reload: same user, history once --
  await a.reload({ waitUntil: 'load' });
  const nameAfterReload = await waitConnected(a, 'A (reloaded)');
  if (nameAfterReload !== nameA) fail(`after a reload A is "${nameAfterReload}", expected "${nameA}" (token lost?)`);
  await waitMessage(a, 'renamed!', 'A (history after reload)');
  for (const text of ['hello from A', XSS, 'Welcome to the stream!', 'renamed!']) {
    const n = await countMessages(a, text);
    if (n !== 1) fail(`after the reload A shows ${JSON.stringify(text)} ${n} times, expected once`);
  }
  if ((await countMessages(a, 'hi from B')) !== 0) fail('after the reload A shows the hidden message again');
  await noElements(a, 'A', '#chat-messages img');
  ok(`reload: A is still "${nameA}", the history shows each message once, the hidden one not at all`);

  // A token the server does not know (its data was wiped): the page registers again by itself.
  const c = await chatPage(browser, 'C');
  await c.addInitScript(() => {
    if (!sessionStorage.getItem('seeded')) {
      sessionStorage.setItem('seeded', '1');
      localStorage.setItem('selfcast.chat.accessToken', 'not-a-token-the-server-knows');
    }
  });
  await openPage(h, c, base, ctx.exits);
  const nameC = await waitConnected(c, 'C (stale token)');
  const tokenC = await c.evaluate(() => localStorage.getItem('selfcast.chat.accessToken'));
  if (!tokenC || tokenC === 'not-a-token-the-server-knows') fail(`C kept the stale token (${tokenC})`);
  await waitMessage(c, 'renamed!', 'C (history)');
  await c.close();
  ok(`a stale token: the page registered again ("${nameC}") and connected`);

  // -- 7. Embeds --
  const e = await chatPage(browser, 'embed');
  const embedResponse = await h.raceWith(e.goto(`${base}/embed/chat`, { waitUntil: 'load' }), 'loading /embed/chat', ctx.exits);
  if (!embedResponse || embedResponse.status() !== 200) {
    fail(`GET /embed/chat answered ${embedResponse ? 'HTTP ' + embedResponse.status() : 'nothing'}`);
  }
  if (!/text\/html/.test(embedResponse.headers()['content-type'] || '')) {
    fail(`GET /embed/chat has content-type ${embedResponse.headers()['content-type']}`);
  }
  await waitConnected(e, 'the chat embed');
  for (const text of ['hello from A', XSS, 'docs at https://example.com/x. Thanks', 'Welcome to the stream!', 'renamed!']) {
    await waitMessage(e, text, 'the chat embed (history)');
  }
  if ((await countMessages(e, 'hi from B')) !== 0) fail('the chat embed shows the hidden message');
  await noElements(e, 'embed', '#chat-messages img');
  if (await e.evaluate(() => 'selfcast' in window)) fail('/embed/chat started the player');
  const shownInChat = await shown(e, ['#video', '#stream-title', '#server-version']);
  if (shownInChat.length) fail(`/embed/chat shows ${shownInChat.join(', ')}`);
  await e.screenshot({ path: path.join(ARTIFACTS, 'chat-embed.png') });
  await e.goto(`${base}/embed/chat?readonly&transparent`, { waitUntil: 'load' });
  await waitMessage(e, 'renamed!', 'the read-only chat embed');
  if (await e.isVisible('#chat-input')) fail('/embed/chat?readonly shows an input box');
  ok('/embed/chat loads (text/html) and shows the history; ?readonly hides the input');

  // ?transparent in an <iframe> over a striped page (as OBS composes it over the scene): the
  // stripes show through where there are no messages. The pixel at (20, 20) must be the same
  // with and without the frame.
  // The host page is served by the test itself (page.route), from the server's origin: Chromium
  // blocks a loopback iframe in a page from elsewhere.
  const host = `${base}/__chat-test-host.html`;
  await e.route(host, (route) => route.fulfill({
    contentType: 'text/html',
    body: `<!doctype html><html style="margin:0;background:repeating-linear-gradient(45deg,#2a7 0 20px,#fd3 20px 40px)">
      <body style="margin:0"><iframe id="f" src="/embed/chat?readonly&transparent"
      style="border:0;width:640px;height:400px"></iframe></body></html>`,
  }));
  await e.goto(host, { waitUntil: 'load' });
  const overlay = e.frames().find((f) => f !== e.mainFrame() && f.url().includes('/embed/chat'));
  if (!overlay) fail('the transparent chat embed did not load in an iframe');
  await waitFor(overlay, () => window.selfcastChat && window.selfcastChat.state === 'connected'
    && document.querySelectorAll('#chat-messages .chat-msg').length > 0, null, 'waiting for the chat in the iframe');
  await e.screenshot({ path: path.join(ARTIFACTS, 'chat-embed-overlay.png') });
  const pixel = { x: 20, y: 20, width: 1, height: 1 };
  const withFrame = await e.screenshot({ clip: pixel });
  await e.evaluate(() => { document.getElementById('f').style.visibility = 'hidden'; });
  const withoutFrame = await e.screenshot({ clip: pixel });
  if (!withFrame.equals(withoutFrame)) fail('/embed/chat?transparent is not transparent in an iframe');
  ok('/embed/chat?transparent lets the page behind show through');

  // The embed's user is banned: its page says so and stops reconnecting.
  const embedUser = await overlay.evaluate(() => window.selfcastChat.me.id);
  await admin('POST', '/api/admin/chat/users/setenabled', { userId: embedUser, enabled: false });
  await waitFor(overlay, () => window.selfcastChat.state === 'removed', null, 'waiting for the banned embed to say so');
  await sleep(2500);   // past the first two reconnection delays
  const bannedState = await overlay.evaluate(() => ({
    state: window.selfcastChat.state, status: document.getElementById('chat-status-text').textContent,
  }));
  const clients = await admin('GET', '/api/admin/chat/clients');
  if (bannedState.state !== 'removed' || clients.some((c) => c.user && c.user.id === embedUser)) {
    fail(`after the ban the embed is "${bannedState.state}" and ${clients.length} clients are connected: it reconnected`);
  }
  ok(`a banned user's page says "${bannedState.status}" and does not reconnect`);

  const videoResponse = await e.goto(`${base}/embed/video`, { waitUntil: 'load' });
  if (!videoResponse || videoResponse.status() !== 200) {
    fail(`GET /embed/video answered ${videoResponse ? 'HTTP ' + videoResponse.status() : 'nothing'}`);
  }
  if (await e.evaluate(() => 'selfcastChat' in window)) fail('/embed/video started the chat (it would make a chat user)');
  const shownInVideo = await shown(e, ['#chat', '#stream-title', '#server-version']);
  if (shownInVideo.length) fail(`/embed/video shows ${shownInVideo.join(', ')}`);
  await waitFor(e, () => window.selfcast && window.selfcast.state === 'offline'
    && !document.getElementById('overlay').hidden, null, 'waiting for /embed/video to show the offline player');
  const playerBox = await rect(e, '#player');
  if (playerBox.width < 1270 || playerBox.height < 710) fail(`/embed/video's player is ${round(playerBox)}, expected to fill 1280x720`);
  await e.close();
  checkNoProblems('on the embeds');
  ok(`/embed/video loads, shows the player alone, filling the frame (${round(playerBox)}), and says offline`);

  // -- 8. Layout --
  const playerA = await rect(a, '#player');
  const chatA = await rect(a, '#chat');
  if (chatA.left < playerA.right - 1 || chatA.top > playerA.top) {
    fail(`at 1280x720 the chat (${round(chatA)}) is not beside the video (${round(playerA)})`);
  }
  await a.screenshot({ path: path.join(ARTIFACTS, 'chat-desktop.png') });
  await b.setViewportSize({ width: 390, height: 844 });
  await sleep(300);
  const playerB = await rect(b, '#player');
  const chatB = await rect(b, '#chat');
  const inputB = await rect(b, '#chat-input');
  if (chatB.top < playerB.bottom - 1 || chatB.left > 1 || chatB.width < 380) {
    fail(`at 390x844 the chat (${round(chatB)}) is not below the video (${round(playerB)})`);
  }
  if (inputB.bottom > 844 + 1) fail(`at 390x844 the chat input (${round(inputB)}) is below the screen`);
  await b.screenshot({ path: path.join(ARTIFACTS, 'chat-phone.png') });
  ok(`layout: 1280x720 chat ${round(chatA)} beside video ${round(playerA)}; 390x844 chat ${round(chatB)} below video ${round(playerB)}, input on screen`);

  // -- 9. Scrolling --
  for (let i = 1; i <= 25; i++) {
    await admin('POST', '/api/admin/chat/send', { body: `filler ${i}` });
  }
  await waitMessage(a, 'filler 25', 'A');
  const atBottom = await a.evaluate(() => {
    const l = document.getElementById('chat-messages');
    return l.scrollHeight - l.scrollTop - l.clientHeight < 40;
  });
  if (!atBottom) fail('the message list did not follow the newest messages');
  await a.evaluate(() => { document.getElementById('chat-messages').scrollTop = 0; });
  await sleep(200);
  await admin('POST', '/api/admin/chat/send', { body: 'while scrolled up' });
  await waitMessage(a, 'while scrolled up', 'A');
  const scrolled = await a.evaluate(() => ({
    top: document.getElementById('chat-messages').scrollTop,
    jump: !document.getElementById('chat-jump').hidden,
  }));
  if (scrolled.top !== 0 || !scrolled.jump) {
    fail(`with the reader scrolled up, a new message moved the list to ${scrolled.top} / showed the button: ${scrolled.jump}`);
  }
  await a.click('#chat-jump');
  await waitFor(a, () => {
    const l = document.getElementById('chat-messages');
    return l.scrollHeight - l.scrollTop - l.clientHeight < 40 && document.getElementById('chat-jump').hidden;
  }, null, 'waiting for the "new messages" button to jump to the bottom');
  ok('auto-scroll follows new messages, pauses while scrolled up (button shown), the button jumps back');

  // -- 10. The server restarts --
  const args = server.child.spawnargs.slice(1);
  log('stopping the server');
  ctx.exits = [];   // its exit is expected now
  await server.stop();
  await waitFor(a, () => window.selfcastChat.state === 'reconnecting'
    && document.getElementById('chat-input').disabled
    && /reconnecting/i.test(document.getElementById('chat-status').textContent),
  null, 'waiting for A to show that it is reconnecting');
  await a.screenshot({ path: path.join(ARTIFACTS, 'chat-reconnecting.png') });
  const status = await a.evaluate(() => document.getElementById('chat-status-text').textContent);
  log(`A says "${status}"; starting the server again`);
  const again = h.startProcess('selfcast (restarted)', bin, args, path.join(ARTIFACTS, 'chat-server-2.log'), 'SIGINT');
  ctx.exits = [again.exited];
  const restarted = Date.now();
  for (const [who, page] of [['A', a], ['B', b]]) {
    await waitFor(page, () => window.selfcastChat.reconnects >= 1 && window.selfcastChat.state === 'connected',
      null, `waiting for ${who} to reconnect after the restart`);
  }
  const back = Date.now() - restarted;
  const nameBack = await a.textContent('#chat-name');
  if (nameBack !== nameA) fail(`after the restart A is "${nameBack}", expected "${nameA}"`);
  const duplicates = await a.evaluate(() => {
    const ids = [...document.querySelectorAll('#chat-messages [data-id]')].map((li) => li.getAttribute('data-id'));
    return ids.filter((id, i) => ids.indexOf(id) !== i);
  });
  if (duplicates.length > 0) fail(`after reconnecting A shows messages twice: ${duplicates.join(', ')}`);
  await send(a, 'back again', 'enter');
  await waitMessage(b, 'back again', 'B (after the restart)');
  checkNoProblems('during the test');
  ok(`server restart: "${status}", both pages reconnected within ${back} ms of the restart, A is still "${nameA}", no duplicates, messages flow`);
}

function diagnose() {
  return (async () => {
    for (const [name, page] of ctx.pages) {
      if (page.isClosed()) continue;
      await page.screenshot({ path: path.join(ARTIFACTS, `chat-failure-${name}.png`) }).catch(() => {});
      const state = await page.evaluate(() => ({
        chat: window.selfcastChat ? { state: window.selfcastChat.state, me: window.selfcastChat.me } : null,
        status: document.getElementById('chat-status') && document.getElementById('chat-status').textContent.trim(),
        error: document.getElementById('chat-error') && document.getElementById('chat-error').textContent,
        lines: [...document.querySelectorAll('#chat-messages li')].slice(-15).map((li) => li.textContent),
      })).catch((err) => `(cannot read page state: ${err.message})`);
      console.log(`--- chat state (${name}) ---`);
      console.log(JSON.stringify(state, null, 2));
    }
    if (problems.dialogs.length || problems.pageErrors.length) {
      console.log(`--- dialogs: ${JSON.stringify(problems.dialogs)}; script errors: ${JSON.stringify(problems.pageErrors)}`);
    }
    if (ctx.base) {
      try {
        const { status, body } = await fetchText(`${ctx.base}/api/chat`);
        console.log(`--- GET /api/chat → HTTP ${status} ---\n${body.slice(0, 2000)}`);
      } catch (err) {
        console.log(`--- GET /api/chat failed: ${err.message}`);
      }
    }
    await diagnoseAll({
      pages: [],
      base: null,
      logs: [['server log', ctx.artifacts.serverLog, 40], ['restarted server log', path.join(ARTIFACTS, 'chat-server-2.log'), 20],
        ['browser log', ctx.artifacts.browserLog, 40]],
    });
  })();
}

function pass() {
  console.log('chat browser test checked:');
  for (const line of results) console.log(`  - ${line}`);
  console.log(`  screenshots: ${['chat-desktop.png', 'chat-phone.png', 'chat-embed.png', 'chat-embed-overlay.png', 'chat-reconnecting.png']
    .map((f) => path.relative(process.cwd(), path.join(ARTIFACTS, f))).join(', ')}`);
}

await h.run(main, { pass, diagnose });
