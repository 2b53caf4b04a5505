"""The native fast paths (bytecode, batched limit) behave exactly like source.

A probe runs in two subprocesses, one with ``JS_RUNTIME_NATIVE=0`` forcing the
fallback, and both must print the same observations.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import js_runtime

PROBE = r"""
import json
from datetime import UTC, datetime
import pytest

import js_runtime
from js_runtime import JSError, Sandbox, SandboxLimits, TimeLimitExceeded
from jsflow import WorkflowEngine

out = {"native": js_runtime.native_status().enabled}
sb = Sandbox(SandboxLimits(time=0.3))
sb.start_budget()
sb.install("host.register('add', (a, b) => a + b);"
           "host.register('boom', () => { throw new RangeError('no'); })")
out["add"] = sb.call("add", 2, 40)
try:
    sb.call("boom")
except JSError as exc:
    out["boom"] = [exc.name, exc.message, exc.stack]
try:
    sb.install("throw new TypeError('bad install')")
except JSError as exc:
    out["bad_install"] = [exc.name, exc.message]
try:
    sb.install("syntax error here")
except JSError as exc:
    out["syntax"] = [exc.name, exc.message]
for odd in ("const a = 1;\0", "const a = '\ud800';"):
    try:
        sb.install(odd)
        out.setdefault("odd", []).append("ok")
    except JSError as exc:
        out.setdefault("odd", []).append([exc.name, exc.message])
for script in ("var g = 1; function f() { return g + 1; }", "g = f() + 40;",
               "function h() { throw new TypeError('top ' + g); }\nh();", "let oops = ;"):
    try:
        sb.run_script(script)
        out.setdefault("scripts", []).append("ok")
    except JSError as exc:
        out.setdefault("scripts", []).append([exc.name, exc.message, exc.stack])
sb.install("host.register('g', () => [typeof f, globalThis.g])")
out["g"] = sb.call("g")
sb.install("host.register('spin', () => { for (;;) {} })")
try:
    sb.call("spin")
except TimeLimitExceeded as exc:
    out["spin"] = type(exc).__name__
loop = Sandbox(SandboxLimits(time=0.2))
loop.start_budget()
try:
    loop.run_script("for (;;) {}")
except TimeLimitExceeded as exc:
    out["script_spin"] = type(exc).__name__

engine = WorkflowEngine(clock=lambda: datetime(2026, 1, 1, tzinfo=UTC))
engine.register_step_function("work", lambda i: i * 2)
engine.register_suspend_function("approve")
script = '''
async function main(n) {
  let t = 0;
  for (let i = 0; i < n; i++) t += await work(i);
  console.log('total', t, Math.random());
  if (await approve(t)) return t;
  throw new Error('rejected ' + t);
}'''
first = engine.run_workflow(script, "main", 30)
ok = engine.resume_workflow(script, first.state.serialize(), True)
bad = engine.resume_workflow(script, first.state.serialize(), False)
out["workflow"] = [first.status, ok.status, ok.value, bad.status, str(bad.error)]
print(json.dumps(out, default=str))
"""


BRIDGE_FRAMES = "    at eval (native)\n"


def _without_bridge_frames(out: dict) -> dict:
    """A script run from bytecode throws without the bridge's own frames
    (indirect eval inside dispatch) below its stack; names, messages and the
    script's frames are the same."""
    for item in out["scripts"]:
        if isinstance(item, list):
            item[2] = item[2].split(BRIDGE_FRAMES)[0]
    return out


def _probe(native: bool) -> dict:
    env = dict(os.environ)
    env["JS_RUNTIME_NATIVE"] = "1" if native else "0"
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_status_is_reported() -> None:
    status = js_runtime.native_status()
    assert isinstance(status, js_runtime.NativeStatus)
    assert status.reason


def test_forced_fallback_behaves_identically() -> None:
    native, source = _without_bridge_frames(_probe(True)), _without_bridge_frames(_probe(False))
    assert source.pop("native") is False
    assert native.pop("native") is js_runtime.native_status().enabled
    assert native == source
    assert native["add"] == 42 and native["spin"] == "TimeLimitExceeded"
    assert native["workflow"][2] == 870
    assert native["g"] == ["function", 42] and native["script_spin"] == "TimeLimitExceeded"
    assert native["scripts"][2][:2] == ["TypeError", "top 42"]


@pytest.mark.skipif(not js_runtime.native_status().enabled, reason="native paths disabled")
def test_trusted_code_keeps_no_copy_of_its_source() -> None:
    """Trusted code (the bridge, a prelude) runs from bytecode without function
    text, which every parked run would otherwise hold; guest code keeps it
    (``Function.prototype.toString`` is the script's own business)."""
    padding = "/*" + "x" * 50_000 + "*/"
    with js_runtime.Sandbox() as sb:
        before = sb.memory_usage()["js_func_size"]
        sb.install(f"host.register('big', function () {{ {padding} return 1; }});")
        assert sb.call("big") == 1
        assert sb.memory_usage()["js_func_size"] - before < 10_000
        sb.run_script(f"function mine() {{ {padding} return 2; }}")
        sb.install("host.register('text', () => mine.toString().length)")
        assert sb.call("text") > 50_000
