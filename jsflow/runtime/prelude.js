// jsflow prelude: installed into every fresh sandbox as `function (host) {...}`
// before the workflow script. It owns the workflow's view of the world: slots,
// time, randomness, console, and the globals a script may call. Python drives
// it through the ops registered at the bottom; nothing here calls Python.
const G = globalThis;
const stringify = host.stringify;
const parse = host.parse;
const describeError = host.describeError;
const OrigDate = G.Date;
const defineProperty = Object.defineProperty;
// Captured before the script runs: a script that replaces Promise or its
// `then` must not be able to stop the engine from seeing how the run ended.
const PromiseCtor = Promise;
const promiseThen = Promise.prototype.then;
const applyFn = Reflect.apply;
const regexExec = RegExp.prototype.exec;
const strReplace = String.prototype.replace;
const NumberCtor = Number;
const MAX_CONSOLE = 8192;
// Arrays the prelude fills after user code ran have no prototype and are
// searched with loops: a script may overwrite Array.prototype.push/indexOf or
// plant index setters, and must not break replay or the host by doing so. A
// prototype-less array keeps QuickJS's fast element storage, where defining
// each index with defineProperty cost ~1 us an entry on the replay path.
const setPrototypeOf = Object.setPrototypeOf;
function bareArray() { return setPrototypeOf([], null); }
function hasItem(arr, item) {
  for (let i = 0; i < arr.length; i++) if (arr[i] === item) return true;
  return false;
}

// ---- workflow state --------------------------------------------------------
let now = 0;                 // workflow time, ms since epoch
let replaying = false;       // true while journaled completions are delivered
let journal = [];            // entries still to replay (objects)
let journalIndex = 0;
const slots = bareArray();   // slot -> {kind, name, args, at, names, array, settle}
let outcome = null;          // {status:'completed', json} | {status:'faulted', error}
let continued = null;        // JSON text of continueAsNew args
let payloadLimit = 2 * 1024 * 1024;  // set by __start from Limits.payload

// ---- determinism: clock, randomness, non-deterministic globals -------------
// The workflow's time zone is UTC on every machine: the host's TZ must not
// change what a replay computes. Local-time constructors, parsing and methods
// are redirected to their UTC forms, and the string forms are built here.
const origParse = OrigDate.parse;
const origUTC = OrigDate.UTC;
const origGetTimezoneOffset = OrigDate.prototype.getTimezoneOffset;
// A string that names its zone (Z, +09:00, GMT+0900, UTC, PST...) or is an
// ISO date-only form (UTC by definition) parses the same everywhere; any
// other form QuickJS reads as local time, so the machine's offset is undone.
const ZONED = /(?:Z|[+-]\d\d(?::?\d\d)?|\b(?:GMT|UTC|UT|[ECMP][SD]T)(?:[+-]\d+(?::?\d\d)?)?)\s*$/i;
const DATE_ONLY = /^\s*[+-]?\d{4,6}(?:-\d\d(?:-\d\d)?)?\s*$/;
const COMMENT = /\([^)]*\)\s*$/;
function parseUTC(text) {
  const str = String(text);
  const t = origParse(str);
  if (t !== t) return t;
  const bare = applyFn(strReplace, str, [COMMENT, '']);
  if (applyFn(regexExec, ZONED, [bare]) !== null || applyFn(regexExec, DATE_ONLY, [bare]) !== null) return t;
  return t - applyFn(origGetTimezoneOffset, new OrigDate(t), []) * 60000;
}
function WorkflowDate(...args) {
  if (!new.target) return new OrigDate(now).toString();
  let a = args;
  if (args.length === 0) a = [now];
  else if (args.length === 1 && typeof args[0] === 'string') a = [parseUTC(args[0])];
  else if (args.length >= 2) a = [applyFn(origUTC, OrigDate, args)];
  return Reflect.construct(OrigDate, a, new.target);
}
WorkflowDate.prototype = OrigDate.prototype;
WorkflowDate.now = function now_() { return now; };
WorkflowDate.UTC = OrigDate.UTC;
WorkflowDate.parse = function parse(text) { return parseUTC(text); };
defineProperty(OrigDate.prototype, 'constructor', { value: WorkflowDate, writable: true, configurable: true });
G.Date = WorkflowDate;
(function utcOnly(proto) {
  const set = (name, fn) => defineProperty(proto, name, { value: fn, writable: true, configurable: true, enumerable: false });
  for (const part of ['FullYear', 'Month', 'Date', 'Day', 'Hours', 'Minutes', 'Seconds', 'Milliseconds']) {
    set('get' + part, proto['getUTC' + part]);
    if (part !== 'Day') set('set' + part, proto['setUTC' + part]);
  }
  const getUTCFullYear = proto.getUTCFullYear, setUTCFullYear = proto.setUTCFullYear;
  set('getYear', function getYear() { return applyFn(getUTCFullYear, this, []) - 1900; });
  set('setYear', function setYear(y) {
    const n = NumberCtor(y);
    return applyFn(setUTCFullYear, this, [n >= 0 && n <= 99 && Number.isInteger(n) ? 1900 + n : n]);
  });
  set('getTimezoneOffset', function getTimezoneOffset() { const t = this.getTime(); return t === t ? 0 : NaN; });
  const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const pad = (n, w) => { let t = String(n < 0 ? -n : n); while (t.length < w) t = '0' + t; return (n < 0 ? '-' : '') + t; };
  const parts = (d) => {
    const t = d.getTime();
    if (t !== t) return null;
    const x = new OrigDate(t);
    return { y: x.getUTCFullYear(), mo: x.getUTCMonth(), d: x.getUTCDate(), wd: x.getUTCDay(),
      h: x.getUTCHours(), mi: x.getUTCMinutes(), s: x.getUTCSeconds() };
  };
  const dateText = (p) => DAYS[p.wd] + ' ' + MONTHS[p.mo] + ' ' + pad(p.d, 2) + ' ' + pad(p.y, 4);
  const timeText = (p) => pad(p.h, 2) + ':' + pad(p.mi, 2) + ':' + pad(p.s, 2) + ' GMT+0000';
  const localeDate = (p) => (p.mo + 1) + '/' + p.d + '/' + p.y;
  const localeTime = (p) => pad(p.h % 12 === 0 ? 12 : p.h % 12, 2) + ':' + pad(p.mi, 2) + ':' + pad(p.s, 2) + (p.h < 12 ? ' AM' : ' PM');
  const text = (fmt) => function () { const p = parts(this); return p === null ? 'Invalid Date' : fmt(p); };
  set('toString', text((p) => dateText(p) + ' ' + timeText(p)));
  set('toDateString', text(dateText));
  set('toTimeString', text(timeText));
  set('toLocaleString', text((p) => localeDate(p) + ', ' + localeTime(p)));
  set('toLocaleDateString', text(localeDate));
  set('toLocaleTimeString', text(localeTime));
})(OrigDate.prototype);

