#!/usr/bin/env node
// tests/browser/admin_csrf.mjs — cross-site request forgery against the admin API, in a real
// browser, exactly as issue 13 found it working:
//
//   owner tab  (http://127.0.0.1:<selfcast>)  signed in: Chromium caches the Basic credentials
//   evil tab   (http://127.0.0.1:<other port>, a tiny server of this test)
//        └── fetch(selfcast/api/admin/..., {mode: 'no-cors', credentials: 'include',
//                                           body: new Blob([json])})      + a text/plain form
//
// 1. Starts selfcast (no publisher) with a known admin password, and the "evil" server.
// 2. The owner signs in by opening http://admin:PASS@127.0.0.1:<port>/api/admin/... ; a fetch
//    from the owner's own page without credentials then answers 200: the browser sends the
//    cached ones by itself (the control: the attack below has them too).
// 3. The owner's page connects to the chat websocket and records every event.
// 4. The evil page bans an address, posts a system message and a streamer message (no-cors
//    fetch with a Blob, typed and untyped), and submits a text/plain form with a JSON body.
// 5. Checked through the admin API from here (a script, no Origin): nobody banned, nothing in
//    the history; a legitimate system message sent afterwards reaches the owner's websocket
//    with no forged one before it. The owner's own page can still post (same origin).
//
// Usage:   node tests/browser/admin_csrf.mjs [path/to/selfcast]
// Env:     SELFCAST_BIN, CHROMIUM, TEST_TIMEOUT_S (default 90)
// Output:  tests/browser/artifacts/csrf-server.log, csrf-browser.log

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import {
  ARTIFACTS, CHROMIUM, Harness, diagnose as diagnoseAll, fail, fetchText, findBinary,
  launchBrowser, startOtherOrigin, startServer,
  adminRequest,
} from './harness.mjs';

const h = new Harness({ tag: 'csrf', label: 'admin CSRF browser test', timeoutS: 90 });
const log = (message) => h.log(message);
const results = [];
const ok = (line) => { results.push(line); log(`ok: ${line}`); };

const ADMIN_PASSWORD = `test-${randomBytes(8).toString('hex')}`;
const FORGED = 'forged by another site';
const BANNED_BY_FETCH = '203.0.113.66';
const BANNED_BY_FORM = '203.0.113.67';

const ctx = { base: null, artifacts: {}, exits: [], attacks: [] };

/** The admin API with the test's password. */
const admin = (method, p, body) => adminRequest(ctx.base, ADMIN_PASSWORD, method, p, body);

