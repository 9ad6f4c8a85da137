/*
 * selfcast admin console: the Stream health section (admin.html #health-section), on top of
 * admin.js (window.selfcastConsole).
 *
 * Every 2 s it reads GET /api/status (docs/API.md) and shows: live or offline, what the
 * publisher sends (codec, size, bitrate, audio), packets dropped, viewers now, and one table row
 * per rendition (frames out/dropped, queue depth, measured vs target bitrate, "skipped: <why>").
 * /api/status has no frame rate of the input: the source's copy (the passthrough rendition) has
 * one once it is served, and that is what "Frame rate" shows. The publisher's address comes
 * from the Stream keys section (admin-keys.js), which announces it as a 'selfcast:publisher'
 * event; this section announces each status as a 'selfcast:status' event (the Chat section
 * reads chatEnabled from it). The preview image, /thumbnail.jpg, is loaded when the console
 * opens and every 5 s while live.
 *
 * The Server box reads GET /api/admin/health every 5 s (the server samples that often): the
 * server's CPU (a share of all its cores) and memory, and the viewers over the live broadcast,
 * else the last one, drawn as a line (an SVG polyline built as DOM nodes, no markup strings).
 */
(function () {
  'use strict';

  var C = window.selfcastConsole;
  var STATUS_URL = '/api/status';
  var PREVIEW_URL = '/thumbnail.jpg';
  var POLL_MS = 2000;
  var PREVIEW_MS = 5000;
  var HEALTH_URL = '/api/admin/health';
  var HEALTH_MS = 5000;
  var SVG = 'http://www.w3.org/2000/svg';
  var CHART_W = 600;
  var CHART_H = 120;

  var $ = C.byId;
  var els = {
    state: $('health-state'),
    error: $('health-error'),
    preview: $('health-preview'),
    previewNote: $('health-preview-note'),
    publisher: $('health-publisher'),
    video: $('health-video'),
    size: $('health-size'),
    fps: $('health-fps'),
    bitrate: $('health-bitrate'),
    audio: $('health-audio'),
    dropped: $('health-dropped'),
    viewers: $('health-viewers'),
    rows: $('health-variant-rows'),
    serverError: $('health-server-error'),
    cpu: $('health-cpu'),
    memory: $('health-memory'),
    peak: $('health-peak'),
    chart: $('health-chart'),
    chartNote: $('health-chart-note'),
  };

  var online = false;
  var previewAt = 0;      // when the preview was last asked for (ms)
  var poll = C.poller(POLL_MS, load);
  var pollServer = C.poller(HEALTH_MS, loadServer);

  C.addSection({
    start: function () {
      previewAt = 0;
      poll.start();
      pollServer.start();
    },
    stop: function () {
      poll.stop();
      pollServer.stop();
      els.chart.textContent = '';
      els.rows.textContent = '';
      els.preview.hidden = true;
    },
  });

  document.addEventListener('selfcast:publisher', function (event) {
    var publisher = event.detail;
    els.publisher.textContent = publisher && typeof publisher.address === 'string' ? publisher.address : '—';
  });

  function load() {
    return C.request('GET', STATUS_URL).then(function (answer) {
      if (answer.status !== 200) {
        C.showText(els.error, C.errorText(answer, 'Reading the stream\'s status failed'));
        return;
      }
      C.hide(els.error);
      show(answer.data);
      document.dispatchEvent(new CustomEvent('selfcast:status', { detail: answer.data }));
    });
  }

  function show(status) {
    online = status.online === true;
    els.state.textContent = online ? 'Live since ' + C.clock(status.lastConnectTime) + '.'
      : status.lastDisconnectTime ? 'Offline since ' + C.clock(status.lastDisconnectTime) + '.' : 'Offline.';
    els.state.classList.toggle('is-live', online);
    var input = status.input || {};
    var variants = Array.isArray(status.variants) ? status.variants : [];
    els.video.textContent = online && input.videoCodec ? String(input.videoCodec) : '—';
    els.size.textContent = online && input.width > 0 ? input.width + '×' + input.height : '—';
    els.fps.textContent = online ? frameRate(input.frameRate) : '—';
    els.bitrate.textContent = online ? kbps(input.bitrateKbps) : '—';
    els.audio.textContent = online && input.audioCodec ? String(input.audioCodec) : '—';
    els.dropped.textContent = count(status.droppedPackets);
    els.viewers.textContent = count(status.viewerCount);
    C.syncList(els.rows, variants, function (v) { return v.id; }, variantRow, showVariant);
    if (previewAt === 0 || (online && Date.now() - previewAt >= PREVIEW_MS)) {
      loadPreview();
    }
  }

  function frameRate(fps) {
    return typeof fps === 'number' ? fps.toFixed(2).replace(/\.?0+$/, '') + ' fps' : 'not known yet';
  }

  function kbps(value) {
    return typeof value === 'number' ? value + ' kbit/s' : '—';
  }

  function count(value) {
    return typeof value === 'number' ? String(value) : '—';
  }

  // ---- Renditions -----------------------------------------------------------------------------

  var COLUMNS = ['Rendition', 'Size', 'Frames out', 'Dropped', 'Queue', 'Bitrate (measured / target)', 'State'];

  function variantRow() {
    return C.element('tr', {}, COLUMNS.map(function (label, i) {
      // data-label: the column's name beside each value where the table collapses (phones).
      return C.element(i === 0 ? 'th' : 'td', { attrs: i === 0 ? { scope: 'row', 'data-label': label } : { 'data-label': label } });
    }));
  }

  function showVariant(row, v) {
    var cells = row.children;
    cells[0].textContent = String(v.name || v.id);
    cells[1].textContent = v.width > 0 ? v.width + '×' + v.height : '—';
    cells[2].textContent = count(v.framesOut);
    cells[3].textContent = count(v.framesDropped);
    cells[4].textContent = count(v.queueDepth);
    cells[5].textContent = (typeof v.bitrateKbps === 'number' ? v.bitrateKbps : '—') + ' / '
      + (typeof v.targetBitrateKbps === 'number' ? v.targetBitrateKbps + ' kbit/s' : 'source');
    cells[6].textContent = v.skipped ? skippedText(String(v.skipped)) : v.passthrough ? 'copied' : 'encoded';
    row.classList.toggle('is-skipped', !!v.skipped);
    row.classList.toggle('is-dropping', v.framesDropped > 0);
  }

  // "skipped: <why>" (the server's reason may say "skipped" already).
  function skippedText(why) {
    return /^skipped\b/i.test(why) ? why : 'skipped: ' + why;
  }

  // ---- The server: CPU, memory, viewers over the broadcast ------------------------------------

  function loadServer() {
    return C.request('GET', HEALTH_URL).then(function (answer) {
      if (answer.status !== 200) {
        C.showText(els.serverError, C.errorText(answer, 'Reading the server\'s health failed'));
        return;
      }
      C.hide(els.serverError);
      showServer(answer.data);
    });
  }

  function showServer(health) {
    els.cpu.textContent = typeof health.cpuPercent === 'number'
      ? health.cpuPercent.toFixed(1) + ' % of ' + health.cores + (health.cores === 1 ? ' core' : ' cores')
      : 'measuring…';
    els.memory.textContent = typeof health.memoryBytes === 'number'
      ? (health.memoryBytes / 1048576).toFixed(1) + ' MiB' : 'not known here';
    var viewers = health.viewers || {};
    var samples = Array.isArray(viewers.samples) ? viewers.samples : [];
    els.peak.textContent = viewers.broadcastStart ? count(viewers.peak) : '—';
    drawChart(samples, typeof viewers.peak === 'number' ? viewers.peak : 0);
    els.chartNote.textContent = !viewers.broadcastStart ? 'No broadcast yet.'
      : 'Viewers since ' + C.clock(viewers.broadcastStart) + (online ? '' : ' (the last broadcast)')
        + ', one point every ' + viewers.sampleSeconds + ' s.';
  }

  // One polyline over the samples, the highest point at the top (at least 1 viewer high).
  function drawChart(samples, peak) {
    els.chart.textContent = '';
    if (samples.length === 0) return;
    var top = Math.max(peak, 1);
    var step = samples.length > 1 ? CHART_W / (samples.length - 1) : 0;
    var points = samples.map(function (sample, i) {
      var y = CHART_H - 4 - (CHART_H - 8) * (Number(sample.viewers) || 0) / top;
      return (i * step).toFixed(1) + ',' + y.toFixed(1);
    });
    if (samples.length === 1) points.push(CHART_W + ',' + points[0].split(',')[1]);
    var line = document.createElementNS(SVG, 'polyline');
    line.setAttribute('points', points.join(' '));
    line.setAttribute('class', 'health-chart-line');
    els.chart.appendChild(line);
  }

  // ---- The preview image ----------------------------------------------------------------------

  // Loaded beside the shown one, then swapped in, so the image does not flicker.
  function loadPreview() {
    previewAt = Date.now();
    var next = new Image();
    next.onload = function () {
      els.preview.src = next.src;
      els.preview.hidden = false;
      els.previewNote.textContent = 'Preview at ' + C.clock(new Date(previewAt).toISOString())
        + (online ? ', every 5 s while live.' : ' (the last of the stream).');
    };
    next.onerror = function () {
      els.preview.hidden = true;
      els.previewNote.textContent = 'No preview image yet.';
    };
    next.src = PREVIEW_URL + '?at=' + previewAt;
  }
})();
