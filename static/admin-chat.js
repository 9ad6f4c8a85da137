/*
 * selfcast admin console: the Chat section (admin.html #chat-section), on top of admin.js
 * (window.selfcastConsole). The endpoints are in docs/API.md, "Admin API".
 *
 * Every 2.5 s it reads the kept messages (chat/messages, hidden ones included), the connected
 * users (chat/clients), the moderators, the disabled users and the IP bans, and shows:
 *   - the messages, newest last, each with "Hide" (or "Show" for a hidden one):
 *     chat/messagevisibility;
 *   - the users: everyone connected (with their addresses) and everyone who wrote a kept message,
 *     is a moderator or is banned; per user "Ban"/"Unban" (chat/users/setenabled), "Time out"
 *     for the minutes in the field above the list, or "End time-out" (chat/users/timeout),
 *     "Make moderator"/"Remove moderator" (chat/users/setmoderator);
 *   - the IP bans, with a form to add one (chat/users/ipbans/create) and "Remove ban" on each
 *     (chat/users/ipbans/remove);
 *   - whether chat is on, from the Stream health section's 'selfcast:status' events, with a
 *     button that turns it off or on (config/chat/disable).
 * A refusal is shown at the list or form that asked. Names and messages are the visitors' own
 * text: they are put on the page as text only.
 */
