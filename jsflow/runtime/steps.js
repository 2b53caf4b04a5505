// jsflow prelude, part 2: JS steps (`step(name, fn, opts)`) and the opt-in
// WHATWG-style `fetch`. Concatenated after prelude.js into the same installer
// function (see _prelude.py), so it shares that file's closure: schedule,
// slots, settle, makeError, stringify, parse, describeError, rs, stepHook.
//
// A JS step takes one slot (kind 'jsstep', journaled as type 'step' under its
// own name). Python decides when its body runs: only live, only for a slot
// with no journaled completion, by calling __runStep and draining. Calls made
// while a body runs (the `activeStep` window: the body's synchronous part and
// every drain after an ephemeral delivery to it) take no slot: Python steps
// and fetch go through the ephemeral channel (op 'ephemeral' out,
// __ephemeral in), suspensions are refused. On replay the body never runs.

let activeStep = null;        // {slot, attempt} while a step body's code runs
let ephemeralSeq = 0;
const ephemeral = new Map();  // request id -> {resolve, reject, owner}
const attempts = new Map();   // slot -> current attempt number (live only)
const MAX_ERROR = 2000;

// The step body's randomness must not advance the workflow's PRNG: the body
// does not run on replay, so it would shift every later Math.random(). Each
// attempt gets its own stream, swapped in for the activeStep window.
const stepRandom = new Map();  // slot -> PRNG state of its running attempt
let workflowRs = null;
function enterStep(owner) {
  activeStep = owner;
  workflowRs = rs;
  rs = stepRandom.get(owner.slot) || [0x9e3779b9 ^ owner.slot, 0x85ebca6b ^ owner.attempt, 0xc2b2ae35, 0x27d4eb2f];
}
function leaveStep() {
  if (activeStep === null) return;
  if (attempts.get(activeStep.slot) === activeStep.attempt) stepRandom.set(activeStep.slot, rs);
  else stepRandom.delete(activeStep.slot);
  rs = workflowRs;
  activeStep = null;
}

stepHook = function (kind, name, args) {
  if (activeStep === null) return undefined;
  if (kind === 'step') return ephemeralCall(name, parse(encodeArgs(name, args)));
  const what = kind === 'jsstep' ? 'step()' : name + '()';
  return Promise.reject(new TypeError(
    what + ' cannot be used inside the body of step ' + JSON.stringify(slots[activeStep.slot].name) +
    ': a step body is not replayed, so it cannot take durable slots; call it outside the step'));
};

function ephemeralCall(name, encodedArgs) {
  const id = ++ephemeralSeq;
  const owner = activeStep;
  const p = new Promise((resolve, reject) => { ephemeral.set(id, { resolve, reject, owner }); });
  host.emit({ op: 'ephemeral', id, owner: owner.slot, attempt: owner.attempt, name, args: encodedArgs });
  return p;
}

const STEP_OPTIONS = ['retries', 'backoff', 'factor'];
G.step = function step(name, fn, opts) {
  if (typeof name !== 'string' || name === '') throw new TypeError('step: the first argument must be a non-empty string name');
  if (name[0] === '_' && name[1] === '_' && name[2] === 'j') throw new TypeError('step: names starting with "__j" are reserved by jsflow');
  if (typeof fn !== 'function') throw new TypeError('step ' + JSON.stringify(name) + ': the second argument must be a function');
  checkOptions('step ' + JSON.stringify(name), opts, STEP_OPTIONS);
  const o = opts === undefined || opts === null ? {} : opts;
  const retries = o.retries === undefined ? 0 : o.retries;
  if (!Number.isInteger(retries) || retries < 0) throw new TypeError('step ' + JSON.stringify(name) + ': retries must be a non-negative integer');
  const backoff = o.backoff === undefined ? 0 : o.backoff;
  if (typeof backoff !== 'number' || !(backoff >= 0) || !Number.isFinite(backoff)) {
    throw new TypeError('step ' + JSON.stringify(name) + ': backoff must be a non-negative number of milliseconds');
  }
  const factor = o.factor === undefined ? 1 : o.factor;
  if (typeof factor !== 'number' || !(factor >= 1) || !Number.isFinite(factor)) {
    throw new TypeError('step ' + JSON.stringify(name) + ': factor must be a number >= 1');
  }
  if (activeStep !== null) return schedule('jsstep', name, []);  // refused by stepHook
  const slot = slots.length;
  const promise = schedule('jsstep', name, []);
  const rec = slots[slot];
  rec.fn = fn; rec.retries = retries; rec.backoff = backoff; rec.factor = factor;
  return promise;
};

