/*
 * selfcast admin console: the Stream keys section (admin.html #keys-section), on top of admin.js
 * (window.selfcastConsole). The endpoints are in docs/API.md, "Stream keys".
 *
 * Every 3 s GET /api/admin/streamkeys: one row per key (comment, masked key, when created,
 * "in use" for the live publisher's), and who publishes (announced to the Stream health section
 * as a 'selfcast:publisher' event). Per key: "Show" (streamkeys/reveal; "Hide" masks it again),
 * "Copy" (revealed for the copy only), "Edit comment" (streamkeys/comment), "Regenerate" and
 * "Revoke" (each asks for a second click: "Confirm ..."). "Add key" (streamkeys/create) shows the
 * new key in full. "Disconnect the publisher" (publisher/disconnect) while someone publishes.
 * The key from config.toml (id "config") can be shown and copied, not changed.
 * A refusal is shown in the row (or under the form) that asked.
 */
(function () {
  'use strict';

  var C = window.selfcastConsole;
  var KEYS_URL = '/api/admin/streamkeys';
  var DISCONNECT_URL = '/api/admin/publisher/disconnect';
  var POLL_MS = 3000;
  var CONFIRM_MS = 5000;     // a "Confirm ..." button goes back to its first label after this

  var $ = C.byId;
  var els = {
    publisher: $('keys-publisher'),
    disconnect: $('keys-disconnect'),
    error: $('keys-error'),
    list: $('keys-list'),
    done: $('keys-done'),
    addForm: $('keys-add-form'),
    addComment: $('keys-add-comment'),
    add: $('keys-add'),
    addError: $('keys-add-error'),
  };

  var revealed = new Map();   // key id → the whole key, while it is shown
  var rowCount = 0;           // for unique ids in the rows
  var poll = C.poller(POLL_MS, load);

  C.addSection({
    start: poll.start,
    stop: function () {
      poll.stop();
      revealed.clear();
      els.list.textContent = '';
      els.done.textContent = '';
      els.addForm.reset();
      C.hide(els.addError);
      C.hide(els.error);
    },
  });

  function load() {
    return C.request('GET', KEYS_URL).then(function (answer) {
      if (answer.status === 401) {
        C.sessionEnded();
      } else if (answer.status !== 200 || !Array.isArray(answer.data.keys)) {
        C.showText(els.error, C.errorText(answer, 'Loading the stream keys failed'));
      } else {
        showKeys(answer.data.keys, answer.data.publisher || null);
      }
    });
  }

  function showKeys(keys, publisher) {
    var inUse = keys.filter(function (key) { return key.inUse; })[0];
    els.publisher.textContent = publisher
      ? 'Live: ' + publisher.address + ' publishes with “' + (inUse ? inUse.comment : publisher.keyId)
        + '” since ' + C.clock(publisher.since) + '.'
      : 'Nobody is publishing.';
    els.disconnect.hidden = !publisher;
    C.syncList(els.list, keys, function (key) { return key.id; }, keyRow, showKey);
    document.dispatchEvent(new CustomEvent('selfcast:publisher', { detail: publisher }));
  }

  // After a change: the error line of the section goes, the list is read again.
  function changed() {
    C.hide(els.error);
    els.done.textContent = '';
    poll.refresh();
  }

  // ---- One key --------------------------------------------------------------------------------

  function keyRow(key) {
    var n = ++rowCount;
    var fromConfig = key.fromConfig === true;
    var button = function (label, cls) {
      return C.element('button', { className: 'admin-button-secondary ' + cls, type: 'button', text: label });
    };
    var commentInput = C.element('input', { className: 'key-comment-input', type: 'text', attrs: {
      id: 'key-comment-' + n, autocomplete: 'off', maxlength: '64' } });
    var row = C.element('li', { className: 'admin-row key-row' }, [
      C.element('div', { className: 'key-head' }, [
        C.element('span', { className: 'key-comment' }),
        C.element('span', { className: 'admin-badge key-in-use', text: 'in use', hidden: true }),
        C.element('span', { className: 'field-source', text: fromConfig ? 'from config.toml: change it there' : '' }),
      ]),
      C.element('div', { className: 'key-value-line' }, [
        C.element('code', { className: 'key-value' }),
        C.element('span', { className: 'key-created field-hint' }),
      ]),
      C.element('div', { className: 'admin-actions key-actions' }, [
        button('Show', 'key-show'), button('Copy', 'key-copy'),
      ].concat(fromConfig ? [] : [
        button('Edit comment', 'key-edit'), button('Regenerate', 'key-regenerate'), button('Revoke', 'key-revoke'),
      ])),
      C.element('form', { className: 'admin-form admin-inline-form key-edit-form', hidden: true }, [
        C.element('div', { className: 'field' }, [
          C.element('label', { text: 'New comment', attrs: { for: commentInput.id } }), commentInput,
        ]),
        C.element('button', { className: 'button', type: 'submit', text: 'Save comment' }),
        button('Cancel', 'key-edit-cancel'),
      ]),
      C.element('p', { className: 'admin-status key-status', attrs: { role: 'status' } }),
      C.element('p', { className: 'field-error key-error', hidden: true, attrs: { role: 'alert' } }),
    ]);
    wireRow(row, key.id);
    return row;
  }

  function showKey(row, key) {
    var part = function (cls) { return row.querySelector('.' + cls); };
    part('key-comment').textContent = key.comment || '(no comment)';
    part('key-in-use').hidden = !key.inUse;
    row.classList.toggle('is-in-use', key.inUse === true);
    var whole = revealed.get(key.id);
    part('key-value').textContent = whole || key.masked;
    part('key-show').textContent = whole ? 'Hide' : 'Show';
    part('key-created').textContent = key.createdAt ? 'added ' + new Date(key.createdAt).toLocaleString() : '';
    row.setAttribute('aria-label', 'Stream key ' + (key.comment || key.id));
    row.keyComment = key.comment || '';
  }

  function wireRow(row, id) {
    var part = function (cls) { return row.querySelector('.' + cls); };
    var status = part('key-status');
    var error = part('key-error');
    // Each action: clear the row's lines, send, then on 200 read the list again and done(the
    // answer), else show the refusal here.
    var act = function (url, body, done) {
      status.textContent = '';
      C.hide(error);
      return C.request('POST', url, body).then(function (answer) {
        if (answer.status === 401) {
          C.sessionEnded();
        } else if (answer.status === 200) {
          changed();
          done(answer.data);
        } else {
          C.showText(error, C.errorText(answer, 'The server refused'));
        }
      }, function () { /* the banner says why */ });
    };
    var reveal = function (done) {
      return act(KEYS_URL + '/reveal', { id: id }, function (data) { done(String(data.key)); });
    };

    part('key-show').addEventListener('click', function () {
      if (revealed.has(id)) {
        revealed.delete(id);
        changed();
      } else {
        reveal(function (key) { revealed.set(id, key); });
      }
    });
    part('key-copy').addEventListener('click', function () {
      var copy = function (key) {
        copyText(key).then(function () {
          status.textContent = 'Copied to the clipboard.';
        }, function () {
          revealed.set(id, key);
          changed();
          status.textContent = 'The browser does not let this page copy: select the key and copy it.';
        });
      };
      if (revealed.has(id)) {
        copy(revealed.get(id));
      } else {
        reveal(copy);
      }
    });
    if (!part('key-edit')) {
      return;   // the config key
    }
    var form = part('key-edit-form');
    var input = part('key-comment-input');
    part('key-edit').addEventListener('click', function () {
      form.hidden = false;
      input.value = row.keyComment;
      input.focus();
    });
    part('key-edit-cancel').addEventListener('click', function () {
      form.hidden = true;
      C.hide(error);
    });
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      act(KEYS_URL + '/comment', { id: id, comment: input.value.trim() }, function () {
        form.hidden = true;
        status.textContent = 'Comment saved.';
      });
    });
    confirmed(part('key-regenerate'), 'Confirm regenerate', function () {
      act(KEYS_URL + '/regenerate', { id: id }, function (data) {
        revealed.set(id, String(data.key && data.key.key));
        status.textContent = 'A new key: the old one no longer works'
          + (data.disconnected ? ', and its publisher was disconnected.' : '.') + ' Put this one in the encoder.';
      });
    });
    confirmed(part('key-revoke'), 'Confirm revoke', function () {
      var comment = row.keyComment;
      act(KEYS_URL + '/revoke', { id: id }, function (data) {
        revealed.delete(id);
        els.done.textContent = 'Revoked “' + comment + '”'
          + (data.disconnected ? '; its publisher was disconnected.' : '.');
      });
    });
  }

  // A button that acts on its second click: the first turns it into "Confirm ..." for a while.
  function confirmed(button, confirmLabel, action) {
    var label = button.textContent;
    var timer = null;
    var reset = function () {
      clearTimeout(timer);
      button.textContent = label;
      button.removeAttribute('data-confirm');
    };
    button.addEventListener('click', function () {
      if (button.getAttribute('data-confirm') !== 'yes') {
        button.textContent = confirmLabel;
        button.setAttribute('data-confirm', 'yes');
        timer = setTimeout(reset, CONFIRM_MS);
        return;
      }
      reset();
      action();
    });
  }

  // The clipboard, or (on plain http, where browsers keep it from pages) a selected textarea.
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    var area = C.element('textarea', { className: 'visually-hidden' });
    area.value = text;
    document.body.appendChild(area);
    area.select();
    var copied = document.execCommand('copy');
    area.remove();
    return copied ? Promise.resolve() : Promise.reject(new Error('copy refused'));
  }

  // ---- Adding a key and disconnecting -------------------------------------------------------

  els.addForm.addEventListener('submit', function (event) {
    event.preventDefault();
    C.hide(els.addError);
    els.addComment.removeAttribute('aria-invalid');
    els.add.disabled = true;
    C.request('POST', KEYS_URL + '/create', { comment: els.addComment.value.trim() }).then(function (answer) {
      if (answer.status === 401) {
        C.sessionEnded();
      } else if (answer.status === 200 && answer.data.key) {
        revealed.set(answer.data.key.id, String(answer.data.key.key));
        els.addForm.reset();
        changed();
        els.done.textContent = 'Added “' + answer.data.key.comment + '”: its key is shown in full, for the encoder.';
      } else {
        C.showText(els.addError, C.errorText(answer, 'Adding the key failed'));
        els.addComment.setAttribute('aria-invalid', 'true');
        els.addComment.focus();
      }
    }, function () { /* the banner says why */ }).finally(function () {
      els.add.disabled = false;
    });
  });

  els.disconnect.addEventListener('click', function () {
    C.hide(els.error);
    els.disconnect.disabled = true;
    C.request('POST', DISCONNECT_URL, {}).then(function (answer) {
      if (answer.status === 401) {
        C.sessionEnded();
      } else if (answer.status === 200) {
        els.done.textContent = answer.data.disconnected ? 'The publisher was disconnected.' : 'Nobody was publishing.';
        poll.refresh();
      } else {
        C.showText(els.error, C.errorText(answer, 'Disconnecting failed'));
      }
    }, function () { /* the banner says why */ }).finally(function () {
      els.disconnect.disabled = false;
    });
  });
})();
