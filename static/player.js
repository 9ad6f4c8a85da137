/*
 * selfcast viewer page logic. Plain JavaScript, no build step, nothing loaded from the internet.
 *
 * What it does:
 *   1. Polls GET /api/status every few seconds and shows the stream title, the viewer count and
 *      whether the stream is live. The status JSON looks like
 *        { "online": true, "viewerCount": 3, "streamTitle": "My stream", "version": "0.1.0",
 *          "lastConnectTime": "2024-05-01T18:00:00Z", "lastDisconnectTime": null,
 *          "hlsUrl": "https://cdn.example.com/stream.m3u8" }      (hlsUrl is optional)
 *   2. When the stream is online it plays it: with hls.js where the browser has Media Source
 *      Extensions (Chrome, Firefox, Edge), else natively (Safari, iOS). Playback starts muted,
 *      because browsers only autoplay muted video; the "Unmute" button turns the sound on.
 *   3. When the stream goes offline it stops playback and shows "Stream is offline" (or the
 *      owner's offline message).
 *   4. Shows what the owner set in the admin console (/admin): the summary under the player (its
 *      http(s) URLs as links, linkify.js), the tags, the social links, the offline message, the
 *      custom CSS (<link id="custom-styles">), the logo beside the title (<img id="stream-logo">)
 *      and the offline image in the overlay while offline (<img id="overlay-image">).
 *      /api/status carries `pageRevision`, a number that changes with every such change; when it
 *      does, the page fetches GET /api/config
 *        { "streamTitle", "summary", "tags": [...], "offlineMessage",
 *          "socialHandles": [{ "platform", "url" }], "customStylesUrl", "logoUrl",
 *          "offlineImageUrl" (the last three null: none), "pageRevision" }
 *      and updates in place, without a reload. Everything is put on the page as text.
 *
 * Which stream: the <meta name="selfcast-stream"> tag in index.html, unless /api/status gives
 * a string `hlsUrl`, which wins.
 *
 * For tests and debugging, window.selfcast holds the current hls.js instance (`hls`, null when
 * not playing through hls.js), every hls.js error event (`errors`, as {type, details, fatal})
 * and the page settings shown (`pageSettings`, the last /api/config answer).
 */
