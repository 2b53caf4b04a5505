"""Issue 17 through the CLI: retry records --suspend as run does (a later worker
without it still fires the timer), an idempotent repeat after the end exits 0,
``jsflow token`` reissues a lost resume token, --waiting-on takes every kind."""

from __future__ import annotations

import json
import time
from pathlib import Path

from cli_helpers import Invoke

APPROVE_LATER = """
async function main() {
  const t = sleep('1s');
  const a = await getApproval();
  await t;
  return a;
}
"""


def test_retry_records_suspend_and_a_later_worker_fires_the_timer(jsflow: Invoke, tmp_path: Path) -> None:
    script = tmp_path / "appr.js"
    script.write_text(APPROVE_LATER)
    jsflow("run", str(script), "--id", "a1", ok=False)  # getApproval unknown: faulted
    assert json.loads(jsflow("show", "a1", "--json").stdout)["status"] == "faulted"
    jsflow("retry", "a1", "--suspend", "getApproval")
    shown = json.loads(jsflow("show", "a1", "--json").stdout)
    assert shown["status"] == "suspended" and shown["metadata"]["cli.suspend"] == "getApproval"
    time.sleep(1.2)
    out = jsflow("worker", "--once").stdout  # no --suspend: declared from the instance
    assert "fired 1" in out
    shown = json.loads(jsflow("show", "a1", "--json").stdout)
    assert shown["status"] == "suspended" and [w["kind"] for w in shown["waits"]] == ["token"]


def test_token_command_reissues_and_the_old_token_dies(jsflow: Invoke, tmp_path: Path) -> None:
    script = tmp_path / "ask.js"
    script.write_text("async function main() { return await askUser(); }")
    run = json.loads(jsflow("run", str(script), "--id", "t1", "--suspend", "askUser", "--json").stdout)
    old = run["tokens"][0]["token"]
    fresh = json.loads(jsflow("token", "t1", "--json").stdout)
    assert fresh["token"] != old and fresh["wait_id"] == run["waits"][0]["wait_id"]
    assert jsflow("resume-token", old, '"no"', ok=False).exit_code != 0
    jsflow("resume-token", fresh["token"], '"yes"')
    assert json.loads(jsflow("show", "t1", "--json").stdout)["value"] == "yes"


def test_repeat_with_a_key_after_the_end_exits_zero(jsflow: Invoke, tmp_path: Path) -> None:
    script = tmp_path / "ev.js"
    script.write_text("async function main() { return await waitForEvent('go'); }")
    jsflow("run", str(script), "--id", "e1")
    jsflow("event", "e1", "go", "1", "--idempotency-key", "k")
    again = jsflow("event", "e1", "go", "1", "--idempotency-key", "k")
    assert "already stored" in again.stdout


def test_waiting_on_takes_each_wait_kind(jsflow: Invoke, tmp_path: Path) -> None:
    script = tmp_path / "sl.js"
    script.write_text("async function main() { await sleep('1h'); }")
    jsflow("run", str(script), "--id", "s1")
    for word in ("timer", "sleep"):
        listed = json.loads(jsflow("list", "--waiting-on", word, "--json").stdout)
        assert [i["workflow_id"] for i in listed["items"]] == ["s1"], word
    assert json.loads(jsflow("list", "--waiting-on", "hook", "--json").stdout)["items"] == []
