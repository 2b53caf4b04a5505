"""Nothing a script can observe differs between machines or between live and
replay: the workflow's Date is UTC everywhere, console formatting always runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from jsflow import WorkflowEngine, WorkflowStatus

DATE_SCRIPT = r"""
async function main() {
  const d = new Date();
  const local = new Date(2024, 0, 1, 10, 30);
  const fields = (x) => [x.getFullYear(), x.getMonth(), x.getDate(), x.getDay(), x.getHours(),
    x.getMinutes()];
  const set = new Date(0); set.setHours(5); set.setDate(3);
  const out = [
    fields(d), d.getTimezoneOffset(), d.toString(), d.toDateString(), d.toTimeString(),
    d.toLocaleString(), d.toLocaleDateString(), d.toLocaleTimeString(), String(d), '' + d, Date(),
    local.getTime(), fields(local), set.getTime(), new Date(2024, 0).getTime(),
    Date.parse('2024-01-01T00:00:00'), Date.parse('2024-01-01'), Date.parse('Jan 1 2024 10:00'),
    Date.parse('January 1, 2024'), Date.parse('2024-01-01T00:00:00+09:00'),
    Date.parse('Mon Jan 01 2024 00:00:00 GMT+0900 (JST)'), new Date('2024-06-01T12:00').getTime(),
    new Date(NaN).toString(), new Date(-1).getDay(),
  ];
  await sleep('1s');
  return out;
}
"""

RUNNER = """
import json, sys
from datetime import UTC, datetime
from jsflow import WorkflowEngine, WorkflowState
clock = lambda: datetime(2024, 7, 1, 23, 30, tzinfo=UTC)
engine = WorkflowEngine(clock=clock)
script = sys.stdin.read()
mode = sys.argv[1]
if mode == "start":
    print(engine.run_workflow(script).state.serialize())
else:
    state = WorkflowState.deserialize(sys.argv[2])
    r = engine.resume_workflow(script, state)
    print(json.dumps({"status": r.status, "value": r.value, "error": str(r.error)}))
"""


def _in_tz(tz: str, *args: str) -> str:
    env = dict(os.environ, TZ=tz)
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, *args],
        input=DATE_SCRIPT,
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=60,
    )
    return proc.stdout.strip()


def test_date_is_the_same_in_every_time_zone():
    state = _in_tz("UTC", "start")
    results = [json.loads(_in_tz(tz, "resume", state)) for tz in ("UTC", "Asia/Tokyo", "America/St_Johns")]
    assert all(r["status"] == "completed" for r in results), results
    assert results[0] == results[1] == results[2]
    value = results[0]["value"]
    assert value[1] == 0
    assert value[2] == "Mon Jul 01 2024 23:30:00 GMT+0000"
    assert value[11] == 1704105000000  # new Date(2024, 0, 1, 10, 30) is 10:30 UTC
    assert value[15] == 1704067200000  # a date-time without a zone is UTC


def test_console_formatting_is_identical_live_and_replayed(engine: WorkflowEngine):
    script = """
    let live = 0;
    async function main() {
      await sleep('1s');
      console.log({ toJSON() { live++; return 'x'; } });
      console.log({ get a() { live++; return 1; } });
      const seen = live;
      await sleep('1s');
      return seen;
    }
    """
    lines: list[str] = []
    engine.on_console = lambda level, message: lines.append(message)
    first = engine.resume_workflow(script, engine.run_workflow(script).state)
    assert lines == ['"x"', '{"a":1}']
    replayed = engine.resume_workflow(script, first.state)
    assert replayed.status is WorkflowStatus.COMPLETED, replayed.error
    assert replayed.value == 2
    assert lines == ['"x"', '{"a":1}']  # nothing emitted on replay
