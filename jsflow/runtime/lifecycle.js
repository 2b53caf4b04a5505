// ---- lifecycle: patches, queries, cancellation (issue 20) -------------------
// Concatenated after prelude.js (same installer function, same closure). Kept
// in its own file so the prelude's core stays small and merges stay easy.
//
// Control entries: two journal entry types take no slot of their own and
// settle nothing by slot. 'patch' is the marker patched() records when it
// returns true live; 'cancel' is the cancellation the host delivers. On
// replay, a marker is consumed by the patched()/deprecatePatch() call that
// finds it next in the journal; a cancel entry is delivered by __next like a
// completion. Neither moves the workflow's slot numbering, so a journal
// recorded before a patch existed replays against the patched script.

// -- patches -------------------------------------------------------------------
const patchesTaken = bareArray();   // names patched() returned true for, in order
function nextJournalEntry() { return journalIndex < journal.length ? journal[journalIndex] : undefined; }
function checkPatchName(fname, name) {
  if (typeof name !== 'string' || name === '') throw new TypeError(fname + ': the patch name must be a non-empty string');
  if (name.length > 200) throw new TypeError(fname + ': the patch name is longer than 200 characters');
}
function consumeMarker(name) {
  const entry = nextJournalEntry();
  if (entry !== undefined && entry.type === 'patch' && entry.name === name) { journalIndex += 1; return true; }
  return false;
}
let replayStart = false;  // set by __markReplay: a start with no journal that replays a suspension
G.patched = function patched(name) {
  checkPatchName('patched', name);
  if (inQuery) queryGuard('patched');
  // a step body is not replayed (its result is), so a marker recorded inside one could not be found again
  if (stepHook !== null) throw new TypeError('patched cannot be called inside a step() body: call it in the workflow');
  if (replaying) {
    if (!consumeMarker(name)) return false;
  } else {
    host.emit({ __proto__: null, op: 'patch', name, slot: slots.length, at: now });
  }
  if (!hasItem(patchesTaken, name)) patchesTaken[patchesTaken.length] = name;
  return true;
};
G.deprecatePatch = function deprecatePatch(name) {
  checkPatchName('deprecatePatch', name);
  if (inQuery) queryGuard('deprecatePatch');
  if (replaying) consumeMarker(name);
  return undefined;
};

// -- queries -------------------------------------------------------------------
const queryHandlers = { __proto__: null };
const queryNames = bareArray();
let inQuery = false;
G.defineQuery = function defineQuery(name, handler) {
  if (typeof name !== 'string' || name === '') throw new TypeError('defineQuery: the query name must be a non-empty string');
  if (typeof handler !== 'function') throw new TypeError('defineQuery: the handler must be a function');
  if (!hasItem(queryNames, name)) queryNames[queryNames.length] = name;
  queryHandlers[name] = handler;
  return undefined;
};
function queryGuard(name) {
  throw new TypeError('a query handler cannot call ' + name + ': queries are read-only and synchronous (no step, suspend or wait)');
}
host.register('__queryNames', function () { return queryNames; });
host.register('__query', function (name, args) {
  const handler = queryHandlers[name];
  if (handler === undefined) return { __proto__: null, missing: true, names: queryNames };
  const wasReplaying = replaying;
  inQuery = true;
  replaying = true;  // no console output, no commands
  try {
    const ret = handler(...args);
    if (ret !== null && (typeof ret === 'object' || typeof ret === 'function') && typeof ret.then === 'function') {
      throw new TypeError('query handler ' + stringify(name) + ' returned a promise: query handlers must be synchronous');
    }
    let json;
    try { json = ret === undefined ? 'null' : stringify(ret); } catch (e) {
      throw new TypeError('the answer of query ' + stringify(name) + ' is not JSON-serialisable: ' + describeError(e).message);
    }
    return { __proto__: null, json: json === undefined ? 'null' : json };
  } catch (e) {
    return { __proto__: null, error: describeError(e) };
  } finally {
    inQuery = false;
    replaying = wasReplaying;
  }
});

// -- cancellation --------------------------------------------------------------
let cancellation = null;   // {reason, message} once a cancellation was delivered
class CancelledError extends Error {
  constructor(message, reason) {
    super(message === undefined ? 'the workflow was cancelled' : message);
    this.name = 'CancelledError';
    this.reason = reason === undefined ? null : reason;
  }
}
G.CancelledError = CancelledError;
function cancelledError() { return new CancelledError(cancellation.message, cancellation.reason); }
function deliverCancel(entry) {
  const err = entry.error || {};
  cancellation = { __proto__: null, reason: err.reason === undefined ? null : err.reason, message: err.message };
  now = entry.at_ms;
  // every pending wait (a step waiting for a durable retry included) rejects, in scheduling order
  for (let i = 0; i < slots.length; i++) {
    const rec = slots[i];
    if (rec.settled) continue;
    const reject = rec.reject;
    rec.settled = true;
    rec.resolve = rec.reject = null;
    if (reject) reject(cancelledError());
  }
}
// Consulted by schedule(): inside a query nothing may be scheduled; after a
// cancellation a new wait rejects at once (steps still run: compensation).
function lifecycleGuard(kind, name) {
  if (inQuery) queryGuard(name);
  if (cancellation !== null && kind !== 'step' && kind !== 'jsstep') {
    const err = cancelledError();
    return new PromiseCtor((res, rej) => rej(err));
  }
  return undefined;
}
// Called by __next for entries that settle no slot: a cancel is delivered;
// a patch marker found here was not consumed by a patched() call at this
// point, so the script no longer matches the journal.
function controlEntry(entry) {
  if (entry.type === 'cancel') {
    journalIndex += 1;
    deliverCancel(entry);
    return null;
  }
  return { slot: entry.slot, expected_type: 'patch', expected_name: entry.name,
    encountered_type: null, encountered_name: null, patch: true };
}
host.register('__deliverCancel', function (entry) { deliverCancel(entry); return null; });
host.register('__lifecycle', function () {
  return { __proto__: null, patches: patchesTaken, queries: queryNames, cancelled: cancellation !== null };
});
host.register('__markReplay', function () { replayStart = true; return null; });
