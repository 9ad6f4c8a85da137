/*
 * selfcast: which view of the page this is, decided before anything is drawn.
 *
 * index.html is the whole page at /, and each embed is the same index.html showing one part:
 * /embed/video (the player alone) and /embed/chat (the chat alone), for an <iframe> on another
 * site or an OBS browser source. So an owner edits one page and the embeds follow.
 *
 * This script runs in <head> and sets <html data-view="page|video|chat">: style.css shows only
 * that part ("Embeds" at its end), player.js does not start in the chat view (no video is
 * fetched) and chat.js does not connect in the video view (no chat user is made).
 *
 * The chat view takes two URL options:
 *   ?readonly      only the messages, no input box (e.g. an overlay on the stream)
 *   ?transparent   no background, white text with a shadow (OBS shows the scene behind it)
 * e.g. in OBS: Sources → + → Browser, URL http://localhost:8080/embed/chat?readonly&transparent
 */
(function () {
  'use strict';

  var root = document.documentElement;
  var embed = /^\/embed\/(video|chat)\/?$/.exec(window.location.pathname);
  root.dataset.view = embed ? embed[1] : 'page';
  if (root.dataset.view !== 'chat') return;

  var params = new URLSearchParams(window.location.search);
  if (params.has('readonly')) {
    root.classList.add('chat-readonly');
  }
  if (params.has('transparent')) {
    root.classList.add('chat-transparent');
    // A frame in the dark colour scheme gets an opaque canvas when its embedder is light.
    var scheme = document.querySelector('meta[name="color-scheme"]');
    if (scheme) {
      scheme.content = 'normal';
    }
  }
})();
