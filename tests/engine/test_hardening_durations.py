"""Durations: linear parsing with a length cap, bad durations and unknown
option names as catchable errors in JS (never a fault of the whole run), and
the JS check agreeing with parse_duration."""

from __future__ import annotations

import json
import time

import pytest

from jsflow import Limits, WorkflowEngine, WorkflowStatus, parse_duration


def test_parse_duration_is_linear_and_capped():
    text = "1" * 60000 + "x"
    started = time.perf_counter()
    with pytest.raises(ValueError, match="longer than 100 characters") as info:
        parse_duration(text)
    assert time.perf_counter() - started < 0.1
    assert len(str(info.value)) < 300
    started = time.perf_counter()
    with pytest.raises(ValueError):
        parse_duration("1s" * 49 + "x")  # under the cap, still refused fast
    assert time.perf_counter() - started < 0.1


def test_long_duration_string_in_sleep_ends_promptly(clock):
    engine = WorkflowEngine(clock=clock, limits=Limits(time=1.0))
    script = """
    async function main() {
      try { await sleep('1'.repeat(60000) + 'x'); }
      catch (e) { return e.name + ': ' + e.message.slice(0, 40); }
    }
    """
    started = time.perf_counter()
    result = engine.run_workflow(script)
    assert time.perf_counter() - started < 1.0
    assert result.status is WorkflowStatus.COMPLETED
    assert result.value.startswith("RangeError: sleep: invalid duration")


@pytest.mark.parametrize(
    ("call", "error"),
    [
        ("sleep('-5s')", "RangeError"),
        ("sleep(-5)", "RangeError"),
        ("sleep('soon')", "RangeError"),
        ("sleep('')", "RangeError"),
        ("sleep(NaN)", "RangeError"),
        ("sleep(Infinity)", "RangeError"),
        ("sleep('101000000d')", "RangeError"),
        ("sleep({})", "TypeError"),
        ("sleep(null)", "TypeError"),
        ("waitForEvent('x', {timeout: '-1m'})", "RangeError"),
        ("waitForEvent('x', {timout: '2s'})", "TypeError"),
        ("waitForEvent('x', 5)", "TypeError"),
        ("step('s', () => 1, {retry: 3})", "TypeError"),
    ],
)
def test_invalid_durations_and_options_are_catchable(engine, call, error):
    script = f"""
    async function main() {{
      try {{ await {call}; return 'no error'; }} catch (e) {{ return [e.name, e.message]; }}
    }}
    """
    result = engine.run_workflow(script)
    assert result.status is WorkflowStatus.COMPLETED, result.error
    assert result.value[0] == error
    if "tim" in call and error == "TypeError" and "{" in call:
        assert "timout" in result.value[1]
    if "retry:" in call:
        assert '"retry"' in result.value[1]


AGREE = [
    "500ms", "10s", "5m", "2h", "3d", "1w", "1h30m", "1h 30m", " 5s ", "1.5h", "250", "2.5",
    "PT1H", "pt1m30s", "P1D", "P1DT2H", "P2W", "1MS", "1Min", "1sec",
    "", "soon", "5 parsecs", "h", "PT", "P", "1h-", "-5s", "1e3", "+5", "inf", "nan", "1_000",
    "\u0665s", "5\u017f", "\ufeff5s", "5s\x1c", "1.s", ".5s", "1h\t30m", "P1H", "PT1D",
]  # fmt: skip


def test_js_check_agrees_with_parse_duration(engine):
    script = """
    async function main(texts) {
      return texts.map((t) => { try { sleep(t); return true; } catch (e) { return false; } });
    }
    """
    accepted = engine.run_workflow(script, "main", AGREE).value
    for text, ok in zip(AGREE, accepted, strict=True):
        try:
            parse_duration(text)
            py_ok = True
        except ValueError:
            py_ok = False
        assert ok == py_ok, json.dumps(text)