let rs = [0, 0, 0, 0];
function random() {
  // sfc32: small, fast, and good enough for workflow decisions.
  let [a, b, c, d] = rs;
  a >>>= 0; b >>>= 0; c >>>= 0; d >>>= 0;
  const t = (a + b | 0) + d | 0;
  d = d + 1 | 0;
  a = b ^ (b >>> 9);
  b = c + (c << 3) | 0;
  c = (c << 21) | (c >>> 11);
  c = c + t | 0;
  rs = [a, b, c, d];
  return (t >>> 0) / 4294967296;
}
defineProperty(Math, 'random', { value: random, writable: false, configurable: false });
for (const name of ['performance', 'WeakRef', 'FinalizationRegistry', 'SharedArrayBuffer', 'Atomics']) {
  delete G[name];
}

// ---- console ---------------------------------------------------------------
function formatArg(v) {
  if (typeof v === 'string') return v;
  if (v instanceof Error) return (v.stack ? String(v.name) + ': ' + String(v.message) : String(v));
  try {
    const s = stringify(v);
    return s === undefined ? String(v) : s;
  } catch (e) {
    // String() of a cyclic array recurses until the stack limit ends the run
    return typeof v === 'object' ? '[unserialisable ' + (Array.isArray(v) ? 'array' : 'object') + ']' : String(v);
  }
}
// Lines past MAX_CONSOLE_LINES in one engine call are dropped (with one
// notice): every queued line is decoded and logged by Python outside the JS
// time limit, so a logging loop must not turn into unbounded host work.
const MAX_CONSOLE_LINES = 10000;
let consoleLines = 0;
// Arguments are always formatted, live or replaying and past the line cap:
// formatting runs script code (toJSON, getters), and a script must not be
// able to tell replay from live by whether it ran. Only the output is dropped.
function makeLogger(level) {
  return function (...args) {
    let msg = args.map(formatArg).join(' ');
    if (replaying || consoleLines > MAX_CONSOLE_LINES) return;
    if (++consoleLines > MAX_CONSOLE_LINES) {
      host.emit({ op: 'console', level: 'warn', message: '[console output truncated: more than ' + MAX_CONSOLE_LINES + ' lines in one call]' });
      return;
    }
    if (msg.length > MAX_CONSOLE) msg = msg.slice(0, MAX_CONSOLE) + '... [truncated]';
    host.emit({ op: 'console', level, message: msg });
  };
}
G.console = Object.freeze({
  log: makeLogger('log'), info: makeLogger('info'), warn: makeLogger('warn'),
  error: makeLogger('error'), debug: makeLogger('debug'),
});