// Runs one attempt of a step body. The outcome is reported with a 'jsstep'
// command; the slot settles only when Python has journaled it (__deliver).
host.register('__runStep', function (slot, attempt) {
  const rec = slots[slot];
  if (!rec || rec.kind !== 'jsstep' || rec.settled) throw new TypeError('slot ' + slot + ' is not a pending step');
  attempts.set(slot, attempt);
  const report = (body) => {
    if (attempts.get(slot) !== attempt) return;  // a stale attempt finishing late
    attempts.delete(slot);
    for (const [id, req] of ephemeral) if (req.owner.slot === slot) ephemeral.delete(id);
    const cmd = { __proto__: null, op: 'jsstep', slot, attempt };  // no prototype: see schedule()
    if (body.json !== undefined) cmd.json = body.json;
    else { cmd.error = body.error; if (body.retry_ms !== undefined) cmd.retry_ms = body.retry_ms; }
    host.emit(cmd);
  };
  const failed = (e) => {
    const d = describeError(e);
    const out = { __proto__: null, error: { name: String(d.name), message: String(d.message).slice(0, MAX_ERROR) } };
    if (attempt <= rec.retries) out.retry_ms = rec.backoff * Math.pow(rec.factor, attempt - 1);
    report(out);
  };
  stepRandom.delete(slot);
  enterStep({ slot, attempt });
  let ret;
  try {
    ret = rec.fn();
  } catch (e) {
    failed(e);
    return null;
  }
  Promise.resolve(ret).then((v) => {
    let json;
    try { json = v === undefined ? 'null' : stringify(v); } catch (e) {
      failed(new TypeError('step ' + JSON.stringify(rec.name) + ' returned a value that is not JSON-serialisable: ' + describeError(e).message));
      return;
    }
    report({ __proto__: null, json: json === undefined ? 'null' : json });
  }, failed);
  return null;
});
host.register('__ephemeral', function (id, outcome) {
  const req = ephemeral.get(id);
  if (!req) return false;  // its step attempt already ended
  ephemeral.delete(id);
  enterStep(req.owner);
  if (outcome.error) req.reject(makeError(outcome.error));
  else req.resolve(outcome.value === undefined ? null : outcome.value);
  return true;
});
// Closes the activeStep window after Python drained the jobs the body queued.
host.register('__endStep', function () { leaveStep(); return null; });

// ---- fetch -------------------------------------------------------------------
function normalizeHeaders(h) {
  const out = {};
  if (h === undefined || h === null) return out;
  const add = (k, v) => {
    const key = String(k).toLowerCase();
    out[key] = key in out ? out[key] + ', ' + String(v) : String(v);
  };
  if (Array.isArray(h)) { for (const pair of h) add(pair[0], pair[1]); return out; }
  if (typeof h !== 'object') throw new TypeError('fetch: init.headers must be a plain object');
  if (typeof h.forEach === 'function' && h instanceof ResponseHeaders) { h.forEach((v, k) => add(k, v)); return out; }
  for (const k of Object.keys(h)) add(k, h[k]);
  return out;
}
function ResponseHeaders(map) {
  for (const k of Object.keys(map)) this[k] = map[k];
}
const hproto = ResponseHeaders.prototype;
for (const [k, f] of Object.entries({
  get(name) { const v = this[String(name).toLowerCase()]; return typeof v === 'string' ? v : null; },
  has(name) { return typeof this[String(name).toLowerCase()] === 'string'; },
  forEach(cb) { for (const k of Object.keys(this)) cb(this[k], k, this); },
  entries() { return Object.keys(this).map((k) => [k, this[k]])[Symbol.iterator](); },
  keys() { return Object.keys(this)[Symbol.iterator](); },
})) Object.defineProperty(hproto, k, { value: f, enumerable: false, writable: true, configurable: true });

