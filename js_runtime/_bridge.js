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
  if (typeof G.Error.prepareStackTrace !== 'undefined') delete G.Error.prepareStackTrace;
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

  // --- error description -----------------------------------------------------
  function clip(s, n) {
    s = StringCtor(s);
    return s.length > n ? apply(stringSlice, s, [0, n]) + '... [truncated ' + (s.length - n) + ' chars]' : s;
  }
  function limitKind(name, message) {
    if (name === 'InternalError' && message === 'interrupted') return 'time';
    if (name === 'InternalError' && message === 'out of memory') return 'memory';
    if ((name === 'RangeError' || name === 'InternalError') &&
        (message === 'Maximum call stack size exceeded' || message === 'stack overflow')) return 'stack';
    return null;
  }
  // Turns any thrown value into {name, message, stack, limit}. Reading a hostile
  // value's properties runs its getters, which is fine here: we are under the
  // time limit, and a failure falls back to a fixed description.
  function describeError(e) {
    let name = 'Error', message = '', stack = '';
    try {
      if (e !== null && (typeof e === 'object' || typeof e === 'function')) {
        const n = e.name, m = e.message, s = e.stack;
        name = n === undefined ? 'Error' : clip(n, 200);
        message = m === undefined ? clip(e, MAX_MESSAGE) : clip(m, MAX_MESSAGE);
        stack = s === undefined ? '' : clip(s, MAX_STACK);
      } else {
        name = 'Error';
        message = clip(e, MAX_MESSAGE);
      }
    } catch (inner) {
      name = 'Error';
      message = '<error value could not be described>';
      stack = '';
    }
    return { name, message, stack, limit: limitKind(name, message) };
  }

  // --- command queue and ops -------------------------------------------------
  let queue = [];
  const ops = Object.create(null);
  const host = freeze({
    emit(cmd) { defineProperty(queue, queue.length, { value: cmd, writable: true, enumerable: true, configurable: true }); },
    register(name, fn) { ops[name] = fn; },
    describeError,
    stringify,
    parse,
  });
  ops.__take = function () { const out = queue; queue = []; return out; };
  ops.__evalScript = function (src) { indirectEval(src); return null; };
  ops.__typeofGlobal = function (name) { return typeof G[name]; };
  ops.__exportTypes = function (holder, names) {
    const obj = G[holder];
    const out = Object.create(null);
    for (let i = 0; i < names.length; i++) out[names[i]] = typeof obj[names[i]];
    return out;
  };
  ops.__install = function () { throw new TypeError('install goes through Python'); };

  // JSON.stringify of an object pushes onto internal arrays with ordinary [[Set]],
  // so an index setter planted on Array.prototype or Object.prototype makes it
  // throw (or run guest code). When the native call throws, serialise by hand
  // with captured functions and string concatenation; primitives still go
  // through the native stringify, which touches no array.
  function toJsonText(value, key, depth) {
    if (value !== null && typeof value === 'object' && typeof value.toJSON === 'function') {
      value = apply(value.toJSON, value, [key]);
    }
    if (value === null || typeof value !== 'object') return stringify(value);
    if (depth > MAX_DEPTH) throw new TypeError('value too deeply nested or cyclic');
    let out = '';
    if (isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const item = toJsonText(value[i], StringCtor(i), depth + 1);
        out += (i ? ',' : '') + (item === undefined ? 'null' : item);
      }
      return '[' + out + ']';
    }
    const keys = objectKeys(value);
    for (let i = 0; i < keys.length; i++) {
      const item = toJsonText(value[keys[i]], keys[i], depth + 1);
      if (item !== undefined) out += (out ? ',' : '') + stringify(keys[i]) + ':' + item;
    }
    return '{' + out + '}';
  }
  function reply(obj) {
    try { return stringify(obj); } catch (e) {
      // Concatenation builds a rope string, which the binding cannot convert
      // ("Unknown quickjs tag"); slice(0) flattens it.
      return apply(stringSlice, toJsonText(obj, '', 0), [0]);
    }
  }
  function dispatch(op, argsJson) {
    try {
      const fn = ops[op];
      if (typeof fn !== 'function') throw new TypeError('unknown op ' + op);
      const args = argsJson ? parse(argsJson) : [];
      const value = apply(fn, undefined, args);
      if (value === undefined || value === null) return '{"ok":null}';
      return reply({ ok: value });
    } catch (e) {
      // Nothing may escape from here: the binding would turn it into a string
      // with no time limit. Only the uncatchable interrupt passes through.
      const d = describeError(e);
      try { return reply({ error: d }); } catch (e2) {
        return '{"error":{"name":"Error","message":"unserialisable error","stack":"","limit":' +
          (d.limit ? '"' + d.limit + '"' : 'null') + '}}';
      }
    }
  }
  // Module evaluation yields a promise; this records how it settles, described
  // safely, so Python never touches the rejection value.
  let moduleState = null;
  function watchModule(p) {
    moduleState = { settled: false };
    apply(promiseThen, p, [() => { moduleState = { settled: true }; },
      (e) => { moduleState = { settled: true, error: describeError(e) }; }]);
  }
  ops.__moduleState = function () { return moduleState; };
  return [dispatch, host, watchModule];
})()