// ---- scheduling ------------------------------------------------------------
// Step and suspend arguments over the payload limit are refused here, as a
// catchable RangeError, before they reach Python; continueAsNew's are checked
// by the engine (PayloadTooLargeError) like every other value leaving a run.
function encodeArgs(name, args, checkSize = true) {
  let text;
  try { text = stringify(args); } catch (e) {
    throw new TypeError('arguments of ' + name + ' are not JSON-serialisable: ' + describeError(e).message);
  }
  if (checkSize && text.length > payloadLimit) {
    throw new RangeError('arguments of ' + name + ' are ' + text.length +
      ' characters of JSON, over the payload limit of ' + payloadLimit + ' bytes');
  }
  return text;
}
// Every step or suspend call takes the next slot; its promise settles when a
// completion for that slot is delivered (from the journal or live). Arguments
// are captured as JSON text at call time and parsed only when reported.
// JS steps (runtime/steps.js) set stepHook: a call made inside a running step
// body is answered by the hook (not journaled) instead of taking a slot.
let stepHook = null;
function schedule(kind, name, args, extra) {
  { const guarded = lifecycleGuard(kind, name); if (guarded !== undefined) return guarded; }  // lifecycle.js
  if (stepHook !== null) { const p = stepHook(kind, name, args); if (p !== undefined) return p; }
  const argsJson = encodeArgs(name, args);
  const slot = slots.length;
  let resolve, reject;
  const promise = new PromiseCtor((res, rej) => { resolve = res; reject = rej; });
  // Objects the prelude fills by assignment have no prototype: an accessor a
  // script planted on Object.prototype (say a 'duration' setter) would
  // otherwise run with the record or command as `this` and could rewrite it.
  const rec = { __proto__: null, kind, name, argsJson, at: now, resolve, reject, settled: false, names: null, array: false, duration: undefined,
    optsJson: null, count: 0, received: null, cancelledBy: undefined };
  if (extra !== undefined) {
    if (extra.names !== undefined) { rec.names = extra.names; rec.array = extra.array; }
    if (extra.duration !== undefined) rec.duration = extra.duration;
    if (extra.wait !== undefined) waitOptions(rec, extra.wait);
  }
  slots[slot] = rec;
  if (kind !== 'step' && kind !== 'jsstep') track(promise, [slot]);
  if (!replaying) host.emit(describeSlot(slot, rec));
  return promise;
}
function describeSlot(slot, rec) {
  const out = { __proto__: null, op: 'schedule', slot, kind: rec.kind, name: rec.name, args: parse(rec.argsJson), at: rec.at };
  if (rec.kind === 'event') { out.names = rec.names; out.array = rec.array; }
  if (rec.duration !== undefined) out.duration = rec.duration;
  if (rec.optsJson !== null) out.wait = parse(rec.optsJson);
  if (rec.received !== null) out.received = rec.received;
  return out;
}
function makeError(err) {
  const name = err && err.name ? String(err.name) : 'Error';
  const message = err && err.message !== undefined ? String(err.message) : '';
  const Ctor = { TypeError, RangeError, SyntaxError, ReferenceError, URIError, EvalError }[name];
  const e = Ctor ? new Ctor(message) : new Error(message);
  if (!Ctor && name !== 'Error') e.name = name;
  return e;
}
function settle(slot, outcome_) {
  const rec = slots[slot];
  const resolve = rec.resolve, reject = rec.reject;
  rec.settled = true;
  rec.resolve = rec.reject = null;  // let the promise machinery be collected
  if (outcome_.error) {
    const e = makeError(outcome_.error);
    if (outcome_.received !== undefined) e.received = outcome_.received;
    reject(e);
  } else resolve(outcome_.value === undefined ? null : outcome_.value);
}

