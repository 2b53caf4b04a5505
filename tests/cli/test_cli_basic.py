"""run, list, show, event, resume, resume-token, cancel, retry, upgrade, worker through CliRunner."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cli_helpers import REPO, SAMPLES, Invoke, as_json

from jsflow.host import WorkflowHost


def test_run_prints_status_waits_and_hint(jsflow: Invoke, scripts: Path) -> None:
    res = jsflow("run", str(scripts / "race.js"), "A-17", "--id", "o1")
    assert "workflow o1" in res.stdout and "suspended" in res.stdout
    assert "event payment" in res.stdout and "event cancel" in res.stdout
    assert "jsflow event o1 payment" in res.stdout


def test_run_json_and_idempotent_id(jsflow: Invoke, scripts: Path) -> None:
    data = as_json(jsflow("run", str(scripts / "race.js"), "A-1", "--id", "o1", "--json"))
    assert data["status"] == "suspended" and data["script_name"] == "race"
    assert [w["event_names"] for w in data["waits"]] == [["payment"], ["cancel"]]
    assert data["waits"][0]["resume_at"] is not None
    again = jsflow("run", str(scripts / "race.js"), "A-1", "--id", "o1", "--json")
    assert "already exists" in again.stderr
    assert as_json(again)["created_at"] == data["created_at"]


def test_run_arguments_are_json_or_words_or_files(jsflow: Invoke, tmp_path: Path) -> None:
    script = tmp_path / "echo.js"
    script.write_text("async function main(...args) { return args; }")
    payload = tmp_path / "p.json"
    payload.write_text('{"a": [1, 2]}')
    data = as_json(jsflow("run", str(script), "42", "word", "true", f"@{payload}", "--json"))
    assert data["status"] == "completed"
    assert data["value"] == [42, "word", True, {"a": [1, 2]}]


def test_run_entry_option(jsflow: Invoke, tmp_path: Path) -> None:
    script = tmp_path / "two.js"
    script.write_text("async function main() { return 1; }\nasync function other(x) { return x * 2; }")
    assert as_json(jsflow("run", str(script), "21", "--entry", "other", "--json"))["value"] == 42


def test_event_delivers_and_show_has_timeline(jsflow: Invoke, scripts: Path) -> None:
    jsflow("run", str(scripts / "race.js"), "A-17", "--id", "o1")
    res = jsflow("event", "o1", "payment", '{"amount": 42}')
    assert "delivered to wait 0" in res.stdout and "completed" in res.stdout
    shown = jsflow("show", "o1")
    assert '"status": "paid"' in shown.stdout
    lines = shown.stdout.splitlines()
    header = next(i for i, ln in enumerate(lines) if "OFFSET" in ln)
    assert all(k in shown.stdout for k in ("started", "event_received", "journal", "completed"))
    # aligned: the EVENT column starts at the same offset on every row
    col = lines[header].index("EVENT")
    assert all(ln[col - 2 : col] == "  " for ln in lines[header + 1 :] if ln.strip())
    data = as_json(jsflow("show", "o1", "--json"))
    assert data["value"]["amount"] == 42
    assert any(h["source"] == "journal" and h["kind"] == "event" for h in data["history"])


def test_event_buffered_when_not_awaited(jsflow: Invoke, scripts: Path) -> None:
    jsflow("run", str(scripts / "approval.js"), "5", "--id", "a1", "--suspend", "getApproval")
    res = jsflow("event", "a1", "later", "x", "--json")
    assert as_json(res)["event"]["delivered"] is False


def test_list_filters(jsflow: Invoke, scripts: Path) -> None:
    jsflow("worker", "--once")  # creates the store
    assert "no workflows" in jsflow("list").stdout
    jsflow("run", str(scripts / "race.js"), "A", "--id", "o1")
    jsflow("run", str(scripts / "race.js"), "B", "--id", "o2")
    jsflow("event", "o2", "cancel", "changed my mind")
    table = jsflow("list").stdout
    assert "o1" in table and "o2" in table and "STATUS" in table
    only = as_json(jsflow("list", "--status", "suspended", "--json"))
    assert [i["workflow_id"] for i in only["items"]] == ["o1"]
    assert as_json(jsflow("list", "--script", "nope", "--json"))["items"] == []
    assert "no workflows match" in jsflow("list", "--script", "nope").stdout


def test_resume_with_wait_id_and_suspend_metadata(jsflow: Invoke, scripts: Path, db: str) -> None:
    jsflow("run", str(scripts / "approval.js"), "250", "--id", "a1", "--suspend", "getApproval")
    # the timer is due in 1h: fire it with the host directly at a later "now"
    with WorkflowHost(f"sqlite:///{db}") as host:
        host.register_suspend_function("getApproval")
        host.run_due(now=datetime.now(UTC) + timedelta(hours=2))
    shown = as_json(jsflow("show", "a1", "--json"))
    wait = shown["waits"][0]
    assert wait["function_name"] == "getApproval"
    # no --suspend here: the CLI re-declares it from the instance metadata
    res = as_json(jsflow("resume", "a1", "true", "--wait-id", str(wait["wait_id"]), "--json"))
    assert res["status"] == "completed" and res["value"] == "approved"


def test_resume_token_printed_and_single_use(jsflow: Invoke, tmp_path: Path) -> None:
    script = tmp_path / "ask.js"
    script.write_text("async function main() { const r = await askUser('ok?'); return r.answer; }")
    run = jsflow("run", str(script), "--id", "t1", "--suspend", "askUser", "--json")
    tokens = as_json(run)["tokens"]
    assert len(tokens) == 1 and tokens[0]["function_name"] == "askUser"
    token = tokens[0]["token"]
    human = jsflow("show", "t1").stdout
    assert "askUser" in human
    done = as_json(jsflow("resume-token", token, '{"answer": "yes"}', "--json"))
    assert done["status"] == "completed" and done["value"] == "yes"
    again = jsflow("resume-token", token, "{}", ok=False)
    assert again.exit_code == 1 and again.stderr.startswith("error: ")
    assert "Traceback" not in again.output


def test_create_hook_token_shown(jsflow: Invoke) -> None:
    res = jsflow("run", str(SAMPLES / "hook_approval.js"), '{"title": "laptop"}', "--id", "h1", "--json")
    data = as_json(res)
    assert data["waits"][0]["kind"] == "hook"
    (tok,) = data["tokens"]
    assert tok["url"].endswith(tok["token"])
    done = as_json(jsflow("resume-token", tok["token"], '{"approved": true, "by": "ann"}', "--json"))
    assert done["value"] == "approved by ann"


def test_cancel(jsflow: Invoke, scripts: Path) -> None:
    jsflow("run", str(scripts / "race.js"), "A", "--id", "o1")
    res = jsflow("cancel", "o1", "--reason", "customer left")
    assert "cancelled" in res.stdout and "customer left" in res.stdout
    again = jsflow("cancel", "o1", ok=False)
    assert again.exit_code == 1 and "cancelled" in again.stderr


def test_worker_once_fires_due_timer(jsflow: Invoke, tmp_path: Path) -> None:
    script = tmp_path / "nap.js"
    script.write_text("async function main() { await sleep('50ms'); return 'rested'; }")
    jsflow("run", str(script), "--id", "n1")
    import time

    time.sleep(0.1)
    res = as_json(jsflow("worker", "--once", "--json"))
    assert res["fired"] == 1
    assert as_json(jsflow("show", "n1", "--json"))["value"] == "rested"


def test_worker_loop_stops_at_max_time(jsflow: Invoke, tmp_path: Path) -> None:
    script = tmp_path / "nap.js"
    script.write_text("async function main() { await sleep('100ms'); return 'rested'; }")
    jsflow("run", str(script), "--id", "n1")
    res = jsflow("worker", "--max-time", "0.6", "--poll-interval", "0.05")
    assert "worker stopped (1 fired)" in res.stdout
    assert as_json(jsflow("show", "n1", "--json"))["status"] == "completed"


def test_faulted_run_exits_1_with_one_line(jsflow: Invoke, tmp_path: Path) -> None:
    script = tmp_path / "boom.js"
    script.write_text("async function main() { throw new RangeError('nope'); }")
    res = jsflow("run", str(script), ok=False)
    assert res.exit_code == 1
    assert "faulted" in res.stdout
    assert res.stderr.strip().count("\n") == 0 and "RangeError: nope" in res.stderr
    # the JS error name is shown once, not repeated ("RangeError: RangeError: nope")
    assert "RangeError: RangeError" not in res.stdout + res.stderr
    shown = jsflow("show", str(as_json(jsflow("list", "--json"))["items"][0]["workflow_id"]))
    assert "error: RangeError: nope" in shown.stdout and "RangeError: RangeError" not in shown.stdout


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["show", "nope"], 1, "unknown workflow"),
        (["event", "nope", "x"], 1, "unknown workflow"),
        (["resume", "nope"], 1, "unknown workflow"),
        (["cancel", "nope"], 1, "unknown workflow"),
        (["run", "missing.js"], 2, "script not found"),
        (["check", "missing.js"], 2, "script not found"),
        (["resume-token", "forged-token"], 1, "token"),
        (["run", "{script}", "{bad json"], 2, "not valid JSON"),
        (["run", "{script}", "@nofile.json"], 2, "cannot read"),
        (["run", "{script}", "--app", "nomodule_xyz:app"], 2, "cannot import"),
        (["run", "{script}", "--app", "json"], 2, "module:attribute"),
        (["run", "{script}", "--app", "json:dumps"], 2, "calling dumps() failed"),
        (["run", "{script}", "--app", "json:decoder"], 2, "expected a WorkflowEngine"),
        (["list", "--db", "postgresql://nobody@127.0.0.1:1/y"], 1, "cannot connect to PostgreSQL"),
    ],
)
def test_errors_are_one_line(
    jsflow: Invoke, scripts: Path, args: list[str], code: int, fragment: str
) -> None:
    args = [a.replace("{script}", str(scripts / "race.js")) for a in args]
    jsflow("worker", "--once")  # the store exists: these fail for their own reason
    res = jsflow(*args, ok=False)
    assert res.exit_code == code, res.output
    assert res.stderr.startswith("error: ") and fragment in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert "Traceback" not in res.output


def test_app_recorded_and_required(jsflow: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    res = jsflow("run", str(SAMPLES / "fan_out.js"), "u-1", "--app", "samples.fan_out:engine", "--json")
    assert as_json(res)["value"] == {"name": "Ada", "orders": 3, "score": 712}
    jsflow(
        "run",
        str(SAMPLES / "order_approval.js"),
        "A-1",
        "--id",
        "oa",
        "--app",
        "samples.order_approval:build_host",
    )
    missing = jsflow("resume", "oa", "x", ok=False)
    assert missing.exit_code == 1 and "--app samples.order_approval:build_host" in missing.stderr


def test_debug_env_shows_traceback(jsflow: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    jsflow("worker", "--once")
    monkeypatch.setenv("JSFLOW_DEBUG", "1")
    with pytest.raises(Exception, match="unknown workflow"):
        jsflow("show", "nope", ok=False)


def test_fetch_allow_enables_fetch_and_is_recorded(jsflow: Invoke, tmp_path: Path) -> None:
    script = tmp_path / "get.js"
    script.write_text(
        "async function main() {\n"
        "  try { await fetch('http://10.0.0.1/'); } catch (e) { return e.message; }\n"
        "}\n"
    )
    data = as_json(jsflow("run", str(script), "--fetch-allow", "example.com", "--json"))
    assert data["value"].startswith("fetch refused") and "allow_hosts" in data["value"]
    assert data["metadata"]["cli.fetch_allow"] == "example.com"
    without = as_json(jsflow("run", str(script), "--json"))
    assert "not defined" in without["value"] or "fetch" in without["value"]


STRICT = """
async function main() {
  const order = await waitForEvent('order');
  if (!order.id) throw new Error('order without id');
  return `accepted ${order.id}`;
}
"""


def _strict_scripts(tmp_path: Path) -> tuple[Path, Path, Path]:
    (tmp_path / "fixed").mkdir()
    strict, fixed, drift = tmp_path / "strict.js", tmp_path / "fixed" / "strict.js", tmp_path / "drift.js"
    strict.write_text(STRICT)
    fixed.write_text(STRICT.replace("throw new Error('order without id')", "return 'ignored'"))
    drift.write_text("async function main() { await sleep('1s'); return 1; }")
    return strict, fixed, drift


def test_retry_faulted_instance_on_same_or_fixed_script(jsflow: Invoke, tmp_path: Path) -> None:
    strict, fixed, drift = _strict_scripts(tmp_path)
    jsflow("run", str(strict), "--id", "s1")
    assert jsflow("event", "s1", "order", "{}", ok=False).exit_code == 1
    again = jsflow("retry", "s1", ok=False)  # same script: faults the same way
    assert again.exit_code == 1 and "order without id" in again.stderr
    drifting = jsflow("retry", "s1", str(drift), ok=False)
    assert drifting.exit_code == 1 and "slot 0" in drifting.stderr
    assert as_json(jsflow("show", "s1", "--json"))["status"] == "faulted"
    done = as_json(jsflow("retry", "s1", str(fixed), "--json"))
    assert done["status"] == "completed" and done["value"] == "ignored"
    refused = jsflow("retry", "s1", ok=False)
    assert refused.exit_code == 1 and "not faulted" in refused.stderr


def test_upgrade_checks_replay_first(jsflow: Invoke, tmp_path: Path) -> None:
    strict, fixed, drift = _strict_scripts(tmp_path)
    before = as_json(jsflow("run", str(strict), "--id", "s2", "--json"))
    refused = jsflow("upgrade", "s2", str(drift), ok=False)
    assert refused.exit_code == 1 and "would drift" in refused.stderr and "Traceback" not in refused.stderr
    assert as_json(jsflow("show", "s2", "--json"))["script_hash"] == before["script_hash"]
    moved = as_json(jsflow("upgrade", "s2", str(fixed), "--json"))
    assert moved["status"] == "suspended" and moved["script_hash"] != before["script_hash"]
    assert "already runs this version" in jsflow("upgrade", "s2", str(fixed)).stderr
    assert as_json(jsflow("event", "s2", "order", "{}", "--json"))["value"] == "ignored"
    finished = jsflow("upgrade", "s2", str(fixed), ok=False)
    assert finished.exit_code == 1 and "only unfinished" in finished.stderr
    assert jsflow("upgrade", "nope", str(fixed), ok=False).exit_code == 1
    assert jsflow("upgrade", "s2", str(tmp_path / "missing.js"), ok=False).exit_code == 2
