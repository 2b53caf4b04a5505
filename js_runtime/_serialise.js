// The fallback serialiser, compiled on first use by the bridge (lazy() in
// _bridge.js): it is needed only after a script tampered with the array or
// object prototypes. JSON.stringify of an object pushes onto internal arrays
// with ordinary [[Set]], so an index setter planted on Array.prototype or
// Object.prototype makes it throw (or run guest code). This serialises by hand
// with captured functions and string concatenation; primitives still go
// through the native stringify, which touches no array.
(function (deps) {
  'use strict';
  const { StringCtor, apply, stringify, objectKeys, isArray, MAX_DEPTH } = deps;
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
  return function serialise(value) { return toJsonText(value, '', 0); };
})