// ---- race losers -------------------------------------------------------------
// Every promise a wait hands out (sleep, waitForEvent, suspend functions) is
// tracked with the wait slots it derives from; then/catch/finally pass that on
// to the promises they return, and Promise.all/allSettled/race/any to theirs.
// When a race (or any) settles, the pending waits that only its losing inputs
// derive from are cancelled: they stop being pending, get no event, and their
// timers never fire. The settling happens at the same point of the delivery
// sequence live and on replay, so the cancellations do too. Not tracked: a
// wait awaited inside an async function (the function's promise is a new one),
// or resolved into a promise built with `new Promise`.
const WeakMapCtor = WeakMap;
const wmGet = WeakMap.prototype.get;
const wmSet = WeakMap.prototype.set;
const derivedFrom = new WeakMapCtor();  // promise -> bare array of wait slots
const promiseResolve = Promise.resolve;
function slotsOf(p) {
  return p !== null && (typeof p === 'object' || typeof p === 'function') ? applyFn(wmGet, derivedFrom, [p]) : undefined;
}
function track(p, list) {
  if (list.length > 0 && p !== null && (typeof p === 'object' || typeof p === 'function')) applyFn(wmSet, derivedFrom, [p, list]);
}
function pendingUnion(lists) {
  const out = bareArray();
  for (let i = 0; i < lists.length; i++) {
    const list = lists[i];
    if (list === undefined) continue;
    for (let j = 0; j < list.length; j++) {
      const s = list[j];
      if (!slots[s].settled && !hasItem(out, s)) out[out.length] = s;
    }
  }
  return out;
}
function cancelSlot(slot, by) {
  const rec = slots[slot];
  if (rec === undefined || rec.settled || rec.kind === 'step' || rec.kind === 'jsstep') return false;
  rec.settled = true;
  rec.cancelled = true;
  rec.cancelledBy = by;
  rec.resolve = rec.reject = null;
  if (!replaying) host.emit({ __proto__: null, op: 'cancel', slot });
  return true;
}
defineProperty(PromiseCtor.prototype, 'then', {
  value: function then(onFulfilled, onRejected) {
    const p = applyFn(promiseThen, this, [onFulfilled, onRejected]);
    const list = slotsOf(this);
    if (list !== undefined) track(p, list);
    return p;
  },
  writable: true, configurable: true, enumerable: false,
});
function listOf(iterable) {
  const items = [];
  for (const item of iterable) items[items.length] = item;
  return items;
}
function combinator(native, name, cancelLosers, onlyFulfilled) {
  const fn = { [name](iterable) {
    const items = listOf(iterable);
    const result = applyFn(native, this, [items]);
    const lists = bareArray();
    let tracked = false;
    for (let i = 0; i < items.length; i++) {
      lists[i] = slotsOf(items[i]);
      if (lists[i] !== undefined) tracked = true;
    }
    if (!tracked) return result;
    track(result, pendingUnion(lists));
    if (!cancelLosers) return result;
    const by = { __proto__: null, how: 'Promise.' + name, loc: siteOf(fn) };
    let settled = false;
    const won = (i) => {
      if (settled) return;
      settled = true;
      const keep = lists[i] === undefined ? bareArray() : lists[i];
      for (let j = 0; j < lists.length; j++) {
        const list = lists[j];
        if (j === i || list === undefined) continue;
        for (let k = 0; k < list.length; k++) if (!hasItem(keep, list[k])) cancelSlot(list[k], by);
      }
    };
    for (let i = 0; i < items.length; i++) {
      // Promises are watched directly; another object may be a thenable, whose
      // `then` must not run twice (the race itself calls it), so it is not
      // watched: if it wins, nothing is cancelled. Plain values settle at once.
      const item = items[i];
      let p = item;
      if (!(item instanceof PromiseCtor)) {
        if (item !== null && (typeof item === 'object' || typeof item === 'function')) continue;
        p = applyFn(promiseResolve, PromiseCtor, [item]);
      }
      applyFn(promiseThen, p, [() => won(i), onlyFulfilled ? undefined : () => won(i)]);
    }
    return result;
  } }[name];
  return fn;
}
for (const [name, cancelLosers, onlyFulfilled] of [['race', true, false], ['any', true, true], ['all', false, false], ['allSettled', false, false]]) {
  defineProperty(PromiseCtor, name, { value: combinator(PromiseCtor[name], name, cancelLosers, onlyFulfilled), writable: true, configurable: true, enumerable: false });
}