(function () {
  'use strict';

  // The chat embed (/embed/chat, see view.js) shows no video: fetch none.
  if (document.documentElement.dataset.view === 'chat') {
    return;
  }

  // ---- Settings ------------------------------------------------------------------------------

  var STATUS_URL = '/api/status';
  var PAGE_SETTINGS_URL = '/api/config';   // fetched when /api/status has a new pageRevision
  var STATUS_INTERVAL_MS = 3000;     // how often to ask the server whether the stream is live
  var STATUS_TIMEOUT_MS = 5000;      // give up on one status request after this long
  var RETRY_MIN_MS = 1000;           // first delay before restarting playback after a failure...
  var RETRY_MAX_MS = 15000;          // ...doubling up to this
  var PLAYLIST_MIME = 'application/vnd.apple.mpegurl';
  var SUMMARY_LINK_REL = 'noopener nofollow ugc';   // links in the summary and offline message
  var SOCIAL_LINK_REL = 'me noopener';              // "me": Mastodon's profile verification

  // hls.js settings for a live stream with ~2 s segments. See the hls.js API docs for the rest.
  var HLS_CONFIG = {
    liveSyncDurationCount: 3,        // play 3 segments (~6 s) behind the live edge
    liveMaxLatencyDurationCount: 8,  // if we fall 8 segments (~16 s) behind, jump forward
    maxLiveSyncPlaybackRate: 1.2,    // in between, catch up by playing up to 1.2x fast
    liveDurationInfinity: true,      // the video's duration is Infinity: a live stream
    backBufferLength: 30,            // keep 30 s already played, free the rest
    maxBufferLength: 20,             // don't buffer more than 20 s ahead
    enableWorker: true,              // demux/remux off the main thread
    lowLatencyMode: true,            // use LL-HLS parts when the playlist has them
    autoStartLoad: false,            // we pick the start position first (startOfBroadcast below)
    // Right after a stream goes live its playlists may not exist yet (the first segment takes
    // a couple of seconds), so a 404 is retried too, for ~15 s (after 1, 2, 4, 8 s) before
    // hls.js gives up. After that the page starts over by itself (scheduleRetry below).
    manifestLoadPolicy: { default: playlistPolicy() },
    playlistLoadPolicy: { default: playlistPolicy() },
  };

  function playlistPolicy() {
    return {
      maxTimeToFirstByteMs: 10000,
      maxLoadTimeMs: 20000,
      timeoutRetry: { maxNumRetry: 2, retryDelayMs: 0, maxRetryDelayMs: 0 },
      errorRetry: {
        maxNumRetry: 4,
        retryDelayMs: 1000,
        maxRetryDelayMs: 8000,
        // hls.js by itself retries 5xx, timeouts and connection errors, never a 4xx.
        shouldRetry: function (config, retryCount, isTimeout, response, retry) {
          return retry || (retryCount < config.maxNumRetry && !!response && response.code === 404);
        },
      },
    };
  }

  // ---- Page elements and shared state --------------------------------------------------------

  var els = {
    title: document.getElementById('stream-title'),
    badge: document.getElementById('live-badge'),
    viewers: document.getElementById('viewer-count'),
    viewerNumber: document.getElementById('viewer-number'),
    viewerWord: document.getElementById('viewer-word'),
    video: document.getElementById('video'),
    overlay: document.getElementById('overlay'),
    spinner: document.getElementById('spinner'),
    overlayText: document.getElementById('overlay-text'),
    overlayDetail: document.getElementById('overlay-detail'),
    playButton: document.getElementById('play-button'),
    unmuteButton: document.getElementById('unmute-button'),
    version: document.getElementById('server-version'),
    about: document.getElementById('about'),
    summary: document.getElementById('stream-summary'),
    tags: document.getElementById('stream-tags'),
    socialLinks: document.getElementById('social-links'),
    customStyles: document.getElementById('custom-styles'),
    logo: document.getElementById('stream-logo'),
    overlayImage: document.getElementById('overlay-image'),
  };
  var video = els.video;

  var metaStream = document.querySelector('meta[name="selfcast-stream"]');
  var DEFAULT_STREAM_URL = (metaStream && metaStream.content) || '/hls/stream.m3u8';

  // Exposed for tests and for poking at in the browser console.
  var selfcast = {
    hls: null,         // the current Hls instance, or null
    errors: [],        // every hls.js ERROR event: {type, details, fatal}
    status: null,      // the last /api/status answer
    state: 'loading',  // 'loading' | 'offline' | 'connecting' | 'playing' | 'unreachable'
    streamUrl: null,   // what is being played
    pageSettings: null,  // the last /api/config answer shown
  };
  window.selfcast = selfcast;

  var online = false;          // what /api/status said last
  var lastStatus = null;
  var playing = false;         // a source is attached (hls.js or native) and we want it to play
  var retryTimer = null;
  var endTimer = null;         // set while the end of a broadcast plays out after going offline
  var retryDelay = RETRY_MIN_MS;
  var lastMediaErrorAt = 0;
  var cannotPlay = false;      // this browser has neither MSE nor native HLS
  var pageRevision = null;     // the pageRevision whose settings are shown (or being fetched)
  var settingsRequests = 0;    // counts /api/config requests: only the newest one's answer counts
  var offlineMessage = '';     // the owner's, shown instead of "Stream is offline"
  var offlineImageUrl = null;  // the owner's offline image (a path on this server), or null

  // ---- Status polling -------------------------------------------------------------------------

  function fetchJson(url, timeoutMs) {
    var controller = new AbortController();
    var timer = setTimeout(function () { controller.abort(); }, timeoutMs);
    return fetch(url, { cache: 'no-store', signal: controller.signal })
      .then(function (response) {
        if (!response.ok) {
          throw new Error(url + ' answered HTTP ' + response.status);
        }
        return response.json();
      })
      .finally(function () { clearTimeout(timer); });
  }

  function pollStatus() {
    fetchJson(STATUS_URL, STATUS_TIMEOUT_MS)
      .then(applyStatus, function (err) {
        console.warn('selfcast: status request failed:', err);
        showUnreachable();
      })
      .finally(function () {
        setTimeout(pollStatus, STATUS_INTERVAL_MS);
      });
  }

  function applyStatus(status) {
    lastStatus = status;
    selfcast.status = status;

    showTitle(status.streamTitle);
    if (typeof status.pageRevision === 'number' && status.pageRevision !== pageRevision) {
      loadPageSettings(status.pageRevision);
    }
    if (els.version && typeof status.version === 'string' && status.version !== '') {
      els.version.textContent = 'selfcast ' + status.version;
    }

    var wasOnline = online;
    online = status.online === true;
    var url = (typeof status.hlsUrl === 'string' && status.hlsUrl !== '') ? status.hlsUrl
      : DEFAULT_STREAM_URL;

    if (els.badge) {
      els.badge.textContent = online ? 'Live' : 'Offline';
      els.badge.className = 'badge ' + (online ? 'badge-live' : 'badge-offline');
    }
    if (els.viewers && els.viewerNumber && els.viewerWord) {
      if (online && typeof status.viewerCount === 'number') {
        els.viewerNumber.textContent = String(status.viewerCount);
        els.viewerWord.textContent = status.viewerCount === 1 ? 'viewer' : 'viewers';
        els.viewers.hidden = false;
      } else {
        els.viewers.hidden = true;
      }
    }

    if (online && cannotPlay) {
      return;                  // the overlay already says why
    }
    if (online) {
      if (endTimer !== null) {
        // Back before the end of the last broadcast finished playing: the same player carries
        // on into the new one (the playlist continues behind a discontinuity).
        clearTimeout(endTimer);
        endTimer = null;
      }
      if ((!wasOnline && !isVideoPlaying()) || (playing && url !== selfcast.streamUrl)) {
        retryDelay = RETRY_MIN_MS;
        startPlayback(url);
      } else if (!playing && retryTimer === null) {
        // Still online but nothing is playing or scheduled (e.g. the server was unreachable
        // for a while): start again.
        startPlayback(url);
      } else if (selfcast.state === 'unreachable') {
        setState(isVideoPlaying() ? 'playing' : 'connecting');
      }
    } else if (isVideoPlaying() && bufferedAhead() > 0.5) {
      playOutThenGoOffline();
    } else {
      if (wasOnline || playing || retryTimer !== null) {
        stopPlayback();
      }
      setState('offline');
    }
  }

  // The header elements are optional: a page of the owner's may leave them out.
  function showTitle(title) {
    if (typeof title !== 'string' || title === '') {
      return;
    }
    if (document.title !== title) {
      document.title = title;
    }
    if (els.title && els.title.textContent !== title) {
      els.title.textContent = title;   // textContent: the title is text, not HTML
    }
  }

  // The streamer stopped, but the last seconds of the broadcast are still buffered (the player
  // runs a few seconds behind live): let them play, then show the offline state.
  function playOutThenGoOffline() {
    if (endTimer !== null) {
      return;
    }
    endTimer = setTimeout(function () {
      endTimer = null;
      if (online) {
        return;
      }
      if (isVideoPlaying() && bufferedAhead() > 0.5) {
        playOutThenGoOffline();   // more arrived meanwhile
        return;
      }
      stopPlayback();
      setState('offline');
    }, bufferedAhead() * 1000);
  }

  // Seconds of video buffered ahead of the playback position.
  function bufferedAhead() {
    var ranges = video.buffered;
    for (var i = 0; i < ranges.length; i++) {
      if (ranges.start(i) <= video.currentTime + 0.1 && video.currentTime < ranges.end(i)) {
        return ranges.end(i) - video.currentTime;
      }
    }
    return 0;
  }

  // ---- Page settings: what the owner set in the admin console --------------------------------

  function loadPageSettings(revision) {
    pageRevision = revision;
    var request = ++settingsRequests;
    fetchJson(PAGE_SETTINGS_URL, STATUS_TIMEOUT_MS).then(function (settings) {
      if (request === settingsRequests) {
        applyPageSettings(settings);
      }
    }, function (err) {
      console.warn('selfcast: page settings request failed:', err);
      if (request === settingsRequests) {
        pageRevision = null;   // the next status poll tries again
      }
    });
  }

  function applyPageSettings(settings) {
    if (settings === null || typeof settings !== 'object') {
      return;
    }
    selfcast.pageSettings = settings;
    showTitle(settings.streamTitle);

    // Every part is optional: a page of the owner's may leave it out.
    var summary = typeof settings.summary === 'string' ? settings.summary.trim() : '';
    if (els.summary) {
      els.summary.textContent = '';
      appendText(els.summary, summary);
      els.summary.hidden = summary === '';
    }
    var tags = Array.isArray(settings.tags) ? settings.tags.filter(isText) : [];
    if (els.tags) {
      els.tags.textContent = '';
      tags.forEach(function (tag) {
        var item = document.createElement('li');
        item.className = 'stream-tag';
        item.textContent = tag;
        els.tags.appendChild(item);
      });
      els.tags.hidden = tags.length === 0;
    }
    var links = Array.isArray(settings.socialHandles) ? settings.socialHandles.filter(isSafeLink) : [];
    if (els.socialLinks) {
      els.socialLinks.textContent = '';
      links.forEach(function (handle) {
        var link = document.createElement('a');
        link.href = handle.url;
        link.target = '_blank';
        link.rel = SOCIAL_LINK_REL;
        link.textContent = handle.platform;
        var item = document.createElement('li');
        item.appendChild(link);
        els.socialLinks.appendChild(item);
      });
      els.socialLinks.hidden = links.length === 0;
    }
    if (els.about) {
      els.about.hidden = summary === '' && tags.length === 0 && links.length === 0;
    }

    // A path on this server (the CSP allows no other style sheets anyway); null when the owner
    // has no custom CSS: a <link> without href applies nothing.
    var styles = settings.customStylesUrl;
    if (els.customStyles) {
      if (isLocalPath(styles)) {
        if (els.customStyles.getAttribute('href') !== styles) {
          els.customStyles.setAttribute('href', styles);
        }
      } else {
        els.customStyles.removeAttribute('href');
      }
    }

    // The logo and the offline image: paths on this server too (each URL names its version, so
    // a new image is a new URL); null when there is none.
    showImage(els.logo, isLocalPath(settings.logoUrl) ? settings.logoUrl : null, true);
    offlineImageUrl = isLocalPath(settings.offlineImageUrl) ? settings.offlineImageUrl : null;
    showOfflineImage();

    var message = typeof settings.offlineMessage === 'string' ? settings.offlineMessage.trim() : '';
    if (message !== offlineMessage) {
      offlineMessage = message;
      if (selfcast.state === 'offline') {
        setState('offline');
      }
    }
  }

  function isLocalPath(url) {
    return typeof url === 'string' && /^\/(?!\/)/.test(url);
  }

  // Point an <img> at `url` and show it (when `show`), or empty and hide it for null. An image
  // that fails to load hides itself (the listeners below).
  function showImage(img, url, show) {
    if (!img) {
      return;
    }
    if (url === null) {
      img.hidden = true;
      img.removeAttribute('src');
      return;
    }
    if (img.getAttribute('src') !== url) {
      img.src = url;
    }
    img.hidden = !show || img.dataset.failed === url;
  }

  // The offline image covers the overlay only while the stream is offline.
  function showOfflineImage() {
    showImage(els.overlayImage, offlineImageUrl, selfcast.state === 'offline');
    if (els.overlay) {
      els.overlay.classList.toggle('overlay-has-image', !!els.overlayImage && !els.overlayImage.hidden);
    }
  }

  [els.logo, els.overlayImage].forEach(function (img) {
    if (!img) {
      return;
    }
    img.addEventListener('error', function () {
      if (img.getAttribute('src')) {
        img.dataset.failed = img.getAttribute('src');
        img.hidden = true;
        if (img === els.overlayImage) {
          showOfflineImage();
        }
      }
    });
  });

  function isText(value) {
    return typeof value === 'string' && value !== '';
  }

  function isSafeLink(handle) {
    return handle !== null && typeof handle === 'object' && isText(handle.platform)
      && typeof handle.url === 'string' && safeHref(handle.url) !== null;
  }

  // Plain text with its http(s) URLs as links (linkify.js; a page of the owner's made before
  // linkify.js existed may not load it: then the text stays plain).
  function appendText(parent, text) {
    if (window.selfcastLinkify) {
      window.selfcastLinkify.appendLinkified(parent, text, SUMMARY_LINK_REL);
    } else {
      parent.appendChild(document.createTextNode(text));
    }
  }

  function safeHref(url) {
    return window.selfcastLinkify ? window.selfcastLinkify.safeHref(url) : null;
  }

  // ---- Overlay: what the viewer sees while there is no video ---------------------------------

  function setState(state) {
    selfcast.state = state;
    var text = '';
    var detail = '';
    var spinner = false;

    switch (state) {
      case 'playing':
        els.overlay.hidden = true;
        updateUnmuteButton();
        return;
      case 'offline':
        text = offlineMessage === '' ? 'Stream is offline' : null;   // null: the owner's message
        detail = offlineDetail(lastStatus);
        break;
      case 'connecting':
        text = 'Stream is starting…';
        spinner = true;
        break;
      case 'unreachable':
        text = 'Cannot reach the server';
        detail = 'Retrying…';
        spinner = true;
        break;
      default:
        text = 'Connecting…';
        spinner = true;
    }
    if (text === null) {
      els.overlayText.textContent = '';
      appendText(els.overlayText, offlineMessage);
    } else {
      els.overlayText.textContent = text;
    }
    els.overlayText.classList.toggle('overlay-message', text === null);
    els.overlayDetail.textContent = detail;
    els.spinner.hidden = !spinner;
    els.playButton.hidden = true;
    els.overlay.hidden = false;
    showOfflineImage();
    updateUnmuteButton();
  }

  function offlineDetail(status) {
    if (!status) {
      return '';
    }
    // The stream was last live when it last disconnected (or, failing that, connected).
    var when = relativeTime(status.lastDisconnectTime) || relativeTime(status.lastConnectTime);
    return when ? 'Last live ' + when + '.' : '';
  }

  // "5 minutes ago", "yesterday", ... from an RFC 3339 time; null if there is none.
  function relativeTime(rfc3339) {
    if (typeof rfc3339 !== 'string') {
      return null;
    }
    var then = Date.parse(rfc3339);
    if (isNaN(then)) {
      return null;
    }
    var seconds = Math.round((then - Date.now()) / 1000);
    var units = [
      ['year', 365 * 24 * 3600], ['month', 30 * 24 * 3600], ['week', 7 * 24 * 3600],
      ['day', 24 * 3600], ['hour', 3600], ['minute', 60],
    ];
    var format = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
    for (var i = 0; i < units.length; i++) {
      if (Math.abs(seconds) >= units[i][1]) {
        return format.format(Math.round(seconds / units[i][1]), units[i][0]);
      }
    }
    return Math.abs(seconds) < 10 ? 'just now' : format.format(seconds, 'second');
  }

  function showUnreachable() {
    // Keep playing what we have (the video may come from a CDN); only say so when idle.
    if (!isVideoPlaying()) {
      setState('unreachable');
    }
  }

  // ---- Playback -------------------------------------------------------------------------------

  function startPlayback(url) {
    stopPlayback();
    selfcast.streamUrl = url;
    playing = true;
    setState('connecting');

    if (window.Hls && window.Hls.isSupported()) {
      var hls = new window.Hls(HLS_CONFIG);
      selfcast.hls = hls;
      hls.on(window.Hls.Events.ERROR, onHlsError);
      hls.on(window.Hls.Events.MANIFEST_PARSED, function (event, data) {
        var level = data.levels[hls.firstLevel] || data.levels[0];
        startOfBroadcast(level ? level.url : null).then(function (position) {
          if (selfcast.hls === hls) {
            hls.startLoad(position);
            tryPlay();
          }
        });
      });
      hls.loadSource(url);
      hls.attachMedia(video);
    } else if (video.canPlayType(PLAYLIST_MIME)) {
      // Safari and iOS play HLS themselves.
      video.src = url;
      tryPlay();
    } else {
      playing = false;
      cannotPlay = true;
      els.overlayText.textContent = 'This browser cannot play the stream';
      els.overlayDetail.textContent = 'It supports neither HLS nor Media Source Extensions.';
      els.spinner.hidden = true;
      els.overlay.hidden = false;
    }
  }

  // After the streamer reconnects, the live playlist still lists the end of the previous
  // broadcast for a few segments (so that viewers who stayed on the page play straight through
  // the break). A viewer who arrives now should start at the first segment of the current
  // broadcast, not in the old one: that is the last EXT-X-DISCONTINUITY, when it is closer to
  // the live edge than hls.js's usual start. Resolves to a position for hls.startLoad (-1: the
  // usual live start).
  function startOfBroadcast(mediaPlaylistUrl) {
    if (!mediaPlaylistUrl) {
      return Promise.resolve(-1);
    }
    return fetch(mediaPlaylistUrl, { cache: 'no-store' })
      .then(function (response) { return response.ok ? response.text() : ''; })
      .then(function (text) {
        var elapsed = 0, broadcastStart = 0, target = 0;
        text.split('\n').forEach(function (line) {
          if (line.indexOf('#EXT-X-TARGETDURATION:') === 0) {
            target = parseFloat(line.slice(22));
          } else if (line.indexOf('#EXT-X-DISCONTINUITY') === 0 && line.indexOf('SEQUENCE') < 0) {
            broadcastStart = elapsed;
          } else if (line.indexOf('#EXTINF:') === 0) {
            elapsed += parseFloat(line.slice(8)) || 0;
          }
        });
        var usualStart = elapsed - HLS_CONFIG.liveSyncDurationCount * target;
        return broadcastStart > usualStart ? broadcastStart : -1;
      }, function () { return -1; });
  }

  function stopPlayback() {
    if (retryTimer !== null) {
      clearTimeout(retryTimer);
      retryTimer = null;
    }
    if (endTimer !== null) {
      clearTimeout(endTimer);
      endTimer = null;
    }
    if (selfcast.hls) {
      selfcast.hls.destroy();   // also detaches it from the <video>
      selfcast.hls = null;
    }
    if (video.getAttribute('src')) {
      video.removeAttribute('src');
      video.load();             // drop the native source and its buffer
    }
    playing = false;
  }

  // Something broke (the stream may have just gone offline, or isn't there yet): tear down and
  // try again after a delay that doubles each time, up to RETRY_MAX_MS. The next status poll
  // stops this if the stream turns out to be offline.
  function scheduleRetry(reason) {
    var url = selfcast.streamUrl;
    stopPlayback();
    if (!online) {
      setState('offline');
      return;
    }
    setState('connecting');
    console.warn('selfcast: playback failed (' + reason + '), retrying in ' + retryDelay + ' ms');
    retryTimer = setTimeout(function () {
      retryTimer = null;
      if (online) {
        startPlayback(url);
      }
    }, retryDelay);
    retryDelay = Math.min(retryDelay * 2, RETRY_MAX_MS);
  }

  function onHlsError(event, data) {
    selfcast.errors.push({ type: data.type, details: data.details, fatal: data.fatal });
    if (!data.fatal) {
      return;   // hls.js handles these itself (retries, skips)
    }
    console.warn('selfcast: fatal hls.js error', data.type, data.details);
    var Hls = window.Hls;
    if (data.type === Hls.ErrorTypes.MEDIA_ERROR) {
      // Decoder/buffer trouble: hls.js can usually recover in place. If it happens again
      // right away, start over instead.
      var now = Date.now();
      if (now - lastMediaErrorAt > 5000 && selfcast.hls) {
        lastMediaErrorAt = now;
        selfcast.hls.recoverMediaError();
        return;
      }
    }
    // NETWORK_ERROR (playlist or segments unavailable), or anything else fatal. Tear down after
    // hls.js has finished handling this event, not inside it.
    var failed = selfcast.hls;
    setTimeout(function () {
      if (selfcast.hls === failed) {
        scheduleRetry(data.details);
      }
    }, 0);
  }

  // Native playback (Safari) reports trouble on the <video> element itself.
  video.addEventListener('error', function () {
    if (playing && !selfcast.hls) {
      var code = video.error ? video.error.code : '?';
      scheduleRetry('video error ' + code);
    }
  });

  function tryPlay() {
    var promise = video.play();
    if (promise && typeof promise.catch === 'function') {
      promise.catch(function (err) {
        if (err && err.name === 'NotAllowedError') {
          // Autoplay refused even though muted (some browsers' settings): ask for a click.
          els.spinner.hidden = true;
          els.overlayText.textContent = 'The stream is live';
          els.overlayDetail.textContent = '';
          els.playButton.hidden = false;
          els.overlay.hidden = false;
        }
        // AbortError etc.: a newer load() or pause() interrupted this play(); nothing to do.
      });
    }
  }

  function isVideoPlaying() {
    return playing && !video.paused && video.readyState > 2;
  }

  video.addEventListener('playing', function () {
    retryDelay = RETRY_MIN_MS;   // it works again: next failure retries quickly
    if (selfcast.firstPlayingAt === undefined) {
      selfcast.firstPlayingAt = Date.now();
    }
    setState('playing');
  });

  els.playButton.addEventListener('click', function () {
    els.playButton.hidden = true;
    tryPlay();
  });

  // ---- Sound ----------------------------------------------------------------------------------

  function updateUnmuteButton() {
    els.unmuteButton.hidden = !(video.muted && selfcast.state === 'playing');
  }

  els.unmuteButton.addEventListener('click', function () {
    video.muted = false;
    if (video.volume === 0) {
      video.volume = 1;
    }
    tryPlay();
  });

  // The native controls can mute/unmute too: keep the button in step.
  video.addEventListener('volumechange', updateUnmuteButton);

  // ---- Go -------------------------------------------------------------------------------------

  setState('loading');
  pollStatus();
})();
