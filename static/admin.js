/*
 * selfcast admin console (admin.html, served at /admin). Plain JavaScript, no build step,
 * nothing loaded from the internet.
 *
 * What it does (the endpoints are described in docs/API.md):
 *   1. On load it asks GET /api/admin/session whether this browser is signed in: 200 shows the
 *      console, 401 the sign-in form.
 *   2. Signing in is POST /api/admin/session {"password"}: the server sets an HttpOnly session
 *      cookie and answers a CSRF token, which every later change sends back as X-CSRF-Token with
 *      a JSON body. A wrong password, or too many of them (429: wait N seconds, or locked out),
 *      is said under the password field.
 *   3. The Page and Chat settings sections (one settingsForm each): GET /api/admin/settings
 *      fills the fields and says beside each where its
 *      value comes from ("from config.toml", "set here", "default"). "Save" sends the fields that
 *      changed to POST /api/admin/settings/page (or /chat); "Reset" sends null for one field, which puts it
 *      back to config.toml's value or the default. A refusal (400 with `field`) is shown at that
 *      field; the server then saved nothing. Problems the server found with the stored settings
 *      (`problems`) are shown in a banner.
 *      The Page section's images (logo, offline image) are uploaded as soon as a file is chosen:
 *      POST /api/admin/images/logo (or offline) with the file itself as the body; "Remove" is
 *      DELETE of the same. A refusal is said at the image's field.
 *   4. The Password section: POST /api/admin/password; disabled, with the reason, when
 *      `[admin] password` in config.toml sets the password.
 *   5. "Sign out": POST /api/admin/session/end.
 *   6. The other sections (stream health, stream keys, chat moderation) live in admin-health.js,
 *      admin-keys.js and admin-chat.js. They use what this file shares as window.selfcastConsole
 *      (requests, errors, list building, polling) and register with addSection: each section is
 *      started when the console shows and stopped (its polling ends, its lists empty) when it
 *      goes.
 * When the session ends elsewhere (it expired, the password was changed in another browser),
 * the next request answers 401 and the sign-in form comes back.
 *
 * Everything from the server is put on the page as text (textContent, input values).
 * For tests and debugging, window.selfcastAdmin holds `state` ('loading' | 'signed-out' |
 * 'signed-in'), `page` (the page settings as the server last sent them: values, sources) and
 * `images` (the logo and offline image shown: { logo, offline }, each the server's info or null).
 */