// ---- globals for scripts ---------------------------------------------------
// cancelWait(p): cancel the pending waits p derives from (see race losers);
// returns how many were cancelled. A cancelled wait's promise never settles.
G.cancelWait = function cancelWait(p) {
  if (p === null || (typeof p !== 'object' && typeof p !== 'function') || typeof p.then !== 'function') {
    throw new TypeError('cancelWait: expects the promise of sleep, waitForEvent or a suspend function (or one derived from it with then/catch/finally)');
  }
  const list = slotsOf(p);
  const by = { __proto__: null, how: 'cancelWait', loc: siteOf(cancelWait) };
  let n = 0;
  if (list !== undefined) for (let i = 0; i < list.length; i++) if (cancelSlot(list[i], by)) n++;
  return n;
};
// Durations: the grammar of jsflow/_durations.py (parse_duration), checked
// here so that a bad one is a catchable error where it is written, not a fault
// of the whole run when Python parses it. Keep the two identical.
const DURATION_UNITS = { __proto__: null, ms: 1, s: 1000, sec: 1000, m: 60000, min: 60000, h: 3600000, d: 86400000, w: 604800000 };
const MAX_DURATION_MS = 100 * 365 * 86400000;
const MAX_DURATION_TEXT = 100;
const DURATION_NUMBER = /^\d+(?:\.\d+)?$/;
const DURATION_PART = /^(\d+(?:\.\d+)?)(ms|sec|min|s|m|h|d|w)/i;
const DURATION_ISO = /^P(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$/i;
const strSlice = String.prototype.slice;
const strToUpper = String.prototype.toUpperCase;
const strToLower = String.prototype.toLowerCase;
function durationTextMs(fname, raw) {
  const bad = (why) => new RangeError(fname + ': invalid duration ' + stringify(applyFn(strSlice, raw, [0, 80])) + ': ' + why);
  if (raw.length > MAX_DURATION_TEXT) throw bad('longer than ' + MAX_DURATION_TEXT + ' characters');
  const text = applyFn(strReplace, raw, [/^[ \t\n\r]+|[ \t\n\r]+$/g, '']);
  if (text === '') throw bad('empty');
  if (text[0] === 'p' || text[0] === 'P') {
    const m = applyFn(regexExec, DURATION_ISO, [text]);
    const upper = applyFn(strToUpper, text, []);
    if (m === null || upper === 'P' || upper === 'PT') throw bad('not an ISO 8601 duration');
    const f = (v) => (v === undefined ? 0 : NumberCtor(v));
    return f(m[1]) * 604800000 + f(m[2]) * 86400000 + f(m[3]) * 3600000 + f(m[4]) * 60000 + f(m[5]) * 1000;
  }
  if (applyFn(regexExec, DURATION_NUMBER, [text]) !== null) return NumberCtor(text);
  let rest = applyFn(strReplace, text, [/ /g, '']);
  let total = 0;
  while (rest !== '') {
    const m = applyFn(regexExec, DURATION_PART, [rest]);
    if (m === null) throw bad("use forms like '500ms', '10s', '5m', '2h', '3d', '1w', '1h30m' or ISO 8601 'PT1H'");
    total += NumberCtor(m[1]) * DURATION_UNITS[applyFn(strToLower, m[2], [])];
    rest = applyFn(strSlice, rest, [m[0].length]);
  }
  return total;
}
function durationArg(fname, d) {
  let ms;
  if (typeof d === 'number') {
    if (!Number.isFinite(d)) throw new RangeError(fname + ': duration must be a finite number of milliseconds');  // NaN would cross as null
    ms = d;
  } else if (typeof d === 'string') {
    ms = durationTextMs(fname, d);
  } else {
    throw new TypeError(fname + ': duration must be a string like "5m" or a number of milliseconds');
  }
  if (ms < 0) throw new RangeError(fname + ': invalid duration ' + String(d) + ': negative');
  if (ms > MAX_DURATION_MS) throw new RangeError(fname + ': invalid duration: longer than 100 years');
  return d;
}
// Options objects: an unknown name (a typo like `timout`) is a TypeError
// naming it, not silently ignored.
function checkOptions(fname, opts, known) {
  if (opts === undefined || opts === null) return;
  if (typeof opts !== 'object') throw new TypeError(fname + ': options must be an object');
  const keys = Object.keys(opts);
  for (let i = 0; i < keys.length; i++) {
    if (!hasItem(known, keys[i])) {
      throw new TypeError(fname + ': unknown option ' + stringify(keys[i]) + ' (known options: ' + known.join(', ') + ')');
    }
  }
}
// ---- approvals: where a wait was made, matching, counting, defaults --------
// siteOf(fn): {line, column} (1-based) of the call of `fn` that is running,
// i.e. the frame just below it: the user's script when `fn` is a public
// built-in the script called. Read through prepareStackTrace's call sites
// (no text parsing), with the script's own prepareStackTrace put back
// afterwards (the bridge pins stackTraceLimit).
const ErrorCtor = Error;
const captureStack = Error.captureStackTrace;
let siteFound = null;
function prepareSite(e, sites) {
  siteFound = null;
  const cs = sites && sites[0];
  if (cs) {
    const line = cs.getLineNumber(), column = cs.getColumnNumber();
    if (typeof line === 'number' && line > 0) siteFound = { __proto__: null, line, column: typeof column === 'number' && column > 0 ? column : 1 };
  }
  return '';
}
function siteOf(fn) {
  if (typeof captureStack !== 'function') return null;
  const prevPrepare = ErrorCtor.prepareStackTrace;
  siteFound = null;
  try {
    ErrorCtor.prepareStackTrace = prepareSite;
    const holder = { __proto__: null };
    applyFn(captureStack, ErrorCtor, [holder, fn]);
    void holder.stack;
  } catch (e) {
    siteFound = null;
  } finally {
    try { ErrorCtor.prepareStackTrace = prevPrepare; } catch (e) { /* made read-only by the script */ }
  }
  const site = siteFound;
  siteFound = null;
  return site === null ? null : { line: site.line, column: site.column };
}
// The call site of the wait about to take the next slot, unless replay will
// settle that slot from the journal anyway (its site is never shown): reading
// a stack costs ~20 us, which a long journal of waits would pay per entry.
// A counting wait may stay pending after its journaled events: always read.
let journaledSlots = { __proto__: null };
function siteFor(fn, counting) {
  if (replaying && !counting && journaledSlots[slots.length] === true) return null;
  return siteOf(fn);
}
function jsonOption(fname, key, value) {
  let text;
  try { text = stringify(value); } catch (e) {
    throw new TypeError(fname + ': option ' + key + ' is not JSON-serialisable: ' + describeError(e).message);
  }
  if (text === undefined) throw new TypeError(fname + ': option ' + key + ' is not a JSON value');
  return parse(text);
}
function isPlainObject(v) { return v !== null && typeof v === 'object' && !Array.isArray(v); }
// The options of a wait that Python acts on, as JSON text on the slot record:
// site, match, count, distinct, schema, default (hasDefault tells a default of
// null from none). `received` collects what a counting wait has been given.
function waitOptions(rec, wait) {
  rec.optsJson = encodeArgs(rec.name, wait);
  if (wait.count !== undefined) { rec.count = wait.count; rec.received = bareArray(); }
}
function defaultAndSchema(fname, opts, wait) {
  if (opts.default !== undefined) { wait.hasDefault = true; wait.default = jsonOption(fname, 'default', opts.default); }
  if (opts.schema !== undefined) {
    if (typeof opts.schema !== 'boolean' && !isPlainObject(opts.schema)) throw new TypeError(fname + ': option schema must be a JSON Schema object');
    wait.schema = jsonOption(fname, 'schema', opts.schema);
  }
}
function suspendOptions(name, options) {
  const wait = { __proto__: null };
  if (options !== undefined && options !== null) defaultAndSchema(name, options, wait);
  return wait;
}
const EVENT_OPTIONS = ['timeout', 'default', 'match', 'schema'];
const EVENTS_OPTIONS = ['count', 'distinct', 'match', 'timeout', 'default', 'schema'];
function eventWait(fname, self, nameOrNames, opts, known) {
  const array = Array.isArray(nameOrNames);
  const names = array ? nameOrNames.map(String) : [String(nameOrNames)];
  if (names.length === 0) throw new TypeError(fname + ': give at least one event name');
  checkOptions(fname, opts, known);
  const extra = { __proto__: null, names, array };
  const counting = opts !== undefined && opts !== null && opts.count !== undefined;
  const wait = { __proto__: null, site: siteFor(self, counting) };
  const shown = {};
  if (opts !== undefined && opts !== null) {
    if (opts.timeout !== undefined) { extra.duration = durationArg(fname, opts.timeout); shown.timeout = opts.timeout; }
    if (opts.match !== undefined) {
      if (!isPlainObject(opts.match)) throw new TypeError(fname + ': option match must be an object, e.g. { match: { orderId: "A-17" } }');
      wait.match = shown.match = jsonOption(fname, 'match', opts.match);
    }
    if (opts.count !== undefined) {
      const n = opts.count;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 10000) throw new RangeError(fname + ': option count must be a whole number from 1 to 10000');
      wait.count = shown.count = n;
    }
    if (opts.distinct !== undefined) {
      if (typeof opts.distinct !== 'string' || opts.distinct === '') throw new TypeError(fname + ': option distinct must name a top-level payload field, e.g. { distinct: "voter" }');
      wait.distinct = shown.distinct = opts.distinct;
    }
    defaultAndSchema(fname, opts, wait);
    if (wait.hasDefault) shown.default = wait.default;
    if (wait.schema !== undefined) shown.schema = wait.schema;
  }
  extra.wait = wait;
  const args = [nameOrNames];
  if (Object.keys(shown).length > 0) args.push(shown);
  return schedule('event', fname, args, extra);
}
function copyList(list) { return parse(stringify(list)); }
// Hands one completion to its slot. A counting wait (waitForEvents) collects
// event entries until it has `count` of them, then resolves with the list;
// its timeout rejects with a TimeoutError carrying `.received`.
function deliverEntry(slot, entry, rec) {
  now = entry.at_ms;
  if (rec.received === null) { settle(slot, valueOf(entry, rec)); return; }
  const out = valueOf(entry, rec);
  if (entry.type === 'event') {
    rec.received[rec.received.length] = out.value === undefined ? null : out.value;
    if (rec.received.length >= rec.count) settle(slot, { value: copyList(rec.received) });
    return;
  }
  if (out.error) out.received = copyList(rec.received);
  settle(slot, out);
}
G.sleep = function sleep(duration) {
  return schedule('suspend', 'sleep', [durationArg('sleep', duration)],
    { __proto__: null, duration: duration, wait: { __proto__: null, site: siteFor(sleep, false) } });
};
G.waitForEvent = function waitForEvent(nameOrNames, opts) {
  return eventWait('waitForEvent', waitForEvent, nameOrNames, opts, EVENT_OPTIONS);
};
G.waitForEvents = function waitForEvents(nameOrNames, opts) {
  if (opts === undefined || opts === null || typeof opts !== 'object' || opts.count === undefined) {
    throw new TypeError('waitForEvents: give the number of events to wait for, as in waitForEvents(name, { count: 2 })');
  }
  return eventWait('waitForEvents', waitForEvents, nameOrNames, opts, EVENTS_OPTIONS);
};
G.continueAsNew = function continueAsNew(...args) {
  if (continued === null) continued = encodeArgs('continueAsNew', args, false);
  host.emit({ op: 'continue' });
  return new PromiseCtor(() => {});
};