class Response {
  #body;
  #used = false;
  constructor(d) {
    this.status = d.status;
    this.statusText = d.statusText || '';
    this.ok = d.status >= 200 && d.status <= 299;
    this.url = d.url;
    this.redirected = !!d.redirected;
    this.headers = new ResponseHeaders(d.headers || {});
    this.#body = d.body === undefined || d.body === null ? '' : String(d.body);
    this._d = d;
    Object.defineProperty(this, '_d', { enumerable: false });
  }
  get bodyUsed() { return this.#used; }
  #consume() {
    if (this.#used) return Promise.reject(new TypeError('fetch: the response body has already been read'));
    this.#used = true;
    return Promise.resolve(this.#body);
  }
  text() { return this.#consume(); }
  json() { return this.#consume().then((t) => JSON.parse(t)); }
  clone() {
    if (this.#used) throw new TypeError('fetch: cannot clone a response whose body has been read');
    return new Response(this._d);
  }
}

// The Fetch standard's forbidden request headers and methods (the Python
// side, _fetch.py FORBIDDEN_HEADERS, refuses them again): a TypeError here,
// before anything is journaled.
const FORBIDDEN_HEADERS = ['accept-charset', 'accept-encoding', 'access-control-request-headers',
  'access-control-request-method', 'connection', 'content-length', 'cookie', 'cookie2', 'date', 'dnt',
  'expect', 'host', 'keep-alive', 'origin', 'referer', 'set-cookie', 'te', 'trailer',
  'transfer-encoding', 'upgrade', 'via'];
const METHOD_OVERRIDE_HEADERS = ['x-http-method', 'x-http-method-override', 'x-method-override'];
const FORBIDDEN_METHODS = ['CONNECT', 'TRACE', 'TRACK'];
function checkHeaders(headers) {
  for (const name of Object.keys(headers)) {
    if (hasItem(FORBIDDEN_HEADERS, name) || name.startsWith('proxy-') || name.startsWith('sec-')) {
      throw new TypeError('fetch: ' + JSON.stringify(name) + ' is a forbidden request header');
    }
    if (hasItem(METHOD_OVERRIDE_HEADERS, name) &&
        headers[name].split(',').some((m) => hasItem(FORBIDDEN_METHODS, m.trim().toUpperCase()))) {
      throw new TypeError('fetch: ' + JSON.stringify(name) + ' names a forbidden method');
    }
  }
}
function buildRequest(input, init) {
  const url = typeof input === 'string' ? input : (input && typeof input.url === 'string' ? input.url : String(input));
  const i = init === undefined || init === null ? {} : init;
  const method = i.method === undefined ? 'GET' : String(i.method).toUpperCase();
  let body = i.body === undefined || i.body === null ? null : i.body;
  if (body !== null && typeof body !== 'string') {
    throw new TypeError('fetch: init.body must be a string (use JSON.stringify for JSON)');
  }
  if (body !== null && (method === 'GET' || method === 'HEAD')) {
    throw new TypeError('fetch: a ' + method + ' request cannot have a body');
  }
  if (hasItem(FORBIDDEN_METHODS, method)) throw new TypeError('fetch: ' + method + ' is a forbidden method');
  const headers = normalizeHeaders(i.headers);
  checkHeaders(headers);
  return { url, method, headers, body };
}

host.register('__enableFetch', function () {
  const journaled = G.fetch;  // the step function __define made for 'fetch'
  G.Response = Response;
  G.fetch = function fetch(input, init) {
    let req;
    try { req = buildRequest(input, init); } catch (e) { return Promise.reject(e); }
    return journaled(req).then((d) => new Response(d), (e) => {
      // Python's FetchRefusedError/FetchTransportError: WHATWG fetch rejects with TypeError
      if (e && typeof e.name === 'string' && e.name.startsWith('Fetch')) throw new TypeError(e.message);
      throw e;
    });
  };
  return null;
});