(function () {
  'use strict';

  // ---- Settings ------------------------------------------------------------------------------

  var SESSION_URL = '/api/admin/session';
  var SIGN_OUT_URL = '/api/admin/session/end';
  var SETTINGS_URL = '/api/admin/settings';
  var PAGE_SETTINGS_URL = '/api/admin/settings/page';
  var CHAT_SETTINGS_URL = '/api/admin/settings/chat';
  var PASSWORD_URL = '/api/admin/password';
  var IMAGES_URL = '/api/admin/images/';   // + "logo" or "offline"
  var MAX_IMAGE_BYTES = 4 * 1024 * 1024;   // the server's limit (413 above it)
  var REQUEST_TIMEOUT_MS = 15000;

  // The Page section's fields, as the API names them (the form's ids are "page-" + key).
  var PAGE_KEYS = ['streamTitle', 'summary', 'tags', 'offlineMessage', 'socialLinks', 'customCss'];
  // The Chat settings section's fields (the form's ids are "chatset-" + key); chat on/off is
  // the Chat section's switch (admin-chat.js).
  var CHAT_KEYS = ['streamerName', 'maxMessageChars', 'slowModeSeconds', 'maxConnections'];
  var SOURCE_WORDS = { config: 'from config.toml', console: 'set here', default: 'default' };

  // ---- Page elements and state ---------------------------------------------------------------

  function $(id) {
    return document.getElementById(id);
  }
  var els = {
    loading: $('admin-loading'),
    error: $('admin-error'),
    signOut: $('sign-out'),
    signIn: $('sign-in'),
    signInNotice: $('sign-in-notice'),
    signInForm: $('sign-in-form'),
    signInPassword: $('sign-in-password'),
    signInError: $('sign-in-error'),
    signInButton: $('sign-in-button'),
    console: $('console'),
    problems: $('problems'),
    problemsList: $('problems-list'),
    socialRows: $('social-rows'),
    socialAdd: $('social-add'),
    socialTemplate: $('social-row-template'),
    passwordFromConfig: $('password-from-config'),
    passwordForm: $('password-form'),
    passwordFields: $('password-fields'),
    passwordOld: $('password-old'),
    passwordNew: $('password-new'),
    passwordRepeat: $('password-repeat'),
    passwordStatus: $('password-status'),
  };

  var admin = {
    state: 'loading',
    page: null,          // { values, sources } from the server
  };
  window.selfcastAdmin = admin;

  var sections = [];         // { start, stop } of the other sections' scripts
  var forms = [];            // the settings forms (settingsForm), filled by loadSettings
  var csrfToken = null;      // from the session; sent with every change
  var retryTimer = null;     // re-enables "Sign in" after a 429
  var socialRowCount = 0;    // for unique ids of the social link rows

  // ---- Requests ------------------------------------------------------------------------------

  // Resolves with { status, data } (data: the JSON answer, {} if there is none); rejects only
  // when the server cannot be reached. Changes carry the CSRF token and a JSON body, or, when
  // `body` is a Blob (a chosen File), that file itself with its own Content-Type.
  function request(method, url, body) {
    var init = { method: method, cache: 'no-store', credentials: 'same-origin', headers: {} };
    if (method !== 'GET') {
      if (csrfToken !== null) {
        init.headers['X-CSRF-Token'] = csrfToken;
      }
      if (body instanceof Blob) {
        init.headers['Content-Type'] = body.type || 'application/octet-stream';
        init.body = body;
      } else {
        init.headers['Content-Type'] = 'application/json';
        init.body = JSON.stringify(body || {});
      }
    }
    var controller = new AbortController();
    var timer = setTimeout(function () { controller.abort(); }, REQUEST_TIMEOUT_MS);
    init.signal = controller.signal;
    return fetch(url, init)
      .then(function (response) {
        return response.text().then(function (text) {
          var data = {};
          try {
            data = text === '' ? {} : JSON.parse(text);
          } catch (e) {
            data = {};
          }
          hide(els.error);
          return {
            status: response.status,
            data: data !== null && typeof data === 'object' ? data : {},
            retryAfter: response.headers.get('Retry-After'),
          };
        });
      }, function (err) {
        var why = err && err.name === 'AbortError' ? 'no answer within '
          + REQUEST_TIMEOUT_MS / 1000 + ' s' : (err && err.message) || 'network error';
        showText(els.error, 'Cannot reach selfcast (' + why + '). Check that it is running, then try again.');
        throw err;
      })
      .finally(function () { clearTimeout(timer); });
  }

  // The server's own words for a refusal (as a sentence), or what failed and its HTTP status.
  function errorText(answer, what) {
    var error = answer.data.error;
    if (typeof error === 'string' && error !== '') {
      return error.charAt(0).toUpperCase() + error.slice(1) + (/[.!?]$/.test(error) ? '' : '.');
    }
    return what + ' (HTTP ' + answer.status + ').';
  }

  // How long a 429 says to wait, in seconds.
  function retrySeconds(answer) {
    var seconds = Number(answer.data.retryAfterSeconds);
    return seconds >= 0 ? seconds : Number(answer.retryAfter) || 0;
  }

  // A 429's "wait" in words: the server's reason and how long (unless its words say already).
  function waitText(answer) {
    var reason = errorText(answer, 'Too many wrong passwords');
    if (/\d/.test(reason)) {
      return reason;
    }
    var seconds = Math.ceil(retrySeconds(answer));
    var wait = seconds >= 120 ? Math.ceil(seconds / 60) + ' minutes'
      : seconds === 1 ? '1 second' : seconds + ' seconds';
    return reason + (answer.data.lockedOut ? ' Locked out: try again in ' : ' Try again in ')
      + wait + '.';
  }

  // ---- Showing and hiding --------------------------------------------------------------------

  function hide(el) {
    el.hidden = true;
    el.textContent = '';
  }

  function showText(el, text) {
    el.textContent = text;
    el.hidden = false;
  }

  // Which view: 'signed-out' (the form) or 'signed-in' (the console).
  function showView(state) {
    admin.state = state;
    els.loading.hidden = true;
    els.signIn.hidden = state !== 'signed-out';
    els.console.hidden = state !== 'signed-in';
    els.signOut.hidden = state !== 'signed-in';
  }

  // ---- Signing in and out --------------------------------------------------------------------

  // Ask the server whether this browser is signed in; show the console or the form.
  function checkSession() {
    return request('GET', SESSION_URL).then(function (answer) {
      if (answer.status === 200 && typeof answer.data.csrfToken === 'string') {
        enterConsole(answer.data);
      } else if (answer.status === 401 || answer.status === 200) {
        // 200 without a token: the browser sent Basic credentials it keeps from the admin API,
        // which no "Sign out" can end. The form makes a session of its own.
        showSignIn('');
      } else {
        showSignIn('');
        showText(els.signInError, errorText(answer, 'Asking whether you are signed in failed'));
      }
    }, function () {
      if (admin.state === 'loading') {
        els.loading.hidden = true;
      }
    });
  }

  function showSignIn(notice) {
    sections.forEach(function (section) { section.stop(); });
    csrfToken = null;
    forms.forEach(function (form) { form.reset(); });
    pageImages.reset();
    els.passwordForm.reset();
    els.passwordStatus.textContent = '';
    if (notice) {
      showText(els.signInNotice, notice);
    } else {
      hide(els.signInNotice);
    }
    hide(els.signInError);
    showView('signed-out');
    els.signInPassword.focus();
  }

  // Any console request answered 401: the session is gone (expired, or ended elsewhere).
  function sessionEnded() {
    showSignIn('Your session has ended. Sign in again.');
  }

  els.signInForm.addEventListener('submit', function (event) {
    event.preventDefault();
    hide(els.signInError);
    hide(els.signInNotice);
    var password = els.signInPassword.value;
    if (password === '') {
      showText(els.signInError, 'Enter the password.');
      els.signInPassword.focus();
      return;
    }
    els.signInButton.disabled = true;
    request('POST', SESSION_URL, { password: password }).then(function (answer) {
      if (answer.status === 200 && typeof answer.data.csrfToken === 'string') {
        els.signInPassword.value = '';
        els.signInButton.disabled = false;
        csrfToken = answer.data.csrfToken;
        return checkSession();   // the session's details (passwordFromConfig) and the console
      }
      if (answer.status === 429) {
        // Slowed down or locked out: "Sign in" comes back when the wait is over.
        showText(els.signInError, waitText(answer));
        clearTimeout(retryTimer);
        retryTimer = setTimeout(function () {
          els.signInButton.disabled = false;
        }, retrySeconds(answer) * 1000);
      } else {
        showText(els.signInError, answer.status === 401 && !answer.data.error
          ? 'Wrong password.' : errorText(answer, 'Signing in failed'));
        els.signInButton.disabled = false;
      }
      els.signInPassword.select();
    }, function () {
      els.signInButton.disabled = false;
    });
  });

  els.signOut.addEventListener('click', function () {
    els.signOut.disabled = true;
    request('POST', SIGN_OUT_URL, {}).then(function (answer) {
      if (answer.status === 200 || answer.status === 401) {
        showSignIn('You are signed out.');
      } else {
        showText(els.error, errorText(answer, 'Signing out failed'));
      }
    }, function () { /* the banner says why */ }).finally(function () {
      els.signOut.disabled = false;
    });
  });

  // ---- The console ---------------------------------------------------------------------------

  function enterConsole(session) {
    csrfToken = session.csrfToken;
    var fromConfig = session.passwordFromConfig === true;
    els.passwordFromConfig.hidden = !fromConfig;
    els.passwordFields.disabled = fromConfig;
    showView('signed-in');
    loadSettings();
    sections.forEach(function (section) { section.start(); });
  }

  function loadSettings() {
    forms.forEach(function (form) { form.save.disabled = true; });
    return request('GET', SETTINGS_URL).then(function (answer) {
      if (answer.status === 401) {
        sessionEnded();
        return;
      }
      showProblems(answer.data && answer.data.problems);
      pageImages.show(answer.status === 200 ? answer.data.images : null);
      forms.forEach(function (form) {
        var view = answer.status === 200 ? answer.data[form.section] : null;
        if (!isView(view)) {
          form.status.textContent = errorText(answer, 'Loading the settings failed');
          return;
        }
        form.show(view, form.keys);
        form.save.disabled = false;
      });
    }, function () { /* the banner says why */ });
  }

  function isView(view) {
    return view !== null && typeof view === 'object' && view.values && view.sources;
  }

  function showProblems(problems) {
    var list = Array.isArray(problems) ? problems.filter(function (p) {
      return typeof p === 'string' && p !== '';
    }) : [];
    els.problemsList.textContent = '';
    list.forEach(function (problem) {
      var item = document.createElement('li');
      item.textContent = problem;
      els.problemsList.appendChild(item);
    });
    els.problems.hidden = list.length === 0;
  }

  // ---- A settings form (Page, Chat settings) -------------------------------------------------
  //
  // spec: section (the API's name: "page", "chat"), prefix (of the form's ids: prefix + "-form",
  // "-save", "-status", and per key prefix-key, -key-source, -key-error, -key-label), url (POST),
  // keys, and per key how the form reads and writes it (read/write, default: the control's
  // value as text; normalised: the server's value as read would give it back). `onShow(view)`
  // is told whenever the server's settings are shown.
  function settingsForm(spec) {
    var form = {
      section: spec.section,
      keys: spec.keys,
      view: null,
      element: $(spec.prefix + '-form'),
      save: $(spec.prefix + '-save'),
      status: $(spec.prefix + '-status'),
    };
    var read = spec.read || function (key) { return control(key).value; };
    var write = spec.write || function (key, value) {
      control(key).value = value === undefined || value === null ? '' : String(value);
    };
    var normalised = spec.normalised || function (key, value) {
      return value === undefined || value === null ? '' : String(value);
    };

    function control(key) {
      return $(spec.prefix + '-' + key);
    }

    function fieldError(key) {
      return $(spec.prefix + '-' + key + '-error');
    }

    function fieldName(key) {
      var label = document.querySelector('label[for="' + spec.prefix + '-' + key + '"]')
        || $(spec.prefix + '-' + key + '-label');
      return label ? label.textContent : key;
    }

    // Whether the form's value of `key` differs from the server's.
    function changed(key) {
      return JSON.stringify(read(key)) !== JSON.stringify(normalised(key, form.view.values[key]));
    }

    // Show the server's settings: the values of `keys` (the others keep what is being edited),
    // every field's source and Reset button.
    form.show = function (view, keys) {
      form.view = view;
      if (spec.section === 'page') admin.page = view;
      keys.forEach(function (key) { write(key, view.values[key]); });
      spec.keys.forEach(function (key) {
        var source = view.sources[key];
        $(spec.prefix + '-' + key + '-source').textContent = SOURCE_WORDS[source] || '';
        form.element.querySelector('[data-reset="' + key + '"]').hidden = source !== 'console';
      });
      if (spec.onShow) spec.onShow(view);
    };

    form.clearErrors = function () {
      spec.keys.forEach(function (key) {
        hide(fieldError(key));
        if (control(key)) control(key).removeAttribute('aria-invalid');
      });
    };

    form.reset = function () {
      form.view = null;
      form.element.reset();
      form.clearErrors();
      form.status.textContent = '';
      if (spec.onReset) spec.onReset();
    };

    form.hideError = function (key) {
      hide(fieldError(key));
    };

    // A 400's `field` ("streamTitle", or e.g. "socialLinks[2].url") → the field that shows it.
    function showRefusal(answer) {
      var match = /^[A-Za-z]+/.exec(typeof answer.data.field === 'string' ? answer.data.field : '');
      var key = match && spec.keys.indexOf(match[0]) >= 0 ? match[0] : null;
      var text = errorText(answer, 'The server refused the change');
      if (key === null) {
        form.status.textContent = 'Not saved: ' + text;
        return;
      }
      showText(fieldError(key), text);
      form.status.textContent = 'Not saved: see ' + fieldName(key) + '.';
      var input = (spec.focusOf && spec.focusOf(key)) || control(key);
      if (input === control(key)) input.setAttribute('aria-invalid', 'true');
      input.focus();
    }

    // Send `changes` (API keys → values, null: back to config.toml / default). On success the
    // fields in `show` take the server's values and the status says done(the new settings).
    function send(changes, show, done) {
      form.save.disabled = true;
      form.clearErrors();
      form.status.textContent = 'Saving…';
      return request('POST', spec.url, changes).then(function (answer) {
        if (answer.status === 401) {
          sessionEnded();
        } else if (answer.status === 200 && isView(answer.data[spec.section])) {
          form.show(answer.data[spec.section], show);
          form.status.textContent = done(answer.data[spec.section]);
        } else if (answer.status === 400) {
          showRefusal(answer);
        } else {
          form.status.textContent = 'Not saved: ' + errorText(answer, 'Saving failed');
        }
      }, function () {
        form.status.textContent = 'Not saved: selfcast cannot be reached.';
      }).finally(function () {
        form.save.disabled = form.view === null;
      });
    }

    form.element.addEventListener('submit', function (event) {
      event.preventDefault();
      if (form.view === null) return;
      var changes = {};
      var keys = spec.keys.filter(changed);
      keys.forEach(function (key) { changes[key] = read(key); });
      if (keys.length === 0) {
        form.clearErrors();
        form.status.textContent = 'Nothing to save: no field was changed.';
        return;
      }
      // Every field shows the server's value afterwards: those not sent were not changed.
      send(changes, spec.keys, function () { return spec.savedText; });
    });

    form.element.addEventListener('click', function (event) {
      var button = event.target.closest('[data-reset]');
      if (!button || form.view === null) return;
      var key = button.getAttribute('data-reset');
      var changes = {};
      changes[key] = null;
      send(changes, [key], function (view) {
        return fieldName(key) + (view.sources[key] === 'config' ? ' is back to its value in config.toml.'
          : ' is back to the default.');
      });
    });

    // Editing a field clears its error.
    form.element.addEventListener('input', function (event) {
      var field = event.target.closest('[data-key]');
      if (field) {
        hide(fieldError(field.getAttribute('data-key')));
        event.target.removeAttribute('aria-invalid');
      }
    });

    forms.push(form);
    return form;
  }

  // ---- The Page section ----------------------------------------------------------------------

  var pageForm = settingsForm({
    section: 'page',
    prefix: 'page',
    url: PAGE_SETTINGS_URL,
    keys: PAGE_KEYS,
    savedText: 'Saved. Open viewer pages follow within a few seconds.',
    read: function (key) {
      switch (key) {
        case 'tags':
          return $('page-tags').value.split(',').map(function (tag) { return tag.trim(); })
            .filter(function (tag) { return tag !== ''; });
        case 'socialLinks':
          return Array.prototype.map.call(els.socialRows.children, function (row) {
            return {
              platform: row.querySelector('.social-platform').value.trim(),
              url: row.querySelector('.social-url').value.trim(),
            };
          }).filter(function (link) { return link.platform !== '' || link.url !== ''; });
        default:
          return $('page-' + key).value;
      }
    },
    write: function (key, value) {
      switch (key) {
        case 'tags':
          $('page-tags').value = Array.isArray(value) ? value.join(', ') : '';
          break;
        case 'socialLinks':
          els.socialRows.textContent = '';
          (Array.isArray(value) ? value : []).forEach(addSocialRow);
          break;
        default:
          $('page-' + key).value = typeof value === 'string' ? value : '';
      }
    },
    // The server's value as read gives it back (tags and links without empty ones).
    normalised: function (key, value) {
      if (key === 'tags') return Array.isArray(value) ? value : [];
      if (key === 'socialLinks') {
        return (Array.isArray(value) ? value : []).map(function (link) {
          return { platform: String(link.platform || ''), url: String(link.url || '') };
        });
      }
      return typeof value === 'string' ? value : '';
    },
    focusOf: function (key) {
      return key === 'socialLinks' ? els.socialRows.querySelector('input') || els.socialAdd : null;
    },
    onReset: function () {
      admin.page = null;
      els.socialRows.textContent = '';
    },
  });

  // ---- The Page section's images: the logo and the offline image ----------------------------
  //
  // Not part of the Page form's Save: choosing a file uploads it at once (POST
  // /api/admin/images/<slot>, the file itself as the body), "Remove" deletes it (DELETE). Each
  // field shows the image in use small, with its size ("64×32, 1.2 KiB"), or "None". A refusal
  // (400 with `field`, 413, 415) is said at the field, and the image in use stays. The ids are
  // "page-" + slot, "-preview", "-info", "-remove", "-error", "-status".

  var pageImages = (function () {
    var SLOTS = ['logo', 'offline'];
    var shown = { logo: null, offline: null };   // the server's info of each, null: none

    function part(slot, name) {
      return $('page-' + slot + (name ? '-' + name : ''));
    }

    function isInfo(info) {
      return info !== null && typeof info === 'object' && typeof info.url === 'string'
        && /^\/(?!\/)/.test(info.url);
    }

    function sizeText(info) {
      var kib = Number(info.bytes) / 1024;
      var size = kib < 10 ? kib.toFixed(1) : String(Math.round(kib));
      return Number(info.width) + '×' + Number(info.height) + ', ' + size + ' KiB';
    }

    // Show `info` (or none) as the image in use.
    function showImage(slot, info) {
      var preview = part(slot, 'preview');
      shown[slot] = isInfo(info) ? info : null;
      if (shown[slot]) {
        if (preview.getAttribute('src') !== info.url) preview.src = info.url;
        preview.hidden = false;
        part(slot, 'info').textContent = sizeText(info);
      } else {
        preview.hidden = true;
        preview.removeAttribute('src');
        part(slot, 'info').textContent = 'None';
      }
      part(slot, 'remove').hidden = shown[slot] === null;
    }

    function clearError(slot) {
      hide(part(slot, 'error'));
      part(slot).removeAttribute('aria-invalid');
    }

    function showError(slot, text) {
      showText(part(slot, 'error'), text);
      part(slot).setAttribute('aria-invalid', 'true');
      part(slot, 'status').textContent = '';
    }

    function busy(slot, on) {
      part(slot).disabled = on;
      part(slot, 'remove').disabled = on;
    }

    // Why an upload was refused, at the field: the server's words when it has some to say.
    function refusal(answer) {
      if (answer.status === 413) return 'The file is larger than 4 MiB.';
      if (answer.status === 415) return 'Choose a PNG, JPEG or WebP image.';
      return errorText(answer, 'The server refused the image');
    }

    function upload(slot, file) {
      clearError(slot);
      if (file.size > MAX_IMAGE_BYTES) {
        showError(slot, 'The file is larger than 4 MiB.');
        return;
      }
      busy(slot, true);
      part(slot, 'status').textContent = 'Uploading…';
      request('POST', IMAGES_URL + slot, file).then(function (answer) {
        if (answer.status === 401) {
          sessionEnded();
        } else if (answer.status === 200 && isInfo(answer.data[slot])) {
          showImage(slot, answer.data[slot]);
          part(slot, 'status').textContent = 'Uploaded. Open viewer pages follow within a few seconds.';
        } else if (answer.status === 400 || answer.status === 413 || answer.status === 415) {
          showError(slot, refusal(answer));
        } else {
          part(slot, 'status').textContent = 'Not uploaded: ' + errorText(answer, 'Uploading failed');
        }
      }, function () {
        part(slot, 'status').textContent = 'Not uploaded: selfcast cannot be reached.';
      }).finally(function () {
        busy(slot, false);
        part(slot).value = '';   // choosing the same file again uploads it again
      });
    }

    function remove(slot) {
      clearError(slot);
      busy(slot, true);
      part(slot, 'status').textContent = 'Removing…';
      request('DELETE', IMAGES_URL + slot).then(function (answer) {
        if (answer.status === 401) {
          sessionEnded();
        } else if (answer.status === 200) {
          showImage(slot, null);
          part(slot, 'status').textContent = 'Removed. Open viewer pages follow within a few seconds.';
          part(slot).focus();
        } else {
          part(slot, 'status').textContent = 'Not removed: ' + errorText(answer, 'Removing failed');
        }
      }, function () {
        part(slot, 'status').textContent = 'Not removed: selfcast cannot be reached.';
      }).finally(function () {
        busy(slot, false);
      });
    }

    SLOTS.forEach(function (slot) {
      part(slot).addEventListener('change', function () {
        var file = part(slot).files[0];
        if (file) upload(slot, file);
      });
      part(slot, 'remove').addEventListener('click', function () { remove(slot); });
    });

    return {
      // `images` from GET /api/admin/settings ({ logo, offline }, each info or null).
      show: function (images) {
        SLOTS.forEach(function (slot) {
          showImage(slot, images && typeof images === 'object' ? images[slot] : null);
        });
      },
      reset: function () {
        SLOTS.forEach(function (slot) {
          showImage(slot, null);
          clearError(slot);
          part(slot).value = '';
          part(slot, 'status').textContent = '';
        });
      },
      shown: shown,
    };
  })();
  admin.images = pageImages.shown;

  // ---- The Chat settings section -------------------------------------------------------------

  settingsForm({
    section: 'chat',
    prefix: 'chatset',
    url: CHAT_SETTINGS_URL,
    keys: CHAT_KEYS,
    savedText: 'Saved. The chat follows at once.',
    read: function (key) {
      var input = $('chatset-' + key);
      if (key === 'streamerName') return input.value;
      // A number field: what was typed, as a number when it is one (the server says what is wrong).
      return input.value.trim() !== '' && !isNaN(Number(input.value)) ? Number(input.value) : input.value;
    },
    normalised: function (key, value) {
      return key === 'streamerName' ? String(value) : value;
    },
  });

  // ---- Social links: rows of platform + URL --------------------------------------------------

  function addSocialRow(link) {
    var row = els.socialTemplate.content.firstElementChild.cloneNode(true);
    var n = ++socialRowCount;
    var labels = row.querySelectorAll('.social-label');
    var platform = row.querySelector('.social-platform');
    var url = row.querySelector('.social-url');
    platform.id = 'social-platform-' + n;
    url.id = 'social-url-' + n;
    labels[0].htmlFor = platform.id;
    labels[1].htmlFor = url.id;
    platform.value = link && typeof link.platform === 'string' ? link.platform : '';
    url.value = link && typeof link.url === 'string' ? link.url : '';
    row.querySelector('.social-remove').addEventListener('click', function () {
      row.remove();
      numberSocialRows();
      pageForm.hideError('socialLinks');
      els.socialAdd.focus();
    });
    els.socialRows.appendChild(row);
    numberSocialRows();
    return row;
  }

  // "Platform of link 2", ...: each row's controls say which row they are in.
  function numberSocialRows() {
    Array.prototype.forEach.call(els.socialRows.children, function (row, i) {
      var which = ' of link ' + (i + 1);
      row.querySelector('.social-platform').setAttribute('aria-label', 'Platform' + which);
      row.querySelector('.social-url').setAttribute('aria-label', 'URL' + which);
      row.querySelector('.social-remove').setAttribute('aria-label', 'Remove link ' + (i + 1));
    });
  }

  els.socialAdd.addEventListener('click', function () {
    addSocialRow(null).querySelector('.social-platform').focus();
  });

  // ---- The Password section ------------------------------------------------------------------

  function passwordError(which) {
    return $('password-' + which + '-error');
  }

  function showPasswordError(which, text) {
    showText(passwordError(which), text);
    $('password-' + which).setAttribute('aria-invalid', 'true');
    $('password-' + which).focus();
  }

  els.passwordForm.addEventListener('submit', function (event) {
    event.preventDefault();
    ['old', 'new', 'repeat'].forEach(function (which) {
      hide(passwordError(which));
      $('password-' + which).removeAttribute('aria-invalid');
    });
    els.passwordStatus.textContent = '';
    if (els.passwordOld.value === '') {
      showPasswordError('old', 'Enter your current password.');
      return;
    }
    if (els.passwordNew.value !== els.passwordRepeat.value) {
      showPasswordError('repeat', 'The two new passwords differ.');
      return;
    }
    var save = $('password-save');
    save.disabled = true;
    request('POST', PASSWORD_URL, {
      oldPassword: els.passwordOld.value,
      newPassword: els.passwordNew.value,
    }).then(function (answer) {
      if (answer.status === 200) {
        els.passwordForm.reset();
        els.passwordStatus.textContent = 'Password changed. Other browsers signed in with the old one are signed out.';
      } else if (answer.status === 401) {
        sessionEnded();
      } else if (answer.status === 400) {
        showPasswordError(answer.data.field === 'newPassword' ? 'new' : 'old',
          errorText(answer, 'The server refused the new password'));
      } else if (answer.status === 429) {
        showPasswordError('old', waitText(answer));
      } else if (answer.status === 409) {
        els.passwordFromConfig.hidden = false;
        els.passwordFields.disabled = true;
        els.passwordStatus.textContent = errorText(answer, 'The password is set in config.toml');
      } else {
        els.passwordStatus.textContent = errorText(answer, 'Changing the password failed');
      }
    }, function () { /* the banner says why */ }).finally(function () {
      save.disabled = false;
    });
  });

  // ---- What the other sections share --------------------------------------------------------

  // A new element: `props` may set className, text (its textContent), type, hidden and any
  // attribute (attrs: { name: value }); `children` are appended. Never HTML.
  function element(tag, props, children) {
    var el = document.createElement(tag);
    var p = props || {};
    if (p.className) el.className = p.className;
    if (p.text !== undefined) el.textContent = p.text;
    if (p.type) el.type = p.type;
    if (p.hidden) el.hidden = true;
    Object.keys(p.attrs || {}).forEach(function (name) { el.setAttribute(name, p.attrs[name]); });
    (children || []).forEach(function (child) { el.appendChild(child); });
    return el;
  }

  // Make `list`'s children show `items`, in order, one child per keyOf(item) (its data-key):
  // children of items still there are updated in place (so focus and open edits stay),
  // create(item) makes the missing ones, children of items gone are removed.
  function syncList(list, items, keyOf, create, update) {
    var existing = new Map();
    Array.prototype.forEach.call(list.children, function (child) {
      existing.set(child.getAttribute('data-key'), child);
    });
    var wanted = new Set();
    items.forEach(function (item, i) {
      var key = String(keyOf(item));
      wanted.add(key);
      var child = existing.get(key);
      if (!child) {
        child = create(item);
        child.setAttribute('data-key', key);
      }
      update(child, item);
      if (list.children[i] !== child) {
        list.insertBefore(child, list.children[i] || null);
      }
    });
    existing.forEach(function (child, key) {
      if (!wanted.has(key)) child.remove();
    });
  }

  // Calls load() (which may return a promise) now and `ms` after each call has finished, until
  // stop(); refresh() calls it again at once (after the one under way, if any).
  function poller(ms, load) {
    var running = false;
    var busy = false;
    var again = false;
    var timer = null;
    function tick() {
      clearTimeout(timer);
      timer = null;
      if (!running) return;
      if (busy) {
        again = true;
        return;
      }
      busy = true;
      Promise.resolve().then(load).catch(function () { /* the banner or the section says why */ })
        .then(function () {
          busy = false;
          if (again) {
            again = false;
            tick();
          } else if (running) {
            timer = setTimeout(tick, ms);
          }
        });
    }
    return {
      start: function () { running = true; tick(); },
      stop: function () { running = false; again = false; clearTimeout(timer); timer = null; },
      refresh: tick,
    };
  }

  // "18:31:07" (local time) of an RFC 3339 time, or '' for none.
  function clock(time) {
    var date = new Date(time);
    return time && !isNaN(date) ? date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' })
      : '';
  }

  window.selfcastConsole = {
    byId: $,
    request: request,
    errorText: errorText,
    hide: hide,
    showText: showText,
    sessionEnded: sessionEnded,
    element: element,
    syncList: syncList,
    poller: poller,
    clock: clock,
    addSection: function (section) { sections.push(section); },
  };

  // ---- Go -------------------------------------------------------------------------------------

  // After the section scripts (loaded after this one) have registered.
  document.addEventListener('DOMContentLoaded', checkSession);
})();
