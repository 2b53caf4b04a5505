// Error description, compiled on first use by the bridge (lazy() in _bridge.js):
// most calls never throw, and compiling is the largest fixed cost of a sandbox.
// It runs after guest code, so it touches no global: everything it uses is a
// function the bridge captured at boot and passed in `deps`.
(function (deps) {
  'use strict';
  const { StringCtor, apply, stringSlice, MAX_MESSAGE, MAX_STACK } = deps;
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
  return function describeError(e) {
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
  };
})