// ---- ops driven by Python --------------------------------------------------
host.register('__define', function (steps, suspends) {
  for (const name of steps) {
    G[name] = function (...args) { return schedule('step', name, args); };
  }
  for (const name of suspends) {
    const fn = { [name](...args) { return schedule('suspend', name, args, { __proto__: null, wait: { __proto__: null, site: siteFor(fn, false) } }); } }[name];
    G[name] = fn;
  }
  return null;
});
// Extension functions (jsflow._extension) are not globals: they go in a frozen
// object that only the extensions' own JS sees; the engine deletes the one
// global that passes it before any user code runs.
host.register('__defineInternal', function (steps, suspends) {
  const ops = { __proto__: null };
  for (const name of steps) ops[name] = function (...args) { return schedule('step', name, args); };
  for (const name of suspends) ops[name] = function (...args) { return schedule('suspend', name, args); };
  // ops.suspendWith(name, args, options, skip): a suspension with wait options
  // (default, schema) whose call site is the caller of `skip` (a built-in's
  // public function), so the location points into the user's script.
  ops.suspendWith = function (name, args, options, skip) {
    if (!hasItem(suspends, name)) throw new TypeError('not an internal suspend function: ' + name);
    const wait = suspendOptions(name, options);
    wait.site = siteFor(skip, false);
    return schedule('suspend', name, args, { __proto__: null, wait });
  };
  // true when every wait p derives from was cancelled (it lost a race): p never settles
  ops.cancelled = function (p) {
    const list = slotsOf(p);
    if (list === undefined || list.length === 0) return false;
    for (let i = 0; i < list.length; i++) if (!slots[list[i]].cancelled) return false;
    return true;
  };
  defineProperty(G, '__jsflow_ext_ops', { value: Object.freeze(ops), configurable: true, writable: false, enumerable: false });
  return null;
});
host.register('__setValue', function (name, value) { G[name] = value; return null; });

