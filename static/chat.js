/*
 * selfcast chat. Plain JavaScript, no build step, nothing loaded from the internet.
 *
 * What it does (the protocol is in docs/CHAT.md):
 *   1. Finds who you are: the access token kept in localStorage (TOKEN_KEY below); without one
 *      it asks POST /api/chat/register for a new user (a random name) and keeps the token.
 *   2. Connects to ws(s)://<this host>/ws?accessToken=...; the server answers with
 *      CONNECTED_USER_INFO ("you are <name>") and then the newest messages.
 *   3. Shows CHAT messages (name in the sender's colour, local time, text), the streamer's with a
 *      badge, SYSTEM notices and name changes; removes messages a moderator hides
 *      (VISIBILITY-UPDATE), and puts back, in their place, those the owner shows again (read
 *      from GET /api/chat, which has every visible message); shows refusals (ERROR_..., CHAT_DISABLED) next to the input box.
 *   4. Sends what you type: Enter sends, Shift+Enter starts a new line. Click your name to change
 *      it.
 *   5. For a moderator (user.scopes has MODERATOR: the owner promoted them), each message gets
 *      "Hide" and, on a normal user's, "Time out" (10 minutes) and "Ban" (click twice), which call
 *      the moderator endpoints with this page's token (docs/CHAT.md §7.1). Nothing is assumed
 *      to work: a hidden message goes when the server's VISIBILITY-UPDATE says so, and a refusal
 *      is shown under the input box. A timed-out user's input is off until the timeout ends.
 *   6. When the connection drops it says so and reconnects by itself: after 1 s, then 2, 4, 8 ...
 *      at most 30 s, a little randomised so that a restarted server is not hit by every page at
 *      once. A stale token (the server's data was wiped) is dropped and the page registers again.
 *
 * Messages are text, never HTML: everything from the network is put on the page with
 * textContent / text nodes; only http(s) links become <a> elements (linkify.js).
 *
 * It needs the markup of the chat <aside id="chat"> in index.html. It does nothing in the
 * player-only embed (/embed/video: view.js), so that embed makes no chat user; the chat embed's
 * options (?readonly, ?transparent) are read by view.js too.
 *
 * For tests and debugging, window.selfcastChat holds the state: `state` ('connecting' |
 * 'connected' | 'reconnecting' | 'removed'), `me` (your user object) and `reconnects`.
 */
