// js_runtime bridge: evaluated once in every fresh context, before any other code.
//
// It returns [dispatch, host]. Python holds `dispatch` (never exposed as a global)
// and calls it with (op, argsJson); every answer is a JSON string built here, under
// the time limit, so Python never converts a user value itself. `host` is handed
// to trusted installers (the jsflow prelude) so they can queue commands and
// register ops without any global the script could reach.
(function () {
  'use strict';
  const G = globalThis;
  const stringify = JSON.stringify;
  const parse = JSON.parse;
  const indirectEval = G.eval;
  const apply = Reflect.apply;
  const defineProperty = Object.defineProperty;
  const getOwnDesc = Object.getOwnPropertyDescriptor;
  const freeze = Object.freeze;
  const setPrototypeOf = Object.setPrototypeOf;
  const objectKeys = Object.keys;
  const isArray = Array.isArray;
  const StringCtor = String;
  const stringSlice = String.prototype.slice;
  const promiseThen = Promise.prototype.then;
  const MAX_DEPTH = 100;  // the fallback serialiser's nesting bound (cycles end here)
  const MAX_MESSAGE = 2000;
  const MAX_STACK = 4000;

  // --- hardening -----------------------------------------------------------
  // Error.prototype and friends are frozen so a script cannot plant a looping
  // getter or toString that Python would later run without a time limit when
  // it turns an (uncatchable) interrupt into a string. Data properties become
  // accessors whose setter defines an own property on the receiver, so the
  // usual `this.name = 'MyError'` in subclasses keeps working.
  function tamperProof(obj) {
    for (const key of Reflect.ownKeys(obj)) {
      const desc = getOwnDesc(obj, key);
      if (!desc || !('value' in desc) || !desc.configurable) continue;
      const value = desc.value;
      defineProperty(obj, key, {
        configurable: false,
        enumerable: desc.enumerable,
        get() { return value; },
        set(v) {
          if (this === obj) throw new TypeError('Cannot assign to ' + StringCtor(key) + ' of a frozen prototype');
          defineProperty(this, key, { value: v, writable: true, enumerable: true, configurable: true });
        },
      });
    }
    freeze(obj);
  }
  const errorCtors = ['Error', 'EvalError', 'RangeError', 'ReferenceError', 'SyntaxError',
    'TypeError', 'URIError', 'InternalError', 'AggregateError', 'SuppressedError'];
  for (const name of errorCtors) {
    const C = G[name];
    if (typeof C !== 'function') continue;
    tamperProof(C.prototype);
  }
  defineProperty(G.Error, 'stackTraceLimit', { value: 10, writable: false, configurable: false });
  // ToPrimitive looks up Symbol.toPrimitive through the prototype chain, up to
  // Object.prototype, and JSON.stringify looks up toJSON on every object it
  // writes, replies and commands included. Pin those slots on the shared
  // prototypes so a script can neither hang a conversion nor forge a reply;
  // the setter still lets a script give its own objects either property.
  function pin(proto, key) {
    defineProperty(proto, key, {
      configurable: false,
      enumerable: false,
      get() { return undefined; },
      set(v) {
        if (this === proto) throw new TypeError('Cannot plant ' + StringCtor(key) + ' on a shared prototype');
        defineProperty(this, key, { value: v, writable: true, enumerable: false, configurable: true });
      },
    });
  }
  pin(Object.prototype, Symbol.toPrimitive);
  pin(Object.prototype, 'toJSON');
  pin(Array.prototype, 'toJSON');

  // --- limits a script cannot catch ------------------------------------------
  // QuickJS lets a script catch out-of-memory (an InternalError, or `null`
  // when it cannot even build that error) and stack overflow. Whoever sees
  // one first sets this sticky flag: the guard at the top of every catch
  // clause of guest code (inserted by _catchguard.py), every rejection
  // handler (Promise.prototype.then below) and describeError. dispatch then
  // answers with the limit, whatever the script did with the error. A bare
  // `throw null` counts as out of memory: the two cannot be told apart.
  let limitHit = null;
  // Classify without running guest code and without catching anything: a
  // guard that swallowed its own failure (say, a stack overflow while reading
  // e.name at the deepest frame) would swallow the limit with it. Every read
  // here is of an own data property of a genuine error (Error.isError is
  // false for proxies), so no getter, trap or toString of the script runs;
  // if a call here overflows or runs out of memory, that new error leaves
  // the guard and the script's catch clause, and the next guard up sees it.
  const isError = Error.isError;
  const getPrototypeOf = Object.getPrototypeOf;
  const hasOwn = Object.hasOwn;
  const RANGE = RangeError.prototype;
  const INTERNAL = typeof InternalError === 'function' ? InternalError.prototype : null;
  const SUPPRESSED = typeof SuppressedError === 'function' ? SuppressedError.prototype : null;
  const AGGREGATE = AggregateError.prototype;
  const MAX_WRAP_DEPTH = 16;
  function own(obj, key) {
    const desc = getOwnDesc(obj, key);
    return desc !== undefined && hasOwn(desc, 'value') ? desc.value : undefined;
  }
  function limitKindOf(e, depth) {
    if (e === null) return 'memory';
    if (typeof e !== 'object' || !isError(e)) return null;
    const proto = getPrototypeOf(e);
    if (proto === RANGE || proto === INTERNAL) {
      const message = own(e, 'message');
      if (message === 'Maximum call stack size exceeded' || message === 'stack overflow') return 'stack';
      // QuickJS builds its out-of-memory error without a message when even
      // that string cannot be allocated.
      return proto === INTERNAL && (message === 'out of memory' || message === undefined) ? 'memory' : null;
    }
    if (depth >= MAX_WRAP_DEPTH) return null;
    // DisposableStack and `using` wrap a pending error in a SuppressedError;
    // Promise.any collects rejections in an AggregateError.
    if (proto === SUPPRESSED && proto !== null) {
      return limitKindOf(own(e, 'error'), depth + 1) || limitKindOf(own(e, 'suppressed'), depth + 1);
    }
    if (proto === AGGREGATE) {
      const list = own(e, 'errors');
      if (!isArray(list)) return null;
      const length = own(list, 'length');
      for (let i = 0; i < length; i++) {
        const kind = limitKindOf(own(list, i), depth + 1);
        if (kind !== null) return kind;
      }
    }
    return null;
  }
  // After a limit every guard rethrows whatever it is handed: the script
  // unwinds to the host instead of running on.
  function guard(e) {
    if (limitHit === null) limitHit = limitKindOf(e, 0);
    if (limitHit !== null) throw e;
  }
  // Error.prepareStackTrace runs inside QuickJS's own backtrace builder,
  // which discards whatever it throws, a limit included. So the engine only
  // ever sees a trusted wrapper: it keeps the first error the script's
  // function threw (a plain store in a catch clause, which needs no stack
  // and no memory), and settle() classifies it at the next op.
  const nativePrepare = getOwnDesc(G.Error, 'prepareStackTrace');
  const NONE = freeze({});
  let scriptPrepare, prepareError = NONE;
  function guardedPrepare(err, sites) {
    try {
      return apply(scriptPrepare, this, [err, sites]);
    } catch (e) {
      if (prepareError === NONE) prepareError = e;
      throw e;
    }
  }
  if (nativePrepare && typeof nativePrepare.set === 'function') {
    defineProperty(G.Error, 'prepareStackTrace', {
      configurable: false,
      enumerable: false,
      get() { return scriptPrepare; },
      set(v) {
        scriptPrepare = v;
        apply(nativePrepare.set, G.Error, [typeof v === 'function' ? guardedPrepare : v]);
      },
    });
  }
  function settle() {
    if (prepareError === NONE) return;
    const e = prepareError;
    prepareError = NONE;
    if (limitHit === null) limitHit = limitKindOf(e, 0);
  }
  defineProperty(Object.prototype, '__jsr_caught', { value: guard, writable: false, enumerable: false, configurable: false });
  defineProperty(Promise.prototype, 'then', {
    value: function then(onFulfilled, onRejected) {
      const handler = typeof onRejected === 'function'
        ? function (reason) { guard(reason); return onRejected(reason); } : onRejected;
      return apply(promiseThen, this, [onFulfilled, handler]);
    },
    writable: true, enumerable: false, configurable: true,
  });
  // Code built from strings would escape the catch guards: refused, as
  // with a content security policy. Trusted code keeps the captured eval.
  function noCodeFromStrings() {
    throw new EvalError('code generation from strings (eval, Function) is not available in the sandbox');
  }
  G.eval = noCodeFromStrings;
  for (const ctor of [Function, async function () {}.constructor, function* () {}.constructor,
    async function* () {}.constructor]) {
    defineProperty(ctor.prototype, 'constructor', { value: noCodeFromStrings, writable: false, enumerable: false, configurable: false });
  }
  G.Function = noCodeFromStrings;
  noCodeFromStrings.prototype = Function.prototype;

  // --- cold code, compiled on first use -------------------------------------
  // Compiling is the largest fixed cost of a sandbox (~35 ns a byte on the
  // quickjs-ng wheel) and most calls never throw, so error description and the
  // fallback serialiser live in _describe.js and _serialise.js, injected here as
  // string literals by _sandbox.py and compiled by the eval captured above. They
  // see only `deps`: by the time they run, guest code may have replaced globals.
  const deps = freeze({ StringCtor, apply, stringSlice, stringify, objectKeys, isArray,
    MAX_DEPTH, MAX_MESSAGE, MAX_STACK });
  function lazy(source) {
    let fn = null;
    return function (value) {
      if (fn === null) fn = indirectEval(source)(deps);
      return fn(value);
    };
  }
  const describeLazy = lazy(__JSR_DESCRIBE_SOURCE__);
  function describeError(e) {
    if (limitHit === null) limitHit = limitKindOf(e, 0);
    return describeLazy(e);
  }
  const serialise = lazy(__JSR_SERIALISE_SOURCE__);

  // --- command queue and ops -------------------------------------------------
  // The queue has no prototype, so index setters planted on Array.prototype
  // never see a command, and appending stays a plain fast store.
  function bareArray() { return setPrototypeOf([], null); }
  let queue = bareArray();
  const ops = Object.create(null);
  const host = freeze({
    emit(cmd) { queue[queue.length] = cmd; },
    register(name, fn) { ops[name] = fn; },
    describeError,
    stringify,
    parse,
  });
  ops.__take = function () {
    if (queue.length === 0) return null;
    const out = queue;
    queue = bareArray();
    return out;
  };
  ops.__evalScript = function (src) { indirectEval(src); return null; };
  // Errors of guest code run natively from cached bytecode (_sandbox.run_script)
  // are handed to park() by Python and re-thrown here, inside dispatch, so they
  // are described under the time limit like any other guest error. With
  // nothing parked it answers null (or the sticky limit, like every op).
  let parked = null, hasParked = false;
  function park(e) { parked = e; hasParked = true; }
  ops.__throwPending = function () {
    if (!hasParked) return null;
    const e = parked;
    parked = null;
    hasParked = false;
    throw e;
  };
  ops.__typeofGlobal = function (name) { return typeof G[name]; };
  ops.__exportTypes = function (holder, names) {
    const obj = G[holder];
    const out = Object.create(null);
    for (let i = 0; i < names.length; i++) out[names[i]] = typeof obj[names[i]];
    return out;
  };
  ops.__install = function () { throw new TypeError('install goes through Python'); };

  function reply(obj) {
    try { return stringify(obj); } catch (e) {
      // Concatenation builds a rope string, which the binding cannot convert
      // ("Unknown quickjs tag"); slice(0) flattens it.
      return apply(stringSlice, serialise(obj), [0]);
    }
  }
  const LIMIT_REPLY = {
    memory: '{"error":{"name":"InternalError","message":"out of memory","stack":"","limit":"memory"}}',
    stack: '{"error":{"name":"RangeError","message":"Maximum call stack size exceeded","stack":"","limit":"stack"}}',
  };
  function dispatch(op, argsJson) {
    settle();
    const answer = dispatchOp(op, argsJson);
    return limitHit === null ? answer : LIMIT_REPLY[limitHit];
  }
  function dispatchOp(op, argsJson) {
    if (limitHit !== null) return LIMIT_REPLY[limitHit];
    try {
      const fn = ops[op];
      if (typeof fn !== 'function') throw new TypeError('unknown op ' + op);
      const args = argsJson ? parse(argsJson) : [];
      const value = apply(fn, undefined, args);
      if (value === undefined || value === null) return '{"ok":null}';
      return reply({ ok: value });
    } catch (e) {
      return errorReply(e);
    }
  }
  function errorReply(e) {
    // Nothing may escape from dispatch: the binding would turn it into a
    // string with no time limit. Only the uncatchable interrupt passes through.
    const d = describeError(e);
    try { return reply({ error: d }); } catch (e2) {
      return '{"error":{"name":"Error","message":"unserialisable error","stack":"","limit":' +
        (d.limit ? '"' + d.limit + '"' : 'null') + '}}';
    }
  }
  // A zero-argument op held by Python as its own function, for hot loops
  // (journal replay calls one per entry): no op lookup, no argument JSON, and
  // a null answer crosses as null instead of a string. It answers the sticky
  // limit exactly as dispatch does. Handed over through a one-shot getter, so
  // no global keeps it.
  ops.__hold = function (op) {
    const fn = ops[op];
    if (typeof fn !== 'function') throw new TypeError('unknown op ' + op);
    function held() {
      settle();
      if (limitHit !== null) return LIMIT_REPLY[limitHit];
      let answer;
      try {
        const value = fn();
        answer = value === undefined || value === null ? null : reply({ ok: value });
      } catch (e) {
        answer = errorReply(e);
      }
      return limitHit === null ? answer : LIMIT_REPLY[limitHit];
    }
    defineProperty(G, '__jsr_held', { configurable: true, enumerable: false,
      get() { delete G.__jsr_held; return held; } });
    return null;
  };
  // Module evaluation yields a promise; this records how it settles, described
  // safely, so Python never touches the rejection value.
  let moduleState = null;
  function watchModule(p) {
    moduleState = { settled: false };
    apply(promiseThen, p, [() => { moduleState = { settled: true }; },
      (e) => { moduleState = { settled: true, error: describeError(e) }; }]);
  }
  ops.__moduleState = function () { return moduleState; };
  // Called by the sandbox's promise rejection tracker (native, see
  // _bytecode.RejectionWatch) for every rejection nobody handles yet: a limit
  // in a dropped promise is still a limit. Answers 0, 1 (memory) or 2 (stack).
  function noteRejection(e) {
    settle();
    if (limitHit === null) limitHit = limitKindOf(e, 0);
    return limitHit === null ? 0 : limitHit === 'memory' ? 1 : 2;
  }
  return [dispatch, host, watchModule, park, noteRejection];
})()
