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

  // A wait's JSON Schema, checked before the form is sent (the server checks it
  // again with a full Draft 2020-12 validator): the common keywords only.
  function typeOf(v) {
    if (v === null) return 'null';
    if (Array.isArray(v)) return 'array';
    if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
    return typeof v;
  }
  function pointer(path) {
    return path.map(function (p) { return '/' + String(p).replace(/~/g, '~0').replace(/\//g, '~1'); }).join('');
  }
  function check(schema, v, path) {
    if (schema === true || schema === undefined) return null;
    if (schema === false) return [path, 'no value is allowed here'];
    var t = typeOf(v);
    if (schema.type !== undefined) {
      var types = [].concat(schema.type);
      var ok = types.some(function (x) { return x === t || (x === 'number' && t === 'integer'); });
      if (!ok) return [path, 'expected ' + types.join(' or ') + ', got ' + t];
    }
    if (schema.enum && !schema.enum.some(function (x) { return JSON.stringify(x) === JSON.stringify(v); })) return [path, 'not one of the allowed values'];
    if (schema.const !== undefined && JSON.stringify(schema.const) !== JSON.stringify(v)) return [path, 'must be ' + JSON.stringify(schema.const)];
    if (t === 'number' || t === 'integer') {
      if (schema.minimum !== undefined && v < schema.minimum) return [path, 'less than ' + schema.minimum];
      if (schema.maximum !== undefined && v > schema.maximum) return [path, 'more than ' + schema.maximum];
    }
    if (t === 'string' && schema.minLength !== undefined && v.length < schema.minLength) return [path, 'shorter than ' + schema.minLength];
    if (t === 'object') {
      var req = schema.required || [];
      for (var i = 0; i < req.length; i++) if (!(req[i] in v)) return [path.concat([req[i]]), 'is required'];
      var props = schema.properties || {};
      for (var k in props) if (k in v) { var r = check(props[k], v[k], path.concat([k])); if (r) return r; }
    }
    if (t === 'array' && schema.items !== undefined) {
      for (var j = 0; j < v.length; j++) { var q = check(schema.items, v[j], path.concat([j])); if (q) return q; }
    }
    return null;
  }
  function formSchema(form) {
    if (form.id === 'form-resume') {
      var opt = form.querySelector('select[name=wait_id] option:checked');
      return opt && opt.dataset.schema ? opt.dataset.schema : '';
    }
    if (form.id === 'form-event') {
      var name = (form.querySelector('input[name=name]') || {}).value;
      var found = '';
      form.querySelectorAll('[data-schema-for-event]').forEach(function (el) {
        if (!found && el.dataset.schemaForEvent.split(',').indexOf(name) >= 0) found = el.dataset.schema;
      });
      return found;
    }
    return '';
  }
  function schemaProblem(form) {
    var text = formSchema(form);
    if (!text) return null;
    var field = form.querySelector('textarea[name=value], textarea[name=payload]');
    var raw = field ? field.value.trim() : '';
    var value;
    try { value = raw ? JSON.parse(raw) : null; } catch (err) { return null; }  // the server explains bad JSON
    var found = check(JSON.parse(text), value, []);
    return found ? 'does not match the schema at ' + (pointer(found[0]) || 'the top level') + ': ' + found[1] : null;
  }

  document.addEventListener('submit', function (e) {
    var button = e.submitter;
    if (button && button.dataset.confirm && !window.confirm(button.dataset.confirm)) { e.preventDefault(); return; }
    var problem = schemaProblem(e.target);
    var shown = e.target.querySelector('.schema-error');
    if (shown) shown.remove();
    if (problem) {
      e.preventDefault();
      var p = document.createElement('p');
      p.className = 'error schema-error';
      p.setAttribute('role', 'alert');
      p.textContent = 'The value ' + problem;
      e.target.insertBefore(p, e.target.querySelector('button[type=submit]'));
    }
  });

  tick();
  setInterval(tick, 1000);
  if (stampUrl) setInterval(poll, POLL_MS);
})();
