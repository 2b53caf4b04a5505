"""check, replay, dev, help texts, and the installed binary end to end."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import REPO, SAMPLES, Invoke, as_json

from jsflow.cli import cli

# -- help: every command documents itself with an example ---------------------------------


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_has_help_with_example(jsflow: Invoke, name: str) -> None:
    text = jsflow(name, "--help").stdout
    assert "Example:" in text
    assert f"jsflow {name}" in text.split("Example:", 1)[1]


def test_dev_help_examples_run(jsflow: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    """``dev`` examples are self-contained (in memory): each one must complete as shown."""
    monkeypatch.chdir(REPO)
    text = jsflow("dev", "--help").stdout.split("Example:", 1)[1]
    examples = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("jsflow dev ")]
    assert len(examples) >= 2
    for line in examples:
        data = as_json(jsflow(*shlex.split(line)[1:], "--json", "--no-interactive"))
        assert data["status"] == "completed", (line, data)


def test_group_help_lists_every_command(jsflow: Invoke) -> None:
    text = jsflow("--help").stdout
    assert all(name in text for name in cli.commands)


# -- check ------------------------------------------------------------------------------------


def test_check_ok_and_warns_about_undeclared(jsflow: Invoke, scripts: Path) -> None:
    res = jsflow("check", str(scripts / "approval.js"))
    assert res.stdout.startswith("ok: ") and "getApproval() is called but not defined" in res.stderr
    assert "warning" not in jsflow("check", str(scripts / "approval.js"), "--suspend", "getApproval").stderr


def test_check_names_every_undefined_call_with_its_position(jsflow: Invoke, tmp_path: Path) -> None:
    script = tmp_path / "race.js"
    script.write_text(
        "async function main() {\n"
        "  const w = await Promise.race([getApproval('m'), sleep('1d')]);\n"
        "  return Promise.resolve(w).then((v) => notify(v));\n}\n"
    )
    res = jsflow("check", str(script))
    assert "getApproval at 2:33" in res.stderr and "notify at 3:41" in res.stderr
    data = as_json(jsflow("check", str(script), "--json"))
    assert data["undefined_calls"] == [
        {"name": "getApproval", "line": 2, "column": 33},
        {"name": "notify", "line": 3, "column": 41},
    ]
    assert (
        "warning"
        not in jsflow("check", str(script), "--suspend", "getApproval", "--suspend", "notify").stderr
    )


def test_check_syntax_error_names_line(jsflow: Invoke, tmp_path: Path) -> None:
    bad = tmp_path / "bad.js"
    bad.write_text("async function main() {\n  const x = ;\n}\n")
    res = jsflow("check", str(bad), ok=False)
    assert res.exit_code == 1 and "SyntaxError" in res.stderr and "line 2" in res.stderr


def test_check_entry_and_modules(jsflow: Invoke, tmp_path: Path) -> None:
    mod = tmp_path / "mod.js"
    mod.write_text("export async function run() { return 1; }")
    assert "module" in jsflow("check", str(mod), "--entry", "run").stdout
    res = jsflow("check", str(mod), ok=False)
    assert "'main' is not exported" in res.stderr
    data = as_json(jsflow("check", str(mod), "--entry", "run", "--json"))
    assert data["ok"] is True and data["kind"] == "module"


def test_check_never_runs_the_workflow(jsflow: Invoke, tmp_path: Path) -> None:
    script = tmp_path / "loud.js"
    script.write_text("async function main() { while (true) {} }")
    assert jsflow("check", str(script)).exit_code == 0


# -- replay -----------------------------------------------------------------------------------


def test_replay_reports_drift(jsflow: Invoke, scripts: Path, tmp_path: Path) -> None:
    jsflow("run", str(scripts / "race.js"), "A", "--id", "o1")
    jsflow("run", str(scripts / "race.js"), "B", "--id", "o2")
    jsflow("event", "o2", "cancel", "x")
    same = jsflow("replay", str(scripts / "race.js"))
    assert "o1" in same.stdout and "ok" in same.stdout and "o2" not in same.stdout
    changed = tmp_path / "v2" / "race.js"
    changed.parent.mkdir()
    changed.write_text("async function main(id) { await sleep('1m'); return await waitForEvent('payment'); }")
    res = jsflow("replay", str(changed), "--all", ok=False)
    assert res.exit_code == 1 and "would not replay" in res.stderr and "(2 drift)" in res.stderr
    assert "DRIFT" in res.stdout and "o2" in res.stdout
    one = as_json(jsflow("replay", str(changed), "--id", "o1", "--json", ok=False))
    assert [r["workflow_id"] for r in one] == ["o1"] and one[0]["ok"] is False


def test_replay_with_nothing_to_check(jsflow: Invoke, scripts: Path) -> None:
    jsflow("worker", "--once")
    assert "no unfinished instances" in jsflow("replay", str(scripts / "race.js")).stdout


# -- dev ----------------------------------------------------------------------------------------


def test_dev_skips_timers_and_takes_queued_inputs(jsflow: Invoke, scripts: Path) -> None:
    started = time.monotonic()
    res = jsflow("dev", str(scripts / "approval.js"), "5", "--suspend", "getApproval", "--resume", "true")
    assert time.monotonic() - started < 5
    assert "skipped to" in res.stdout and '"approved"' in res.stdout and "timeline" in res.stdout


def test_dev_event_and_timeout(jsflow: Invoke) -> None:
    race = str(SAMPLES / "payment_race.js")
    paid = as_json(jsflow("dev", race, "A-1", "--event", 'payment={"amount": 9}', "--json"))
    assert paid["value"] == {"orderId": "A-1", "status": "paid", "amount": 9}
    expired = as_json(jsflow("dev", race, "A-2", "--no-interactive", "--json"))
    assert expired["value"]["status"] == "expired"


def test_dev_interactive_prompts(jsflow: Invoke) -> None:
    race = str(SAMPLES / "payment_race.js")
    res = jsflow("dev", race, "A-3", "--interactive", input='1\n"too slow"\n')
    assert "waiting for:" in res.stdout and '"cancelled"' in res.stdout


def test_dev_without_input_fails_clearly(jsflow: Invoke, scripts: Path) -> None:
    script = scripts / "ask.js"
    script.write_text("async function main() { return await waitForEvent('never'); }")
    res = jsflow("dev", str(script), "--no-interactive", ok=False)
    assert res.exit_code == 1 and "no input is left" in res.stderr


def test_dev_create_hook_and_samples(jsflow: Invoke) -> None:
    hook = as_json(
        jsflow(
            "dev",
            str(SAMPLES / "hook_approval.js"),
            '{"title": "t"}',
            "--resume",
            '{"approved": false, "by": "bo"}',
            "--json",
        )
    )
    assert hook["value"] == "rejected by bo"
    expired = as_json(
        jsflow("dev", str(SAMPLES / "hook_approval.js"), '{"title": "t"}', "--json", "--no-interactive")
    )
    assert expired["value"].startswith("expired")


def test_dev_max_steps(jsflow: Invoke, tmp_path: Path) -> None:
    forever = tmp_path / "forever.js"
    forever.write_text("async function main() { for (;;) { await sleep('1d'); } }")
    res = jsflow("dev", str(forever), "--max-steps", "5", ok=False)
    assert "--max-steps" in res.stderr


# -- the installed binary -------------------------------------------------------------------------


def _binary() -> list[str]:
    exe = Path(sys.executable).with_name("jsflow")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "jsflow"]


def test_installed_binary_end_to_end(tmp_path: Path) -> None:
    env = {**os.environ, "JSFLOW_DB": f"sqlite:///{tmp_path / 'e2e.db'}"}
    env.pop("JSFLOW_APP", None)

    def run(*args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [*_binary(), *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == code, proc.stdout + proc.stderr
        return proc

    race = str(SAMPLES / "payment_race.js")
    assert "suspended" in run("run", race, "A-17", "--id", "order-17").stdout
    assert "completed" in run("event", "order-17", "payment", '{"amount": 42}').stdout
    assert "journal" in run("show", "order-17").stdout
    err = run("show", "missing", code=1)
    assert err.stderr == "error: unknown workflow 'missing'\n" and err.stdout == ""

    nap = tmp_path / "nap.js"
    nap.write_text("async function main() { await sleep('200ms'); return 'rested'; }")
    run("run", str(nap), "--id", "nap")
    worker = subprocess.Popen(
        [*_binary(), "worker", "--poll-interval", "0.05"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while '"rested"' not in run("show", "nap", "--json").stdout:
            assert time.monotonic() < deadline, "worker did not fire the timer"
            time.sleep(0.1)
    finally:
        worker.send_signal(signal.SIGINT)
        out, errs = worker.communicate(timeout=20)
    assert worker.returncode == 0, errs
    assert "worker stopped" in out and "Traceback" not in errs


def test_python_dash_m(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "jsflow", "--help"], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert proc.returncode == 0 and "Commands:" in proc.stdout
