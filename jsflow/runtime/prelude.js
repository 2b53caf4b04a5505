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
let payloadLimit = 50 * 1024 * 1024;

// ---- determinism: clock, randomness, non-deterministic globals -------------
function WorkflowDate(...args) {
  if (!new.target) return new OrigDate(now).toString();
  return Reflect.construct(OrigDate, args.length === 0 ? [now] : args, new.target);
}
WorkflowDate.prototype = OrigDate.prototype;
WorkflowDate.now = function now_() { return now; };
WorkflowDate.UTC = OrigDate.UTC;
WorkflowDate.parse = OrigDate.parse;
defineProperty(OrigDate.prototype, 'constructor', { value: WorkflowDate, writable: true, configurable: true });
G.Date = WorkflowDate;

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
function makeLogger(level) {
  return function (...args) {
    if (replaying || consoleLines > MAX_CONSOLE_LINES) return;
    if (++consoleLines > MAX_CONSOLE_LINES) {
      host.emit({ op: 'console', level: 'warn', message: '[console output truncated: more than ' + MAX_CONSOLE_LINES + ' lines in one call]' });
      return;
    }
    let msg = args.map(formatArg).join(' ');
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
  if (stepHook !== null) { const p = stepHook(kind, name, args); if (p !== undefined) return p; }
  const argsJson = encodeArgs(name, args);
  const slot = slots.length;
  let resolve, reject;
  const promise = new PromiseCtor((res, rej) => { resolve = res; reject = rej; });
  // Objects the prelude fills by assignment have no prototype: an accessor a
  // script planted on Object.prototype (say a 'duration' setter) would
  // otherwise run with the record or command as `this` and could rewrite it.
  const rec = { __proto__: null, kind, name, argsJson, at: now, resolve, reject, settled: false, names: null, array: false, duration: undefined };
  if (extra !== undefined) {
    if (extra.names !== undefined) { rec.names = extra.names; rec.array = extra.array; }
    if (extra.duration !== undefined) rec.duration = extra.duration;
  }
  slots[slot] = rec;
  if (!replaying) host.emit(describeSlot(slot, rec));
  return promise;
}
function describeSlot(slot, rec) {
  const out = { __proto__: null, op: 'schedule', slot, kind: rec.kind, name: rec.name, args: parse(rec.argsJson), at: rec.at };
  if (rec.kind === 'event') { out.names = rec.names; out.array = rec.array; }
  if (rec.duration !== undefined) out.duration = rec.duration;
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
  if (outcome_.error) reject(makeError(outcome_.error));
  else resolve(outcome_.value === undefined ? null : outcome_.value);
}

// ---- globals for scripts ---------------------------------------------------
function durationArg(fname, d) {
  if (typeof d === 'string' || (typeof d === 'number' && Number.isFinite(d))) return d;  // NaN would cross as null
  throw new TypeError(fname + ': duration must be a string like "5m" or a finite number of milliseconds');
}
G.sleep = function sleep(duration) {
  return schedule('suspend', 'sleep', [durationArg('sleep', duration)], { __proto__: null, duration: duration });
};
G.waitForEvent = function waitForEvent(nameOrNames, opts) {
  const array = Array.isArray(nameOrNames);
  const names = array ? nameOrNames.map(String) : [String(nameOrNames)];
  if (names.length === 0) throw new TypeError('waitForEvent: give at least one event name');
  const extra = { __proto__: null, names, array };
  const args = [nameOrNames];
  if (opts && opts.timeout !== undefined) {
    extra.duration = durationArg('waitForEvent', opts.timeout);
    args.push({ timeout: opts.timeout });
  }
  return schedule('event', 'waitForEvent', args, extra);
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
    G[name] = function (...args) { return schedule('suspend', name, args); };
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
  replaying = journal.length > 0;
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
  const entry = journal[journalIndex];
  const rec = slots[entry.slot];
  const family = FAMILY[entry.type];
  if (outcome || continued !== null || rec === undefined || rec.settled || familyOf(rec.kind) !== family ||
      rec.name !== entry.name || (entry.type === 'event' && !hasItem(rec.names, entry.event))) {
    return drift(entry, rec);
  }
  journalIndex += 1;
  now = entry.at_ms;
  settle(entry.slot, valueOf(entry, rec));
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
  if (entry.type === 'step_error' || entry.type === 'timeout') return { error: entry.error };
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
  now = entry.at_ms;
  settle(slot, valueOf(entry, rec));
  return null;
});
host.register('__outcome', function () {
  return { outcome, continued };
});
