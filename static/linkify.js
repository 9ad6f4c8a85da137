/*
 * selfcast: text with links, for the viewer page. Plain JavaScript, no build step.
 *
 * Chat messages (chat.js) and the stream's summary (player.js) are plain text in which
 * http(s) URLs become links. Both put them on the page through this one function:
 *
 *   window.selfcastLinkify.appendLinkified(parent, text, rel)
 *     appends `text` to `parent` as text nodes, with each well-formed http(s) URL as an
 *     <a target="_blank" rel="..."> whose text is the URL;
 *   window.selfcastLinkify.safeHref(url)
 *     the URL if it is a well-formed http(s) URL with a host, else null (for links whose
 *     address comes from the network, e.g. the owner's social links).
 *
 * Nothing here parses HTML (no innerHTML), so text from the network cannot make elements or run
 * script. index.html loads this before player.js and chat.js.
 */
(function () {
  'use strict';

  // http(s) URLs: scheme, then anything up to whitespace or a character that cannot be in a URL
  // as typed. Trailing punctuation is trimmed afterwards ("see https://x.org/a." → no dot).
  var URL_PATTERN = /\bhttps?:\/\/[^\s<>"'`\u0000-\u001f\u007f]+/gi;

  function appendLinkified(parent, text, rel) {
    text = text.replace(/\n{3,}/g, '\n\n');   // at most one empty line in a row
    var last = 0;
    var match;
    URL_PATTERN.lastIndex = 0;
    while ((match = URL_PATTERN.exec(text)) !== null) {
      var url = trimUrl(match[0]);
      var href = safeHref(url);
      if (href === null) {
        continue;
      }
      if (match.index > last) {
        parent.appendChild(document.createTextNode(text.slice(last, match.index)));
      }
      var link = document.createElement('a');
      link.href = href;
      link.target = '_blank';
      link.rel = rel;
      link.textContent = url;
      parent.appendChild(link);
      last = match.index + url.length;
      URL_PATTERN.lastIndex = last;
    }
    if (last < text.length) {
      parent.appendChild(document.createTextNode(text.slice(last)));
    }
  }

  function trimUrl(url) {
    for (;;) {
      var end = url.charAt(url.length - 1);
      if ('.,;:!?*'.indexOf(end) >= 0
        || (end === ')' && count(url, '(') < count(url, ')'))
        || (end === ']' && count(url, '[') < count(url, ']'))
        || (end === '}' && count(url, '{') < count(url, '}'))) {
        url = url.slice(0, -1);
      } else {
        return url;
      }
    }
  }

  function count(text, char) {
    return text.split(char).length - 1;
  }

  // The URL if it is a well-formed http(s) URL with a host, else null.
  function safeHref(url) {
    try {
      var parsed = new URL(url);
      if ((parsed.protocol === 'http:' || parsed.protocol === 'https:') && parsed.hostname !== '') {
        return url;
      }
    } catch (e) {
      // not a URL after all: stays text
    }
    return null;
  }

  window.selfcastLinkify = { appendLinkified: appendLinkified, safeHref: safeHref };
})();