(function () {
  'use strict';

  var C = window.selfcastConsole;
  var ADMIN = '/api/admin/';
  var POLL_MS = 2500;

  var $ = C.byId;
  var els = {
    state: $('chat-state'),
    toggle: $('chat-toggle'),
    toggleError: $('chat-toggle-error'),
    messages: $('chat-message-list'),
    messagesError: $('chat-messages-error'),
    minutes: $('chat-timeout-minutes'),
    users: $('chat-user-list'),
    usersError: $('chat-users-error'),
    banForm: $('chat-ban-form'),
    banAddress: $('chat-ban-address'),
    banAdd: $('chat-ban-add'),
    banError: $('chat-ban-error'),
    bans: $('chat-ban-list'),
  };

  var chatEnabled = null;     // from the last status, or the last toggle
  var loadFailed = false;     // the messages' error line says the listings could not be read
  var answered = new Map();   // user id → the user object an action was last answered with
  var poll = C.poller(POLL_MS, load);

  C.addSection({
    start: poll.start,
    stop: function () {
      poll.stop();
      answered.clear();
      chatEnabled = null;
      [els.messages, els.users, els.bans].forEach(function (list) { list.textContent = ''; });
      [els.toggleError, els.messagesError, els.usersError, els.banError].forEach(C.hide);
      els.banForm.reset();
      showChatState();
    },
  });

  // GET each listing; resolves with their data, or with null after saying why at `errorLine`.
  function getAll(paths, errorLine) {
    return Promise.all(paths.map(function (p) { return C.request('GET', ADMIN + p); })).then(function (answers) {
      if (answers.some(function (a) { return a.status === 401; })) {
        C.sessionEnded();
        return null;
      }
      var bad = answers.filter(function (a) { return a.status !== 200 || !Array.isArray(a.data); })[0];
      if (bad) {
        C.showText(errorLine, C.errorText(bad, 'Loading the chat failed'));
        loadFailed = true;
        return null;
      }
      if (loadFailed) {
        C.hide(errorLine);
        loadFailed = false;
      }
      return answers.map(function (a) { return a.data; });
    });
  }

  function load() {
    return getAll(['chat/messages', 'chat/clients', 'chat/users/moderators', 'chat/users/disabled',
      'chat/users/ipbans'], els.messagesError).then(function (lists) {
      if (lists === null) return;
      showMessages(lists[0]);
      showUsers(lists[0], lists[1], lists[2], lists[3]);
      showBans(lists[4]);
    });
  }

  // An action: POST `body` to `path`; on 200 done(data) and read everything again, else the
  // refusal at `errorLine`.
  function act(path, body, errorLine, done) {
    C.hide(errorLine);
    return C.request('POST', ADMIN + path, body).then(function (answer) {
      if (answer.status === 401) {
        C.sessionEnded();
      } else if (answer.status === 200) {
        if (done) done(answer.data);
        poll.refresh();
      } else {
        C.showText(errorLine, C.errorText(answer, 'The server refused'));
      }
    }, function () { /* the banner says why */ });
  }

  function button(label, onClick) {
    var b = C.element('button', { className: 'admin-button-secondary', type: 'button', text: label });
    b.addEventListener('click', onClick);
    return b;
  }

  // ---- On or off ------------------------------------------------------------------------------

  document.addEventListener('selfcast:status', function (event) {
    if (typeof event.detail.chatEnabled === 'boolean') {
      chatEnabled = event.detail.chatEnabled;
      showChatState();
    }
  });

  function showChatState() {
    els.toggle.hidden = chatEnabled === null;
    els.state.textContent = chatEnabled === null ? '' : chatEnabled ? 'Chat is on.' : 'Chat is off: viewers read but cannot write.';
    els.toggle.textContent = chatEnabled ? 'Turn chat off' : 'Turn chat on';
  }

  els.toggle.addEventListener('click', function () {
    els.toggle.disabled = true;
    act('config/chat/disable', { value: chatEnabled === true }, els.toggleError, function (data) {
      chatEnabled = data.chatEnabled === true;
      showChatState();
    }).finally(function () {
      els.toggle.disabled = false;
    });
  });

  // ---- Messages -------------------------------------------------------------------------------

  function showMessages(messages) {
    var list = els.messages;
    var atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 8;
    C.syncList(list, messages, function (m) { return m.id; }, messageRow, showMessage);
    if (atBottom) {
      list.scrollTop = list.scrollHeight;
    }
  }

  function messageRow(message) {
    var row = C.element('li', { className: 'admin-row chat-message' }, [
      C.element('span', { className: 'chat-message-time field-hint', text: C.clock(message.timestamp) }),
      C.element('span', { className: 'chat-message-name' }),
      C.element('span', { className: 'chat-message-body' }),
      C.element('span', { className: 'chat-message-hidden field-hint' }),
      button('Hide', function () {
        var hidden = row.classList.contains('is-hidden');
        act('chat/messagevisibility', { idArray: [message.id], visible: hidden }, els.messagesError);
      }),
    ]);
    return row;
  }

  function showMessage(row, message) {
    var user = message.user || {};
    var hidden = message.visible === false;
    row.querySelector('.chat-message-name').textContent = String(user.displayName || '?');
    row.querySelector('.chat-message-body').textContent = String(message.body || '');
    row.querySelector('.chat-message-hidden').textContent = hidden
      ? 'hidden ' + C.clock(message.hiddenAt) + (message.hiddenBy === 'streamer' ? ' by you' : ' by a moderator') : '';
    row.querySelector('button').textContent = hidden ? 'Show' : 'Hide';
    row.classList.toggle('is-hidden', hidden);
    row.classList.toggle('is-streamer', user.id === 'streamer');
  }

  // ---- Users ----------------------------------------------------------------------------------

  // Everyone worth a row, connected ones first; each { user (the newest object known), addresses,
  // connections, moderator, disabled }.
  function usersOf(messages, clients, moderators, disabled) {
    var rows = new Map();
    var add = function (user) {
      if (!user || typeof user.id !== 'string' || user.id === 'streamer') return null;
      var row = rows.get(user.id);
      if (!row) {
        row = { user: answered.get(user.id) || user, addresses: [], connections: 0, moderator: false, disabled: false };
        rows.set(user.id, row);
      }
      return row;
    };
    clients.forEach(function (client) {
      var row = add(client.user);
      if (!row) return;
      row.user = client.user;
      row.connections += 1;
      if (row.addresses.indexOf(client.ipAddress) < 0) row.addresses.push(String(client.ipAddress));
    });
    moderators.forEach(function (user) { var row = add(user); if (row) { row.user = user; row.moderator = true; } });
    disabled.forEach(function (user) { var row = add(user); if (row) { row.user = user; row.disabled = true; } });
    messages.slice().reverse().forEach(function (m) { add(m.user); });
    return Array.from(rows.values());
  }

  function showUsers(messages, clients, moderators, disabled) {
    C.syncList(els.users, usersOf(messages, clients, moderators, disabled),
      function (row) { return row.user.id; }, userRow, showUser);
  }

  function userRow(entry) {
    var id = entry.user.id;
    var row = C.element('li', { className: 'admin-row chat-user' }, [
      C.element('div', { className: 'chat-user-head' }, [
        C.element('span', { className: 'chat-user-name' }),
        C.element('span', { className: 'admin-badge chat-user-moderator', text: 'moderator', hidden: true }),
        C.element('span', { className: 'admin-badge admin-badge-bad chat-user-banned', text: 'banned', hidden: true }),
        C.element('span', { className: 'admin-badge admin-badge-bad chat-user-timeout', hidden: true }),
      ]),
      C.element('p', { className: 'chat-user-where field-hint' }),
      C.element('div', { className: 'admin-actions' }, [
        button('Ban', function () {
          act('chat/users/setenabled', { userId: id, enabled: row.banned }, els.usersError, remember);
        }),
        button('Time out', function () {
          var minutes = row.timedOut ? 0 : Number(els.minutes.value);
          if (!row.timedOut && !(Number.isInteger(minutes) && minutes >= 1 && minutes <= 1440)) {
            C.showText(els.usersError, 'The time-out length is a whole number of minutes, 1 to 1440.');
            els.minutes.focus();
            return;
          }
          act('chat/users/timeout', { userId: id, minutes: minutes }, els.usersError, remember);
        }),
        button('Make moderator', function () {
          act('chat/users/setmoderator', { userId: id, isModerator: !row.moderator }, els.usersError, remember);
        }),
      ]),
    ]);
    return row;
  }

  // The user object an action answered with is the newest: it wins until a listing has theirs.
  function remember(data) {
    if (data && data.user && typeof data.user.id === 'string') {
      answered.set(data.user.id, data.user);
    }
  }

  function showUser(row, entry) {
    var user = entry.user;
    var until = user.timedOutUntil && new Date(user.timedOutUntil) > new Date() ? user.timedOutUntil : null;
    row.banned = entry.disabled;
    row.moderator = entry.moderator;
    row.timedOut = until !== null;
    row.querySelector('.chat-user-name').textContent = String(user.displayName || user.id);
    row.querySelector('.chat-user-moderator').hidden = !entry.moderator;
    row.querySelector('.chat-user-banned').hidden = !entry.disabled;
    var timeout = row.querySelector('.chat-user-timeout');
    timeout.hidden = until === null;
    timeout.textContent = until ? 'timed out until ' + C.clock(until) : '';
    row.querySelector('.chat-user-where').textContent = entry.connections > 0
      ? 'Connected from ' + entry.addresses.join(', ') + (entry.connections > 1 ? ' (' + entry.connections + ' pages)' : '')
      : 'Not connected.';
    var buttons = row.querySelectorAll('button');
    buttons[0].textContent = entry.disabled ? 'Unban' : 'Ban';
    buttons[1].textContent = until ? 'End time-out' : 'Time out';
    buttons[2].textContent = entry.moderator ? 'Remove moderator' : 'Make moderator';
    row.setAttribute('aria-label', 'Chat user ' + (user.displayName || user.id));
  }

  // ---- IP bans --------------------------------------------------------------------------------

  function showBans(bans) {
    C.syncList(els.bans, bans, function (ban) { return ban.ipAddress; }, banRow, function (row, ban) {
      row.querySelector('.chat-ban-address').textContent = String(ban.ipAddress);
      row.querySelector('.chat-ban-since').textContent = 'since ' + new Date(ban.createdAt).toLocaleString();
    });
  }

  function banRow(ban) {
    var errorLine = C.element('p', { className: 'field-error', hidden: true, attrs: { role: 'alert' } });
    return C.element('li', { className: 'admin-row chat-ban', attrs: { 'aria-label': 'IP ban ' + ban.ipAddress } }, [
      C.element('code', { className: 'chat-ban-address' }),
      C.element('span', { className: 'chat-ban-since field-hint' }),
      button('Remove ban', function () {
        act('chat/users/ipbans/remove', { value: ban.ipAddress }, errorLine);
      }),
      errorLine,
    ]);
  }

  els.banForm.addEventListener('submit', function (event) {
    event.preventDefault();
    els.banAddress.removeAttribute('aria-invalid');
    els.banAdd.disabled = true;
    act('chat/users/ipbans/create', { value: els.banAddress.value.trim() }, els.banError, function () {
      els.banForm.reset();
    }).finally(function () {
      els.banAdd.disabled = false;
      if (!els.banError.hidden) {
        els.banAddress.setAttribute('aria-invalid', 'true');
        els.banAddress.focus();
      }
    });
  });
})();