(function () {
  'use strict';

  // ---- Settings ------------------------------------------------------------------------------

  var TOKEN_KEY = 'selfcast.chat.accessToken';  // where the access token is kept (localStorage)
  var REGISTER_URL = '/api/chat/register';
  var HISTORY_URL = '/api/chat';
  var SOCKET_PATH = '/ws';
  var RECONNECT_MIN_MS = 1000;       // first reconnection delay...
  var RECONNECT_MAX_MS = 30000;      // ...doubling up to this
  var CHAT_OFF_RETRY_MS = 30000;     // after "chat is off" closed the connection
  var KICKED_RETRY_MS = 10000;       // at least this long after a "policy" close (e.g. flooding)
  var MAX_LINES = 300;               // older lines are removed from the page
  var ERROR_SHOWN_MS = 10000;        // how long a refusal stays under the input box
  var STUCK_SLACK_PX = 40;           // "at the bottom" if within this many pixels of it
  var TIMEOUT_MINUTES = 10;          // what the moderator's "Time out" button gives
  var CONFIRM_MS = 4000;             // how long "Ban" waits for its second click

  // ---- Page elements -------------------------------------------------------------------------

  var root = document.getElementById('chat');
  if (!root || document.documentElement.dataset.view === 'video') {
    return;
  }
  function $(id) {
    return document.getElementById(id);
  }
  var els = {
    status: $('chat-status'),
    statusText: $('chat-status-text'),
    retry: $('chat-retry'),
    list: $('chat-messages'),
    jump: $('chat-jump'),
    compose: $('chat-compose'),
    meName: $('chat-name'),
    renameForm: $('chat-rename-form'),
    renameInput: $('chat-rename-input'),
    renameCancel: $('chat-rename-cancel'),
    error: $('chat-error'),
    form: $('chat-form'),
    input: $('chat-input'),
    send: $('chat-send'),
    count: $('chat-count'),
  };
  // The longest message ([chat] max_message_chars), as /api/status reports it.
  var maxChars = 500;
  fetch('/api/status', { cache: 'no-store' })
    .then(function (response) { return response.json(); })
    .then(function (status) {
      if (status && status.chatMaxMessageChars > 0) maxChars = status.chatMaxMessageChars;
    })
    .catch(function () { /* keep the default; the server checks anyway */ });

  // The chat embed's ?readonly (view.js): no input box.
  if (document.documentElement.classList.contains('chat-readonly')) {
    els.compose.hidden = true;
  }

  // ---- State ---------------------------------------------------------------------------------

  var chat = {
    state: 'connecting',
    me: null,            // the user object from CONNECTED_USER_INFO
    reconnects: 0,       // successful connections after the first (for tests)
  };
  window.selfcastChat = chat;

  var conn = null;            // { socket, welcomed, lastError } of the current connection
  var attempt = 0;            // failed attempts since the last successful connect
  var retryTimer = null;
  var reRegistered = false;   // already registered again after ERROR_NEEDS_REGISTRATION
  var everConnected = false;
  var generation = 0;         // bumped by every connect(): late answers to older ones are ignored
  var lines = {};             // message id → <li>, to hide messages and skip duplicates
  var pending = null;         // the text of our last message until it comes back
  var stuck = true;           // the list is scrolled to the bottom: follow new messages
  var errorTimer = null;
  var memoryToken = null;     // when localStorage is unavailable (private mode, sandboxed iframe)
  var timedOutUntil = null;   // a Date while this user is timed out
  var timeoutTimer = null;

  // ---- The access token ----------------------------------------------------------------------

  function loadToken() {
    try {
      return window.localStorage.getItem(TOKEN_KEY) || memoryToken;
    } catch (e) {
      return memoryToken;
    }
  }

  function saveToken(token) {
    memoryToken = token;
    try {
      window.localStorage.setItem(TOKEN_KEY, token);
    } catch (e) {
      // Not stored: this page keeps it until it is closed.
    }
  }

  function dropToken() {
    memoryToken = null;
    try {
      window.localStorage.removeItem(TOKEN_KEY);
    } catch (e) {
      // nothing kept
    }
  }

  // ---- Connecting ----------------------------------------------------------------------------

  function connect() {
    clearRetry();
    closeSocket();
    generation += 1;
    var mine = generation;
    setState(everConnected ? 'reconnecting' : 'connecting');
    var token = loadToken();
    if (token) {
      openSocket(token);
      return;
    }
    register().then(function (newToken) {
      if (mine === generation) {
        openSocket(newToken);
      }
    }, function (err) {
      if (mine !== generation) {
        return;
      }
      if (err && err.banned) {
        removed(err.message);
      } else {
        console.warn('selfcast chat: registration failed:', err);
        scheduleReconnect(err && err.retryAfterMs ? err.retryAfterMs : 0);
      }
    });
  }

  // A new user (the server picks a random name); resolves with its token.
  function register() {
    return fetch(REGISTER_URL, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: '{}',
      cache: 'no-store',
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (json) {
        if (!response.ok || typeof json.accessToken !== 'string' || json.accessToken === '') {
          var err = new Error((json && (json.error || json.message))
            || ('registration answered HTTP ' + response.status));
          err.banned = response.status === 403;
          if (response.status === 429) {
            // Too many new users from this address: wait as long as the server asks.
            var seconds = parseInt(response.headers.get('Retry-After'), 10);
            err.retryAfterMs = seconds > 0 ? seconds * 1000 : RECONNECT_MAX_MS;
          }
          throw err;
        }
        saveToken(json.accessToken);
        return json.accessToken;
      });
    });
  }

  function openSocket(token) {
    var scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
    var url = scheme + '//' + window.location.host + SOCKET_PATH
      + '?accessToken=' + encodeURIComponent(token);
    var socket;
    try {
      socket = new WebSocket(url);
    } catch (e) {
      scheduleReconnect(0);
      return;
    }
    var mine = { socket: socket, welcomed: false, lastError: null };
    conn = mine;
    socket.onmessage = function (message) {
      if (conn !== mine || typeof message.data !== 'string') {
        return;
      }
      // Several events may share a message, one per line (as Owncast sends them).
      message.data.split('\n').forEach(function (line) {
        var event;
        try {
          event = JSON.parse(line);
        } catch (e) {
          return;
        }
        if (event && typeof event.type === 'string' && conn === mine) {
          handle(event, mine);
        }
      });
    };
    socket.onclose = function (close) {
      if (conn !== mine) {
        return;   // replaced on purpose
      }
      conn = null;
      afterClose(mine, close.code);
    };
    // onerror is always followed by onclose.
  }

  function closeSocket() {
    if (conn) {
      var old = conn.socket;
      conn = null;
      try {
        old.close();
      } catch (e) {
        // already closed
      }
    }
  }

  // The connection ended: decide whether and when to try again.
  function afterClose(closed, code) {
    setConnected(false);
    if (closed.lastError === 'ERROR_USER_DISABLED') {
      removed(null);
      return;
    }
    if (closed.lastError === 'ERROR_NEEDS_REGISTRATION' && !reRegistered) {
      reRegistered = true;   // once right away; if that fails too, back off as usual
      connect();
      return;
    }
    var atLeast = 0;
    if (closed.lastError === 'CHAT_DISABLED') {
      atLeast = CHAT_OFF_RETRY_MS;
      showError('Chat is turned off for now.', true);
    } else if (code === 1008) {
      atLeast = KICKED_RETRY_MS;
    }
    scheduleReconnect(atLeast);
  }

  function scheduleReconnect(atLeast) {
    clearRetry();
    var base = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * Math.pow(2, attempt));
    attempt += 1;
    // ±20 % so that pages do not all come back at the same instant.
    var delay = Math.max(atLeast, Math.min(RECONNECT_MAX_MS, base * (0.8 + Math.random() * 0.4)));
    retryTimer = setTimeout(function () {
      retryTimer = null;
      connect();
    }, delay);
    setState(everConnected ? 'reconnecting' : 'connecting', delay);
  }

  function clearRetry() {
    if (retryTimer !== null) {
      clearTimeout(retryTimer);
      retryTimer = null;
    }
  }

  // A moderator removed this user (or banned the address): no automatic retries.
  function removed(message) {
    clearRetry();
    closeSocket();
    setConnected(false);
    setState('removed');
    if (message) {
      showError(message, true);
    }
  }

  // ---- Events from the server ----------------------------------------------------------------

  function handle(event, from) {
    var type = event.type;
    if (type.indexOf('ERROR_') === 0 || type === 'CHAT_DISABLED') {
      from.lastError = type;
      onError(event, from);
      return;
    }
    switch (type) {
      case 'CONNECTED_USER_INFO':
        if (typeof event.accessToken === 'string' && event.accessToken !== '') {
          saveToken(event.accessToken);
        }
        if (!from.welcomed) {
          from.welcomed = true;
          welcome();
        }
        setMe(event.user);
        break;
      case 'CHAT':
        if (event.visible !== false) {
          addMessage(event);
        }
        break;
      case 'SYSTEM':
      case 'CHAT_ACTION':
        addNotice(event.id, event.timestamp, event.body, 'chat-notice-system');
        break;
      case 'NAME_CHANGE':
        onNameChange(event);
        break;
      case 'VISIBILITY-UPDATE':
        if (Array.isArray(event.ids)) {
          if (event.visible === false) {
            event.ids.forEach(removeLine);
          } else {
            restoreMessages(event.ids);
          }
        }
        break;
      default:
        // USER_JOINED, USER_PARTED (not shown: they would flood a busy chat), and anything new.
        break;
    }
  }

  // The first CONNECTED_USER_INFO of a connection: the history follows, so start a fresh list.
  function welcome() {
    if (everConnected) {
      chat.reconnects += 1;
    }
    everConnected = true;
    attempt = 0;
    reRegistered = false;
    clearLines();
    hideError();
    // Don't make screen readers read out the whole history; announce what comes after it.
    els.list.setAttribute('aria-live', 'off');
    setTimeout(function () {
      els.list.setAttribute('aria-live', 'polite');
    }, 1500);
    setConnected(true);
    setState('connected');
  }

  function onError(event, from) {
    var text = (typeof event.message === 'string' && event.message)
      || (typeof event.body === 'string' && event.body) || event.type;
    switch (event.type) {
      case 'ERROR_NEEDS_REGISTRATION':
        if (!from.welcomed) {
          // Our token is unknown (e.g. the server's data was wiped): start over as a new user.
          dropToken();
          return;
        }
        break;
      case 'ERROR_USER_DISABLED':
        showError(text, true);
        return;
      case 'ERROR_TIMED_OUT':
        applyTimeout(event.until);
        break;
      default:
        break;
    }
    if (!timedOut()) {
      showError(text, false);
    }
    // The message was refused: give its text back if the box is still empty.
    if (pending !== null && els.input.value === '') {
      els.input.value = pending;
      updateCount();
    }
    pending = null;
  }

  function onNameChange(event) {
    var user = event.user || {};
    var newName = typeof event.newName === 'string' ? event.newName : user.displayName;
    var oldName = typeof event.oldName === 'string' ? event.oldName : '';
    if (typeof newName !== 'string') {
      return;
    }
    var isMe = chat.me && user.id === chat.me.id;
    var line = notice(event.id, event.timestamp, 'chat-notice-name');
    var text = line.querySelector('.chat-text');
    if (isMe) {
      text.appendChild(document.createTextNode('You are now '));
      text.appendChild(nameNode(newName, user));
    } else {
      text.appendChild(nameNode(oldName, user));
      text.appendChild(document.createTextNode(' is now '));
      text.appendChild(nameNode(newName, user));
    }
    appendLine(line, event.id);
    if (isMe) {
      chat.me.displayName = newName;
      showMyName();
    }
  }

  // ---- Messages on the page ------------------------------------------------------------------

  function addMessage(event) {
    var user = event.user || {};
    var id = typeof event.id === 'string' ? event.id : null;
    if (id !== null && lines[id]) {
      return;   // already shown
    }
    var scopes = Array.isArray(user.scopes) ? user.scopes : [];
    var streamer = scopes.indexOf('STREAMER') >= 0 || scopes.indexOf('MODERATOR') >= 0;
    var isMe = chat.me && user.id === chat.me.id;

    var line = document.createElement('li');
    line.className = 'chat-line chat-msg' + (streamer ? ' chat-msg-streamer' : '')
      + (isMe ? ' chat-msg-me' : '');
    line.appendChild(timeNode(event.timestamp));
    if (streamer) {
      var badge = document.createElement('span');
      badge.className = 'chat-badge';
      badge.textContent = user.id === 'streamer' ? 'Streamer' : 'Mod';
      line.appendChild(badge);
    }
    var author = nameNode(user.displayName, user);
    author.classList.add('chat-author');
    line.appendChild(author);
    var colon = document.createElement('span');
    colon.className = 'chat-colon';
    colon.textContent = ': ';
    line.appendChild(colon);
    var body = document.createElement('bdi');
    body.className = 'chat-body';
    appendLinkified(body, typeof event.body === 'string' ? event.body : '');
    line.appendChild(body);

    line.setAttribute('data-user-id', typeof user.id === 'string' ? user.id : '');
    line.setAttribute('data-role', user.id === 'streamer' ? 'streamer' : (streamer ? 'moderator' : ''));
    addModControls(line);
    appendLine(line, id);
    if (isMe) {
      if (pending !== null && event.body === pending) {
        pending = null;
      }
      scrollToBottom();   // your own message: always show it
    }
  }

  function addNotice(id, timestamp, body, kind) {
    if (typeof body !== 'string' || (typeof id === 'string' && lines[id])) {
      return;
    }
    var line = notice(id, timestamp, kind);
    appendLinkified(line.querySelector('.chat-text'), body);
    appendLine(line, id);
  }

  function notice(id, timestamp, kind) {
    var line = document.createElement('li');
    line.className = 'chat-line chat-notice ' + kind;
    line.appendChild(timeNode(timestamp));
    var text = document.createElement('span');
    text.className = 'chat-text';
    line.appendChild(text);
    return line;
  }

  // A name in the user's colour (displayColor 0..7 → class chat-color-N in style.css).
  function nameNode(name, user) {
    var node = document.createElement('bdi');
    var color = user && typeof user.displayColor === 'number' ? user.displayColor : -1;
    node.className = 'chat-name' + (color >= 0 && color <= 7 ? ' chat-color-' + Math.floor(color) : '');
    node.textContent = typeof name === 'string' ? name : '?';
    return node;
  }

  // Local HH:MM, with the full time on hover.
  function timeNode(timestamp) {
    var when = new Date(typeof timestamp === 'string' ? timestamp : NaN);
    if (isNaN(when.getTime())) {
      when = new Date();
    }
    var node = document.createElement('time');
    node.className = 'chat-time';
    node.dateTime = when.toISOString();
    node.title = when.toLocaleString();
    node.textContent = pad2(when.getHours()) + ':' + pad2(when.getMinutes());
    return node;
  }

  function pad2(n) {
    return (n < 10 ? '0' : '') + n;
  }

  // Text with http(s) URLs as links (linkify.js). A page of the owner's made before linkify.js
  // existed does not load it: its messages stay plain text.
  function appendLinkified(parent, text) {
    if (window.selfcastLinkify) {
      window.selfcastLinkify.appendLinkified(parent, text, 'noopener noreferrer nofollow');
    } else {
      parent.appendChild(document.createTextNode(text));
    }
  }

  function appendLine(line, id) {
    if (typeof id === 'string' && id !== '') {
      line.setAttribute('data-id', id);
      lines[id] = line;
    }
    els.list.appendChild(line);
    while (els.list.children.length > MAX_LINES) {
      var oldest = els.list.firstElementChild;
      var oldId = oldest.getAttribute('data-id');
      if (oldId !== null) {
        delete lines[oldId];
      }
      oldest.remove();
    }
    if (stuck) {
      scrollToBottom();
    } else {
      els.jump.hidden = false;
    }
  }

  // Messages shown again (the owner's "Show"): this page no longer has them, the history
  // (GET /api/chat) does; each goes back in its place by time.
  function restoreMessages(ids) {
    var wanted = ids.filter(function (id) { return typeof id === 'string' && !lines[id]; });
    if (wanted.length === 0) return;
    fetch(HISTORY_URL, { cache: 'no-store' }).then(function (response) {
      return response.ok ? response.json() : [];
    }).then(function (history) {
      if (!Array.isArray(history)) return;
      history.forEach(function (event) {
        if (event && event.type === 'CHAT' && wanted.indexOf(event.id) >= 0 && !lines[event.id]) {
          addMessage(event);
          placeByTime(lines[event.id]);
        }
      });
    }).catch(function () {
      // Offline for a moment: the message comes back with the next visit.
    });
  }

  // Moves a line (just appended) before the first line that is later than it.
  function placeByTime(line) {
    if (!line) return;
    var at = line.querySelector('time');
    var when = at ? Date.parse(at.dateTime) : NaN;
    if (isNaN(when)) return;
    var next = Array.prototype.find.call(els.list.children, function (other) {
      var time = other !== line && other.querySelector('time');
      return time && Date.parse(time.dateTime) > when;
    });
    if (next) els.list.insertBefore(line, next);
  }

  function removeLine(id) {
    var line = typeof id === 'string' ? lines[id] : null;
    if (line) {
      delete lines[id];
      line.remove();
    }
  }

  function clearLines() {
    lines = {};
    els.list.textContent = '';
    stuck = true;
    els.jump.hidden = true;
  }

  // ---- Scrolling: follow new messages unless the reader scrolled up --------------------------

  function atBottom() {
    var list = els.list;
    return list.scrollHeight - list.scrollTop - list.clientHeight <= STUCK_SLACK_PX;
  }

  function scrollToBottom() {
    stuck = true;
    els.list.scrollTop = els.list.scrollHeight;
    els.jump.hidden = true;
  }

  els.list.addEventListener('scroll', function () {
    stuck = atBottom();
    if (stuck) {
      els.jump.hidden = true;
    }
  }, { passive: true });

  els.jump.addEventListener('click', function () {
    scrollToBottom();
  });

  // The list changes size (window resized, phone rotated, keyboard shown): stay at the bottom.
  if (window.ResizeObserver) {
    new ResizeObserver(function () {
      if (stuck) {
        els.list.scrollTop = els.list.scrollHeight;
      }
    }).observe(els.list);
  }

  // ---- Status and who you are ----------------------------------------------------------------

  function setState(state, retryInMs) {
    chat.state = state;
    els.status.setAttribute('data-state', state);
    var text;
    switch (state) {
      case 'connected':
        text = 'Connected';
        break;
      case 'reconnecting':
        text = retryInMs >= 3000
          ? 'Disconnected. Reconnecting in ' + Math.round(retryInMs / 1000) + ' s…'
          : 'Disconnected. Reconnecting…';
        break;
      case 'removed':
        text = 'You cannot chat here now.';
        break;
      default:
        text = retryInMs >= 3000 ? 'Cannot reach the chat. Retrying in '
          + Math.round(retryInMs / 1000) + ' s…' : 'Connecting…';
    }
    els.statusText.textContent = text;
    // "Try now" while waiting to reconnect, and after being removed.
    els.retry.hidden = !(retryTimer !== null || state === 'removed');
  }

  function setConnected(connected) {
    var quiet = connected && timedOut();
    els.input.disabled = !connected || quiet;
    els.send.disabled = !connected || quiet || !canSend();
    els.meName.disabled = !connected || quiet;
    els.input.placeholder = quiet ? 'Timed out until ' + hhmm(timedOutUntil)
      : (connected ? 'Send a message' : 'Waiting for the chat…');
    if (!connected) {
      closeRename();
    }
  }

  function setMe(user) {
    if (!user || typeof user !== 'object') {
      return;
    }
    var wasModerator = isModerator();
    var known = chat.me !== null;
    chat.me = user;
    showMyName();
    applyTimeout(user.timedOutUntil);
    if (isModerator() !== wasModerator) {
      if (known) {
        addNotice(null, null, isModerator()
          ? 'You are now a moderator: you can hide messages, and time out or ban users.'
          : 'You are no longer a moderator.', 'chat-notice-system');
      }
      refreshModControls();
    }
  }

  function showMyName() {
    var name = chat.me && typeof chat.me.displayName === 'string' ? chat.me.displayName : '…';
    els.meName.textContent = name;
    els.meName.className = 'chat-me-name chat-name'
      + (chat.me && typeof chat.me.displayColor === 'number' ? ' chat-color-' + chat.me.displayColor : '');
    els.meName.setAttribute('aria-label', 'You are ' + name + '. Change your name');
  }

  els.retry.addEventListener('click', function () {
    hideError();
    attempt = 0;
    reRegistered = false;
    connect();
  });

  // Back online (laptop woke up, Wi-Fi back): don't wait for the timer.
  window.addEventListener('online', function () {
    if (retryTimer !== null) {
      attempt = 0;
      connect();
    }
  });

  // ---- Timeouts ------------------------------------------------------------------------------

  function timedOut() {
    return timedOutUntil !== null && timedOutUntil.getTime() > Date.now();
  }

  // The server says this user may not write until `until` (RFC 3339; absent: they may).
  function applyTimeout(until) {
    var when = typeof until === 'string' ? new Date(until) : null;
    if (timeoutTimer !== null) {
      clearTimeout(timeoutTimer);
      timeoutTimer = null;
    }
    var was = timedOut();
    timedOutUntil = when && !isNaN(when.getTime()) && when.getTime() > Date.now() ? when : null;
    if (timedOutUntil !== null) {
      showError('You are timed out until ' + hhmm(timedOutUntil)
        + ': you can read the chat but not write.', true);
      // setTimeout takes at most about 24 days; a timeout is at most one.
      timeoutTimer = setTimeout(function () { applyTimeout(null); },
        timedOutUntil.getTime() - Date.now() + 500);
    } else if (was) {
      hideError();
    }
    setConnected(conn !== null && conn.welcomed);
  }

  function hhmm(date) {
    return pad2(date.getHours()) + ':' + pad2(date.getMinutes());
  }

  // ---- Moderation (moderators only; the server checks every action) --------------------------

  function isModerator() {
    var scopes = chat.me && Array.isArray(chat.me.scopes) ? chat.me.scopes : [];
    return scopes.indexOf('MODERATOR') >= 0 && !chat.me.disabledAt;
  }

  // The moderator's buttons on one message line: "Hide" unless it is the streamer's or another
  // moderator's, and "Time out" and "Ban" on a normal user's message other than your own.
  function addModControls(line) {
    var old = line.querySelector('.chat-mod');
    if (old) {
      old.remove();
    }
    var author = line.getAttribute('data-user-id');
    var role = line.getAttribute('data-role');
    var mine = chat.me && author === chat.me.id;
    if (!isModerator() || role === 'streamer' || (role === 'moderator' && !mine)) {
      return;
    }
    var tools = document.createElement('span');
    tools.className = 'chat-mod';
    var name = line.querySelector('.chat-author').textContent;
    tools.appendChild(modButton('Hide', 'Hide this message for everyone', function (button) {
      moderate('/api/chat/messagevisibility', { idArray: [line.getAttribute('data-id')], visible: false },
        button, null);
    }));
    if (!mine && role === '') {
      tools.appendChild(modButton('Time out', 'No messages from ' + name + ' for '
        + TIMEOUT_MINUTES + ' minutes', function (button) {
        moderate('/api/chat/users/timeout', { userId: author, minutes: TIMEOUT_MINUTES }, button,
          function (answer) {
            var until = answer.user && answer.user.timedOutUntil ? new Date(answer.user.timedOutUntil) : null;
            return name + ' is timed out' + (until && !isNaN(until.getTime()) ? ' until ' + hhmm(until) : '') + '.';
          });
      }));
      tools.appendChild(modButton('Ban', 'Remove ' + name + ' from the chat (their messages go too)',
        function (button) {
          if (button.getAttribute('data-confirm') !== 'yes') {
            button.setAttribute('data-confirm', 'yes');
            button.textContent = 'Confirm ban';
            setTimeout(function () {
              button.removeAttribute('data-confirm');
              button.textContent = 'Ban';
            }, CONFIRM_MS);
            return;
          }
          moderate('/api/chat/users/setenabled', { userId: author, enabled: false }, button,
            function () { return name + ' is banned from the chat.'; });
        }));
    }
    line.appendChild(tools);
  }

  function modButton(label, title, onClick) {
    var button = document.createElement('button');
    button.type = 'button';
    button.className = 'chat-mod-button';
    button.textContent = label;
    button.title = title;
    button.addEventListener('click', function () { onClick(button); });
    return button;
  }

  function refreshModControls() {
    Object.keys(lines).forEach(function (id) {
      if (lines[id].classList.contains('chat-msg')) {
        addModControls(lines[id]);
      }
    });
  }

  // One moderator action: `done(answer)` gives the notice to show when the server agreed. What
  // changes for everyone (a message hidden) comes from the server's events, not from here.
  function moderate(path, body, button, done) {
    var token = loadToken();
    if (!token) {
      return;
    }
    button.disabled = true;
    fetch(path + '?accessToken=' + encodeURIComponent(token), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
      cache: 'no-store',
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (answer) {
        if (!response.ok) {
          throw new Error(answer && answer.error ? answer.error : 'refused (HTTP ' + response.status + ')');
        }
        if (done) {
          addNotice(null, null, done(answer), 'chat-notice-system');
        }
      });
    }).catch(function (err) {
      showError('Not done: ' + err.message, false);
    }).then(function () {
      button.disabled = false;
    });
  }

  // ---- Errors under the input box ------------------------------------------------------------

  function showError(text, sticky) {
    if (errorTimer !== null) {
      clearTimeout(errorTimer);
      errorTimer = null;
    }
    els.error.textContent = text;
    els.error.hidden = false;
    if (!sticky) {
      errorTimer = setTimeout(hideError, ERROR_SHOWN_MS);
    }
  }

  function hideError() {
    if (errorTimer !== null) {
      clearTimeout(errorTimer);
      errorTimer = null;
    }
    els.error.hidden = true;
    els.error.textContent = '';
  }

  // ---- Sending -------------------------------------------------------------------------------

  function chars(text) {
    return Array.from(text).length;   // as the server counts: Unicode characters
  }

  function canSend() {
    var text = els.input.value;
    return text.trim() !== '' && chars(text) <= maxChars;
  }

  function updateCount() {
    var n = chars(els.input.value);
    var near = n > maxChars * 0.8;
    els.count.textContent = near ? n + ' / ' + maxChars : '';
    els.count.classList.toggle('chat-count-over', n > maxChars);
    els.send.disabled = !conn || !conn.welcomed || !canSend();
  }

  function sendMessage() {
    var text = els.input.value;
    if (text.trim() === '') {
      return;
    }
    if (chars(text) > maxChars) {
      showError('Messages are at most ' + maxChars + ' characters (this one has '
        + chars(text) + ').', false);
      return;
    }
    if (!send({ type: 'CHAT', body: text })) {
      return;
    }
    pending = text;
    els.input.value = '';
    updateCount();
    hideError();
  }

  function send(event) {
    if (!conn || !conn.welcomed || conn.socket.readyState !== WebSocket.OPEN) {
      showError('Not connected: wait a moment.', false);
      return false;
    }
    conn.socket.send(JSON.stringify(event));
    return true;
  }

  els.form.addEventListener('submit', function (e) {
    e.preventDefault();
    sendMessage();
  });

  els.input.addEventListener('keydown', function (e) {
    // Enter sends; Shift+Enter is a new line; not while an input method is composing.
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      sendMessage();
    }
  });

  els.input.addEventListener('input', updateCount);

  // ---- Changing your name --------------------------------------------------------------------

  function openRename() {
    if (!chat.me) {
      return;
    }
    els.renameInput.value = chat.me.displayName || '';
    els.meName.hidden = true;
    els.renameForm.hidden = false;
    els.renameInput.focus();
    els.renameInput.select();
  }

  function closeRename() {
    if (els.renameForm.hidden) {
      return;
    }
    var hadFocus = els.renameForm.contains(document.activeElement);
    els.renameForm.hidden = true;
    els.meName.hidden = false;
    if (hadFocus && !els.meName.disabled) {
      els.meName.focus();
    }
  }

  els.meName.addEventListener('click', openRename);

  els.renameForm.addEventListener('submit', function (e) {
    e.preventDefault();
    var name = els.renameInput.value.trim();
    if (name !== '' && chat.me && name !== chat.me.displayName) {
      send({ type: 'NAME_CHANGE', newName: name });
    }
    closeRename();
  });

  els.renameCancel.addEventListener('click', closeRename);

  // Keep the focus in the name box while its buttons are clicked (Safari does not focus
  // buttons, and the focusout below would cancel before the click arrives).
  els.renameForm.addEventListener('mousedown', function (e) {
    if (e.target !== els.renameInput) {
      e.preventDefault();
    }
  });

  els.renameForm.addEventListener('keydown', function (e) {
    if (e.key === 'Escape') {
      e.preventDefault();
      closeRename();
    }
  });

  // Clicking elsewhere cancels.
  els.renameForm.addEventListener('focusout', function (e) {
    if (!e.relatedTarget || !els.renameForm.contains(e.relatedTarget)) {
      setTimeout(function () {
        if (!els.renameForm.contains(document.activeElement)) {
          closeRename();
        }
      }, 0);
    }
  });

  // ---- Go ------------------------------------------------------------------------------------

  setConnected(false);
  updateCount();
  connect();
})();
