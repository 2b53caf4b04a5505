// jsflow web view: live updates, countdowns, copy buttons and confirmations.
// Loaded as a file so the Content-Security-Policy can forbid inline script.
(function () {
  'use strict';
  var POLL_MS = 1000;
  var body = document.body;
  var stamp = body.dataset.stamp;
  var stampUrl = body.dataset.stampUrl;
  // the host's clock may differ from the browser's: count down in the host's time
  var offset = body.dataset.now ? Date.parse(body.dataset.now) - Date.now() : 0;
  var busy = false;

  function human(seconds) {
    seconds = Math.floor(seconds);
    if (seconds <= 0) return 'due now';
    var d = Math.floor(seconds / 86400), h = Math.floor(seconds % 86400 / 3600);
    var m = Math.floor(seconds % 3600 / 60), s = seconds % 60;
    function two(n) { return (n < 10 ? '0' : '') + n; }
    if (d) return d + 'd ' + h + 'h';
    if (h) return h + 'h ' + two(m) + 'm';
    if (m) return m + 'm ' + two(s) + 's';
    return s + 's';
  }

  function tick() {
    var now = Date.now() + offset;
    document.querySelectorAll('[data-due]').forEach(function (el) {
      var due = Date.parse(el.dataset.due);
      if (!isNaN(due)) el.textContent = human((due - now) / 1000);
    });
  }

  function setLive(state) {
    var el = document.getElementById('live-indicator');
    if (el) { el.dataset.state = state; el.textContent = state; }
  }

  function guarded(region) {
    if (!region.hasAttribute('data-guard')) return false;
    return region.contains(document.activeElement) || region.dataset.dirty === '1' ||
      region.querySelector('[data-error-for]') !== null;
  }

  function refresh() {
    return fetch(location.href, { credentials: 'same-origin' }).then(function (r) {
      if (!r.ok) return;
      return r.text().then(function (html) {
        var doc = new DOMParser().parseFromString(html, 'text/html');
        doc.querySelectorAll('[data-live]').forEach(function (fresh) {
          var current = document.getElementById(fresh.id);
          if (current && !guarded(current)) current.replaceWith(document.importNode(fresh, true));
        });
        if (doc.body.dataset.stamp) stamp = doc.body.dataset.stamp;
        if (doc.body.dataset.now) offset = Date.parse(doc.body.dataset.now) - Date.now();
        document.title = doc.title;
        tick();
      });
    });
  }

  function poll() {
    if (!stampUrl || busy || document.hidden) return;
    busy = true;
    fetch(stampUrl, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(function (r) {
        if (r.status === 401) { setLive('signed out'); return null; }
        return r.ok ? r.json() : null;
      })
      .then(function (data) {
        if (data === null) return;
        setLive('live');
        if (data.stamp !== stamp) return refresh();
      })
      .catch(function () { setLive('offline'); })
      .then(function () { busy = false; });
  }

  document.addEventListener('input', function (e) {
    var region = e.target.closest && e.target.closest('[data-guard]');
    if (region) region.dataset.dirty = '1';
  });

  document.addEventListener('click', function (e) {
    var button = e.target.closest && e.target.closest('button.copy');
    if (!button) return;
    var input = document.getElementById(button.dataset.copyTarget);
    if (!input) return;
    input.select();
    var done = function () { button.textContent = 'Copied'; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(done, function () { document.execCommand('copy'); done(); });
    } else {
      document.execCommand('copy');
      done();
    }
  });

  document.addEventListener('submit', function (e) {
    var button = e.submitter;
    if (button && button.dataset.confirm && !window.confirm(button.dataset.confirm)) e.preventDefault();
  });

  tick();
  setInterval(tick, 1000);
  if (stampUrl) setInterval(poll, POLL_MS);
})();