async function main() {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const serverLog = path.join(ARTIFACTS, 'csrf-server.log');
  const browserLog = path.join(ARTIFACTS, 'csrf-browser.log');
  fs.writeFileSync(browserLog, '');
  ctx.artifacts = { serverLog, browserLog };
  const note = (line) => fs.appendFileSync(browserLog, `${new Date().toISOString()} ${line}\n`);

  const bin = findBinary();
  if (!fs.existsSync(CHROMIUM)) fail(`chromium not found at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM)`);

  // -- 1. selfcast and the evil site --
  const { base, server } = await startServer(h, {
    bin, script: 'admin_csrf.mjs', logFile: serverLog,
    extraToml: `\n[admin]\npassword = ${JSON.stringify(ADMIN_PASSWORD)}\n`,
  });
  ctx.base = base;
  ctx.exits = [server.exited];
  const evilBase = await startOtherOrigin(h);
  log(`selfcast at ${base}, the other site at ${evilBase}`);

  const browser = await launchBrowser(h, ctx.exits);
  // One context: the owner's tab and the evil tab share the browser's HTTP auth cache.
  const context = await browser.newContext();
  const evilPages = new Set();   // what they send (their iframe too) is an attack
  context.on('console', (msg) => note(`console.${msg.type()}: ${msg.text()}`));
  // (What the browser sent is not all visible here: playwright sees no Authorization on these.)
  context.on('response', (res) => {
    if (!res.url().startsWith(`${base}/api/admin/`)) return;
    const req = res.request();
    const entry = {
      from: req.frame()?.url() ?? '?', method: req.method(), url: res.url(), status: res.status(),
      contentType: req.headers()['content-type'] ?? null,
    };
    note(`admin request: ${JSON.stringify(entry)}`);
    if (evilPages.has(res.frame().page())) ctx.attacks.push(entry);
  });

  // -- 2. The owner signs in; the browser keeps the credentials --
  const owner = await context.newPage();
  const signedIn = await h.raceWith(
    owner.goto(`http://admin:${ADMIN_PASSWORD}@127.0.0.1:${new URL(base).port}/api/admin/chat/users/ipbans`),
    'the owner signing in', ctx.exits);
  if (!signedIn || signedIn.status() !== 200) {
    fail(`signing in with the password in the URL answered ${signedIn ? 'HTTP ' + signedIn.status() : 'nothing'}`);
  }
  await h.raceWith(owner.goto(`${base}/api/status`), 'opening a page of selfcast', ctx.exits);
  const control = await owner.evaluate(async () => (await fetch('/api/admin/chat/users/ipbans')).status);
  if (control !== 200) {
    fail(`a fetch from selfcast's own page without credentials answered ${control}: the browser did not cache the owner's credentials, so this test would prove nothing`);
  }
  ok('the owner is signed in: the browser sends the cached Basic credentials by itself (control fetch: 200)');

  // -- 3. The owner's page watches the chat --
  await owner.evaluate(async () => {
    const registered = await (await fetch('/api/chat/register', { method: 'POST', body: '{}' })).json();
    window.__events = [];
    await new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://${location.host}/ws?accessToken=${encodeURIComponent(registered.accessToken)}`);
      ws.onmessage = (m) => { for (const line of m.data.split('\n')) if (line) window.__events.push(JSON.parse(line)); };
      ws.onopen = resolve;
      ws.onerror = () => reject(new Error('the chat websocket failed'));
    });
  });
  ok('the owner\'s page is connected to the chat');

  // -- 4. The attack --
  const evil = await context.newPage();
  evilPages.add(evil);
  await h.raceWith(evil.goto(`${evilBase}/`), 'opening the other site', ctx.exits);
  const target = base;
  await h.raceWith(evil.evaluate(async ({ target, forged, bannedByFetch }) => {
    const attacks = [
      ['/api/admin/chat/users/ipbans/create', { value: bannedByFetch }],
      ['/api/admin/chat/system', { body: `${forged} (system)` }],
      ['/api/admin/chat/send', { body: `${forged} (send)` }],
    ];
    for (const [p, body] of attacks) {
      for (const type of [undefined, 'text/plain']) {
        const blob = type ? new Blob([JSON.stringify(body)], { type }) : new Blob([JSON.stringify(body)]);
        // The response is opaque: the page cannot see what happened, only that it was answered.
        await fetch(`${target}${p}`, { method: 'POST', mode: 'no-cors', credentials: 'include', body: blob });
      }
    }
  }, { target, forged: FORGED, bannedByFetch: BANNED_BY_FETCH }), 'the no-cors fetches', ctx.exits);
  // The classic JSON-in-a-form: text/plain gives `{"value":"...","x":"="}`.
  await h.raceWith(Promise.all([
    evil.waitForEvent('response', (res) => res.url().endsWith('/api/admin/chat/users/ipbans/create')
      && res.request().method() === 'POST' && res.request().frame()?.name() === 'sink'),
    evil.evaluate(({ target, bannedByForm }) => {
      const form = document.createElement('form');
      form.method = 'POST';
      form.enctype = 'text/plain';
      form.action = `${target}/api/admin/chat/users/ipbans/create`;
      form.target = 'sink';
      const input = document.createElement('input');
      input.name = `{"value":"${bannedByForm}","x":"`;
      input.value = '"}';
      form.append(input);
      document.body.append(form);
      form.submit();
    }, { target, bannedByForm: BANNED_BY_FORM }),
  ]), 'the form post', ctx.exits);
  const attacks = ctx.attacks.map((a) => `${a.status} ${a.url.slice(target.length)} (Content-Type ${a.contentType})`);
  log(`the other site's requests:\n    ${attacks.join('\n    ')}`);
  if (ctx.attacks.length < 7) fail(`the browser reported ${ctx.attacks.length} of the 7 forged requests`);
  const through = ctx.attacks.filter((a) => a.status < 400);
  if (through.length > 0) fail(`forged requests were accepted: ${JSON.stringify(through)}`);
  ok(`the other site sent 7 forged requests; answered ${[...new Set(ctx.attacks.map((a) => a.status))].join(', ')}`);

  // -- 5. No effect --
  const bans = await admin('GET', '/api/admin/chat/users/ipbans');
  if (bans.length !== 0) fail(`the other site banned addresses: ${JSON.stringify(bans)}`);
  const { body: history } = await fetchText(`${base}/api/chat`);
  if (history.includes(FORGED)) fail(`a forged message is in the chat history: ${history.slice(0, 500)}`);
  const marker = `a real system message ${randomBytes(4).toString('hex')}`;
  await admin('POST', '/api/admin/chat/system', { body: marker });
  const events = await h.raceWith(owner.waitForFunction((m) => window.__events.some((e) => e.body === m) && window.__events,
    marker, { timeout: 0, polling: 100 }).then((r) => r.jsonValue()), 'waiting for the real system message', ctx.exits);
  const forgedEvents = events.filter((e) => JSON.stringify(e).includes(FORGED));
  if (forgedEvents.length > 0) fail(`the owner's chat got forged events: ${JSON.stringify(forgedEvents)}`);
  ok('nobody was banned, nothing forged reached the history or the chat (a real system message after it did)');

  const ownPost = await owner.evaluate(async () => (await fetch('/api/admin/chat/send', {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ body: 'from the owner\'s own page' }),
  })).status);
  if (ownPost !== 200) fail(`a POST from selfcast's own page (same origin, cached credentials) answered ${ownPost}`);
  ok('a POST from selfcast\'s own page still works (200)');
}

async function diagnose() {
  console.log(`--- the other site's requests ---\n${JSON.stringify(ctx.attacks, null, 2)}`);
  await diagnoseAll({
    pages: [],
    base: null,
    logs: [['server log', ctx.artifacts.serverLog, 40], ['browser log', ctx.artifacts.browserLog, 40]],
  });
}

function pass() {
  console.log('admin CSRF browser test checked:');
  for (const line of results) console.log(`  - ${line}`);
}

await h.run(main, { pass, diagnose });