host.register('__start', function (entry, args, startedAt, seed, limit, journalEntries) {
  now = startedAt;
  rs = seed;
  payloadLimit = limit;
  journal = journalEntries;
  journalIndex = 0;
  journaledSlots = { __proto__: null };
  for (let i = 0; i < journal.length; i++) {
    const t = journal[i].type;
    if (t !== 'patch' && t !== 'cancel') journaledSlots[journal[i].slot] = true;  // those settle no slot
  }
  replaying = journal.length > 0 || replayStart;  // replayStart: lifecycle.js
  const fn = G[entry];
  if (typeof fn !== 'function') {
    return { missing: typeof fn };
  }
  let ret;
  try {
    ret = fn(...args);
  } catch (e) {
    finish(new PromiseCtor((res, rej) => rej(e)));
    return null;
  }
  finish(new PromiseCtor((res) => res(ret)));
  return null;
});
function finish(p) {
  applyFn(promiseThen, p, [(v) => {
    if (outcome) return;
    let json;
    try { json = v === undefined ? 'null' : stringify(v); } catch (e) {
      outcome = { status: 'faulted', error: describeError(new TypeError('workflow return value is not JSON-serialisable: ' + describeError(e).message)) };
      host.emit({ op: 'done' });
      return;
    }
    outcome = { status: 'completed', json: json === undefined ? 'null' : json };
    host.emit({ op: 'done' });
  }, (e) => {
    if (outcome) return;
    outcome = { status: 'faulted', error: describeError(e) };
    host.emit({ op: 'done' });
  }]);
}

const FAMILY = { step: 'step', step_error: 'step', resume: 'suspend', event: 'suspend', timeout: 'suspend' };
function familyOf(kind) { return kind === 'step' || kind === 'jsstep' ? 'step' : 'suspend'; }  // jsstep: steps.js
// Delivers the next journaled completion, after checking that the script
// scheduled the same thing at that slot. Returns null, or a drift report.
host.register('__next', function () {
  if (journalIndex >= journal.length) return null;  // entries consumed by patched() (lifecycle.js)
  const entry = journal[journalIndex];
  if (entry.type === 'cancel' || entry.type === 'patch') return controlEntry(entry);
  const rec = slots[entry.slot];
  const family = FAMILY[entry.type];
  if (outcome || continued !== null || rec === undefined || rec.settled || familyOf(rec.kind) !== family ||
      rec.name !== entry.name || (entry.type === 'event' && !hasItem(rec.names, entry.event))) {
    return drift(entry, rec);
  }
  journalIndex += 1;
  deliverEntry(entry.slot, entry, rec);
  return null;
});
function drift(entry, rec) {
  const report = { slot: entry.slot, expected_type: FAMILY[entry.type], expected_name: entry.name,
    encountered_type: null, encountered_name: null };
  if (outcome || continued !== null) { report.finished = true; return report; }
  if (rec && !rec.settled) {
    report.encountered_type = familyOf(rec.kind);
    report.encountered_name = rec.name;
    report.encountered_events = rec.names;
  }
  report.event = entry.event === undefined ? null : entry.event;
  return report;
}
function valueOf(entry, rec) {
  if (entry.type === 'step_error') return { error: entry.error };
  if (entry.type === 'timeout') return entry.error ? { error: entry.error } : { value: entry.result };  // a default
  if (entry.type === 'event' && rec.array) return { value: { name: entry.event, payload: entry.result === undefined ? null : entry.result } };  // a null payload is not journaled
  return { value: entry.result };
}
// End of replay: from here on console output is live and new slots are reported.
host.register('__snapshot', function () {
  replaying = false;
  const pending = bareArray();
  for (let i = 0; i < slots.length; i++) {
    if (!slots[i].settled) pending[pending.length] = describeSlot(i, slots[i]);
  }
  return { pending, done: outcome !== null, continued: continued !== null };
});
host.register('__deliver', function (slot, entry) {
  const rec = slots[slot];
  if (!rec || rec.settled) throw new TypeError('slot ' + slot + ' is not pending');
  deliverEntry(slot, entry, rec);
  return null;
});
host.register('__outcome', function () {
  return { outcome, continued };
});
// The most recent wait a race (or cancelWait) cancelled: when the run then
// awaits nothing the engine knows, this is the likely reason, and the fault says so.
// Of the waits the latest race cancelled, the first-scheduled one is named
// (a loop awaiting the losers in order stops at it).
host.register('__lostRace', function () {
  let by = null;
  for (let i = slots.length - 1; i >= 0 && by === null; i--) if (slots[i].cancelled && slots[i].cancelledBy) by = slots[i].cancelledBy;
  if (by === null) return null;
  for (let i = 0; i < slots.length; i++) {
    const rec = slots[i];
    if (rec.cancelledBy !== by) continue;
    const wait = rec.optsJson === null ? null : parse(rec.optsJson);
    return { slot: i, name: rec.name, names: rec.names, loc: wait === null ? null : wait.site, how: by.how, at: by.loc };
  }
  return null;
});
