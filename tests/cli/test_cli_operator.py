"""Issue 14, the operator's command line: store selection, paging, typos, output,
escaping, recover/purge/batch/follow, replay verdicts, completion, worker --max-time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from cli_helpers import SAMPLES, Invoke, as_json
from click.testing import CliRunner

from jsflow.cli import cli
from jsflow.host import WorkflowHost
from jsflow.testing import each

RACE = str(SAMPLES / "payment_race.js")


def _binary() -> list[str]:
    exe = Path(sys.executable).with_name("jsflow")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "jsflow"]


# -- 1. choosing the store --
def test_plain_paths_and_urls_everywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JSFLOW_APP", raising=False)
    runner = CliRunner()

    def ok(*args: str, env: str | None = None) -> str:
        res = runner.invoke(cli, list(args), env={"JSFLOW_DB": env} if env else {"JSFLOW_DB": ""})
        assert res.exit_code == 0, res.output
        return res.stdout

    absolute = tmp_path / "abs" / "flows.db"
    ok("run", RACE, "A", "--id", "env-plain", env=str(absolute))  # $JSFLOW_DB as a plain path
    assert absolute.is_file()
    assert "env-plain" in ok("list", "--db", str(absolute))
    assert "env-plain" in ok("list", "--db", f"sqlite:///{absolute}")  # four slashes: absolute
    ok("run", RACE, "B", "--id", "rel", "--db", "sqlite:///rel/flows.db")  # three: relative
    assert (tmp_path / "rel" / "flows.db").is_file()
    assert "rel" in ok("list", env="rel/flows.db")
    assert "four slashes" in ok("list", "--help")


def test_read_only_commands_never_create_a_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    missing = tmp_path / "nowhere" / "flows.db"
    for args in (["list"], ["show", "x"], ["replay", RACE], ["cancel", "x"], ["purge", "--older-than", "1d"]):
        res = runner.invoke(cli, [*args, "--db", str(missing)])
        assert res.exit_code == 1 and "the store does not exist" in res.stderr, (args, res.output)
    assert not (tmp_path / "nowhere").exists()
    hinted = runner.invoke(cli, ["list", "--db", f"sqlite://{tmp_path}/flows.db"])  # 3 slashes
    assert f"sqlite:///{tmp_path}/flows.db" in hinted.stderr and "four" not in hinted.stderr
    assert "relative to the working directory" in hinted.stderr
    assert list(tmp_path.iterdir()) == []


# -- 2. list: newest first, pages, time windows --
def test_list_pages_newest_first_with_footer(jsflow: Invoke, tmp_path: Path, db: str) -> None:
    done = tmp_path / "done.js"
    done.write_text("async function main(n) { return n; }")
    for n in range(7):
        jsflow("run", str(done), str(n), "--id", f"w{n}")
    first = jsflow("list", "--limit", "3").stdout.splitlines()
    assert [ln.split()[0] for ln in first[1:4]] == ["w6", "w5", "w4"]
    assert "4 more (newest first); next page: jsflow list --limit 3 --cursor " in first[-1]
    page = as_json(jsflow("list", "--limit", "3", "--json"))
    assert page["more"] == 4 and [i["workflow_id"] for i in page["items"]] == ["w6", "w5", "w4"]
    second = as_json(jsflow("list", "--limit", "3", "--cursor", page["next_cursor"], "--json"))
    assert [i["workflow_id"] for i in second["items"]] == ["w3", "w2", "w1"] and second["more"] == 1
    scripted = jsflow("list", "--script", "done", "--limit", "5").stdout  # counted by paging
    assert "2 more" in scripted and "--script done" in scripted
    with WorkflowHost(f"sqlite:///{db}") as host:
        w3 = host.get("w3").created_at
    assert w3 is not None
    window = as_json(jsflow("list", "--since", w3.isoformat(), "--json"))["items"]
    assert [i["workflow_id"] for i in window] == ["w6", "w5", "w4", "w3"]
    before = as_json(jsflow("list", "--until", w3.isoformat(), "--json"))["items"]
    assert [i["workflow_id"] for i in before] == ["w2", "w1", "w0"]
    assert as_json(jsflow("list", "--since", "1h", "--json"))["more"] == 0
    assert as_json(jsflow("list", "--until", "1h", "--json"))["items"] == []
    bad = jsflow("list", "--since", "yesterday-ish", ok=False)
    assert bad.exit_code == 2 and "neither a date/time" in bad.stderr


# -- 3. typos --
@pytest.mark.parametrize("word", ["flase", "ture", "nul", "Null", "True", "None", "fasle"])
def test_near_miss_literals_are_refused(jsflow: Invoke, tmp_path: Path, word: str) -> None:
    script = tmp_path / "ask.js"
    script.write_text("async function main() { return await waitForEvent('go'); }")
    jsflow("run", str(script), "--id", "a1")
    for args in (["resume", "a1", word], ["event", "a1", "go", word]):
        res = jsflow(*args, ok=False)
        assert res.exit_code == 2 and "misspelt JSON" in res.stderr, res.stderr
    assert as_json(jsflow("show", "a1", "--json"))["status"] == "suspended"
    assert as_json(jsflow("event", "a1", "go", "full", "--json"))["value"] == "full"  # a real word


def test_buffered_events_listed_and_unknown_names_warned(jsflow: Invoke, tmp_path: Path) -> None:
    jsflow("run", RACE, "A", "--id", "o1")
    typo = jsflow("event", "o1", "paymnet", '{"amount": 1}')
    assert "buffered" in typo.stdout
    assert "never names it" in typo.stderr and "did you mean 'payment'?" in typo.stderr
    votes = tmp_path / "votes.js"  # names built from template literals are patterns
    votes.write_text(
        "async function main(who) {\n  await waitForEvent('start');\n"
        "  return waitForEvent(`vote-${who}`);\n}\n"
    )
    jsflow("run", str(votes), '"bob"', "--id", "v1")
    quiet = jsflow("event", "v1", "vote-ann", "1")  # not awaited now, but not a typo either
    assert "warning" not in quiet.stderr
    assert "never names it" in jsflow("event", "v1", "vote", "1").stderr
    jsflow("run", str(SAMPLES / "hook_approval.js"), "{}", "--id", "h1")  # it waits for no event
    assert "never names it" in jsflow("event", "h1", "approved", "1").stderr
    shown = jsflow("show", "o1").stdout
    assert "buffered events" in shown and "paymnet" in shown and '{"amount": 1}' in shown
    data = as_json(jsflow("show", "o1", "--json"))
    assert [(e["name"], e["payload"]) for e in data["buffered_events"]] == [("paymnet", {"amount": 1})]


def test_event_idempotency_key(jsflow: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JSFLOW_PROGRESS_AFTER", "0")  # progress shows on terminals only
    jsflow("run", RACE, "A", "--id", "o1")
    first = jsflow("event", "o1", "note", "1", "--idempotency-key", "k1")
    assert "buffered" in first.stdout
    again = jsflow("event", "o1", "note", "1", "--idempotency-key", "k1")
    assert "already stored" in again.stdout and "warning" not in again.stderr
    other = jsflow("event", "o1", "note", "2", "--idempotency-key", "k1", ok=False)
    assert other.exit_code != 0 and "already used for another event name or payload" in other.stderr
    assert len(as_json(jsflow("show", "o1", "--json"))["buffered_events"]) == 1
    assert "replaying" not in first.stderr + again.stderr


# -- 4. output --
def test_broken_pipe_ends_quietly(tmp_path: Path) -> None:
    env = {**os.environ, "JSFLOW_DB": str(tmp_path / "p.db")}
    subprocess.run([*_binary(), "run", RACE, "A", "--id", "o1"], env=env, check=True, capture_output=True)
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first write: EPIPE, every time
    try:
        proc = subprocess.run(
            [*_binary(), "show", "o1"], env=env, stdout=write, stderr=subprocess.PIPE, timeout=60
        )
    finally:
        os.close(write)
    assert proc.returncode == 0 and proc.stderr == b"", proc.stderr
    shell = subprocess.run(
        ["bash", "-o", "pipefail", "-c", f"{' '.join(_binary())} show o1 | head -1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shell.returncode == 0 and shell.stdout.startswith("workflow o1") and shell.stderr == ""


def test_console_lines_once_and_json_errors(jsflow: Invoke, tmp_path: Path) -> None:
    script = tmp_path / "loud.js"
    script.write_text("async function main() { console.warn('w1'); console.error('e1'); return 1; }")
    res = subprocess.run(
        [*_binary(), "run", str(script)],
        env={**os.environ, "JSFLOW_DB": str(tmp_path / "c.db")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.stderr.count("w1") == 1 and res.stderr.count("e1") == 1, res.stderr
    jsflow("worker", "--once")
    missing = jsflow("show", "nope", "--json", ok=False)
    assert missing.exit_code == 1 and missing.stderr == ""
    err = json.loads(missing.stdout)["error"]
    assert err["type"] == "UnknownWorkflowError" and err["workflow_id"] == "nope" and err["exit_code"] == 1
    boom = tmp_path / "boom.js"
    boom.write_text("async function main() { throw new Error('no'); }")
    faulted = jsflow("run", str(boom), "--json", ok=False)  # the instance is on stdout, the error on stderr
    assert faulted.exit_code == 1 and json.loads(faulted.stdout)["status"] == "faulted"
    assert json.loads(faulted.stderr)["error"]["type"] == "Faulted"
    bad = jsflow("resume", "x", "{oops", "--json", ok=False)
    assert bad.exit_code == 2 and "not valid JSON" in json.loads(bad.stdout)["error"]["message"]
    usage = jsflow("list", "--since", "soon", "--json", ok=False)  # a usage error too
    assert usage.exit_code == 2 and json.loads(usage.stdout)["error"]["type"] == "BadParameter"


def test_timeline_shows_script_names(jsflow: Invoke) -> None:
    jsflow("run", str(SAMPLES / "hook_approval.js"), '{"title": "t"}', "--id", "h1")
    shown = jsflow("show", "h1").stdout
    assert "createHook" in shown and "hook.wait" in shown and "__jhook" not in shown


# -- 5. escape injection, on a pseudo-terminal --
HOSTILE = r"""
async function main() {
  console.log('\x1b]0;pwned\x07title');
  await waitForEvent('go\x1b[2J');
  throw new Error('\x1b]52;c;ZXZpbA==\x07 clipboard');
}
"""


def _on_pty(args: list[str], env: dict[str, str], cwd: Path) -> bytes:
    import pty

    main_fd, child_fd = pty.openpty()
    try:
        proc = subprocess.Popen(args, env=env, cwd=cwd, stdin=child_fd, stdout=child_fd, stderr=child_fd)
        os.close(child_fd)
        chunks = []
        while True:
            try:
                data = os.read(main_fd, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        proc.wait(timeout=60)
    finally:
        os.close(main_fd)
    return b"".join(chunks)


def test_control_characters_escaped_on_a_terminal(tmp_path: Path) -> None:
    import re

    script = tmp_path / "hostile.js"
    script.write_text(HOSTILE)
    env = {**os.environ, "JSFLOW_DB": str(tmp_path / "t.db"), "JSFLOW_PROGRESS_AFTER": "0"}
    env.pop("NO_COLOR", None)
    wid = "evil\x1b[31m"
    shown = b"".join(
        _on_pty([*_binary(), *args], env, tmp_path)
        for args in (
            ["run", str(script), "--id", wid],
            ["event", wid, "go\x1b[2J", "\x1b]52;c;eA==\x07"],
            ["show", wid],
        )
    )
    text = shown.decode("utf-8", "replace")
    assert "title" in text and "clipboard" in text and "replaying" in text  # progress, on a terminal
    # every ESC left is our own: colours (SGR) or erasing the progress line
    assert all(m in ("m", "K") for m in re.findall(r"\x1b\[[0-9;]*(.)", text)), text
    assert "\x1b]" not in text and "\x07" not in text and "\x1b[2J" not in text
    assert r"\x1b]0;pwned" in text and r"evil\x1b[31m" in text
    exact = subprocess.run(
        [*_binary(), "show", wid, "--json"], env=env, capture_output=True, text=True, timeout=60
    )
    assert json.loads(exact.stdout)["workflow_id"] == wid  # --json stays exact


# -- 6. recover, purge, tail/follow, batch, host settings --
def test_recover_an_interrupted_instance(jsflow: Invoke, db: str) -> None:
    jsflow("run", RACE, "A", "--id", "o1")
    with WorkflowHost(f"sqlite:///{db}") as host:  # as if `run` died mid-advance
        record = each(host.store).get_workflow("o1")
        assert record is not None
        each(host.store).save_workflow(replace(record, status="running"))
    early = jsflow("recover", "o1", ok=False)
    assert early.exit_code == 1 and "--force" in early.stderr
    data = as_json(jsflow("recover", "o1", "--lease", "0.001", "--json"))  # silent longer than 1ms
    assert data["status"] == "suspended"
    again = jsflow("recover", "o1", ok=False)
    assert again.exit_code == 1 and "not running" in again.stderr


def test_purge_finished_instances(jsflow: Invoke, tmp_path: Path) -> None:
    done = tmp_path / "done.js"
    done.write_text("async function main() { return 1; }")
    for wid in ("d1", "d2"):
        jsflow("run", str(done), "--id", wid)
    jsflow("run", RACE, "A", "--id", "live")
    time.sleep(0.01)
    dry = jsflow("purge", "--older-than", "0.005", "--dry-run")
    assert dry.stdout.split() == ["d2", "d1"] and "would delete 2" in dry.stderr
    refused = jsflow("purge", "--older-than", "0.005", ok=False)
    assert refused.exit_code == 2 and "--yes" in refused.stderr
    assert as_json(jsflow("purge", "--older-than", "1d", "--json")) == {"would_delete": []}
    gone = as_json(jsflow("purge", "--older-than", "0.005", "--status", "completed", "--yes", "--json"))
    assert gone == {"deleted": ["d2", "d1"]}
    assert jsflow("show", "d1", ok=False).exit_code == 1
    assert [i["workflow_id"] for i in as_json(jsflow("list", "--json"))["items"]] == ["live"]


def test_show_tail_and_follow(jsflow: Invoke, db: str) -> None:
    jsflow("run", RACE, "A", "--id", "o1")
    full = jsflow("show", "o1").stdout
    tail = jsflow("show", "o1", "--tail", "1").stdout
    assert "(last 1 of" in tail and len(tail.splitlines()) < len(full.splitlines())

    def pay_later() -> None:
        time.sleep(0.4)
        with WorkflowHost(f"sqlite:///{db}") as host:
            host.send_event("o1", "payment", {"amount": 5})

    thread = threading.Thread(target=pay_later)
    thread.start()
    started = time.monotonic()
    followed = jsflow("show", "o1", "--follow", "--poll-interval", "0.05")
    thread.join()
    assert time.monotonic() - started < 20
    assert "event_received" in followed.stdout and followed.stdout.rstrip().endswith("completed")
    lines = jsflow("show", "o1", "--follow", "--json").stdout.splitlines()
    assert json.loads(lines[0])["status"] == "completed" and all(json.loads(ln) for ln in lines)


def test_batch_cancel_retry_upgrade(jsflow: Invoke, tmp_path: Path) -> None:
    for wid in ("o1", "o2"):
        jsflow("run", RACE, "A", "--id", wid)
    assert jsflow("batch", "cancel", ok=False).exit_code == 2  # a filter is required
    dry = jsflow("batch", "cancel", "--script", "payment_race", "--dry-run")
    assert dry.stdout.split() == ["o2", "o1"] and "would cancel 2" in dry.stderr
    assert jsflow("batch", "cancel", "--script", "payment_race", ok=False).exit_code == 2  # no --yes
    done = as_json(
        jsflow("batch", "cancel", "--script", "payment_race", "--reason", "bulk", "--yes", "--json")
    )
    assert [(r["workflow_id"], r["status"]) for r in done["results"]] == [
        ("o2", "cancelled"),
        ("o1", "cancelled"),
    ]
    strict = tmp_path / "strict.js"
    strict.write_text(
        "async function main() { const o = await waitForEvent('o'); if (!o) throw 1; return o; }"
    )
    fixed = tmp_path / "fixed" / "strict.js"
    fixed.parent.mkdir()
    fixed.write_text(strict.read_text().replace("throw 1", "return 'fixed'"))
    jsflow("run", str(strict), "--id", "s1")
    jsflow("event", "s1", "o", "0", ok=False)
    retried = as_json(jsflow("batch", "retry", str(fixed), "--script", "strict", "--yes", "--json"))
    assert retried["results"] == [{"workflow_id": "s1", "ok": True, "status": "completed"}]
    jsflow("run", str(strict), "--id", "s2")
    assert jsflow("batch", "upgrade", "--script", "strict", ok=False).exit_code == 2  # needs SCRIPT
    moved = jsflow("batch", "upgrade", str(fixed), "--script", "strict", "--yes")
    assert "1 done, 0 failed" in moved.stdout
    partly = jsflow("batch", "cancel", "--search", "s", "--status", "completed", "--yes", ok=False)
    assert partly.exit_code == 1 and "could not cancel" in partly.stderr


def test_host_settings_from_the_command_line(jsflow: Invoke, tmp_path: Path) -> None:
    hook = as_json(
        jsflow(
            "run",
            str(SAMPLES / "hook_approval.js"),
            "{}",
            "--public-url",
            "https://flows.example.com/",
            "--json",
        )
    )
    assert hook["tokens"][0]["url"].startswith("https://flows.example.com/hooks/")
    ask = tmp_path / "ask.js"
    ask.write_text("async function main() { return await askUser(); }")
    data = as_json(jsflow("run", str(ask), "--suspend", "askUser", "--max-suspension", "1h", "--json"))
    from datetime import datetime

    expires = datetime.fromisoformat(data["tokens"][0]["expires_at"])
    created = datetime.fromisoformat(data["created_at"])
    assert 3500 < (expires - created).total_seconds() <= 3600
    bad = jsflow("worker", "--once", "--lease", "soon", ok=False)
    assert bad.exit_code == 2 and "not a duration" in bad.stderr
    assert jsflow("worker", "--once", "--warm-runs", "8", "--warm-bytes", "64MiB", "--json").exit_code == 0
    assert jsflow("worker", "--once", "--warm-bytes", "0", "--json").exit_code == 0  # the cache off
    for command in (["worker", "--once"], ["serve"]):  # serve refuses before it listens
        for option, value, says in (("--warm-bytes", "lots", "not a size"), ("--warm-runs", "-1", "x>=0")):
            bad = jsflow(*command, option, value, ok=False)
            assert bad.exit_code == 2 and says in bad.stderr


def test_steps_and_fork_from_a_step(jsflow: Invoke, tmp_path: Path) -> None:
    script = tmp_path / "two.js"
    script.write_text("async function main() { return [await waitForEvent('a'), await waitForEvent('b')]; }")
    jsflow("run", str(script), "--id", "t1")
    jsflow("event", "t1", "a", "1")
    jsflow("event", "t1", "b", "2")
    listed = jsflow("steps", "t1").stdout.splitlines()
    assert listed[0].split()[0] == "STEP" and listed[1].split()[0] == "0" and "event=b" in listed[2]
    assert [e["step"] for e in as_json(jsflow("steps", "t1", "--json"))] == [0, 1]
    forked = as_json(jsflow("fork", "t1", "--step", "1", "--id", "t2", "--json"))
    assert forked["status"] == "suspended" and forked["metadata"]["forked_from"] == "t1@1"
    assert as_json(jsflow("event", "t2", "b", "3", "--json"))["value"] == [1, 3]
    assert as_json(jsflow("show", "t1", "--json"))["value"] == [1, 2]
    taken = jsflow("fork", "t1", "--id", "t2", ok=False)
    assert taken.exit_code == 1 and "already exists" in taken.stderr
    too_far = jsflow("fork", "t1", "--step", "5", ok=False)
    assert too_far.exit_code == 2 and "from 0 to 2" in too_far.stderr


# -- 7. replay verdicts --
def test_replay_says_why_each_instance_would_not_replay(jsflow: Invoke, tmp_path: Path, db: str) -> None:
    script = tmp_path / "flow.js"
    script.write_text(
        "async function main() { return await waitForEvent('a'); }\n"
        "async function other() { return await waitForEvent('a'); }\n"
    )
    for wid, entry in (("m1", "main"), ("x1", "other"), ("c1", "main")):
        jsflow("run", str(script), "--id", wid, "--entry", entry)
    jsflow("event", "m1", "a", "1")
    with WorkflowHost(f"sqlite:///{db}") as host:
        record = each(host.store).get_workflow("c1")
        assert record is not None
        each(host.store).save_workflow(replace(record, state="{not json"))
    changed = tmp_path / "v2" / "flow.js"
    changed.parent.mkdir()
    changed.write_text("async function main() { await sleep('1s'); return await waitForEvent('a'); }")
    res = jsflow("replay", str(changed), "--all", ok=False)
    rows = {ln.split()[0]: ln for ln in res.stdout.splitlines()[1:]}
    assert "DRIFT" in rows["m1"] and "NO ENTRY" in rows["x1"] and "'other'" in rows["x1"]
    assert "CORRUPT" in rows["c1"]
    assert "(1 corrupt, 1 drift, 1 no_entry)" in res.stderr
    broken = tmp_path / "v3" / "flow.js"
    broken.parent.mkdir()
    broken.write_text("async function main( {")
    data = as_json(jsflow("replay", str(broken), "--id", "x1", "--json", ok=False))
    assert data[0]["verdict"] == "script_error" and "SyntaxError" in data[0]["reason"]


# -- 8. shell completion --
def test_shell_completion(jsflow: Invoke, db: str) -> None:
    jsflow("run", RACE, "A", "--id", "order-1")
    runner = CliRunner()

    def complete(words: str) -> list[str]:
        env = {
            "_JSFLOW_COMPLETE": "bash_complete",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split()) - 1),
        }
        res = runner.invoke(cli, [], env=env, prog_name="jsflow")
        return [ln.split(",", 1)[1] for ln in res.stdout.splitlines()]

    assert "show" in complete("jsflow sh")
    assert complete(f"jsflow show --db {db} ord") == ["order-1"]
    script = runner.invoke(cli, [], env={"_JSFLOW_COMPLETE": "bash_source"}, prog_name="jsflow")
    assert "complete -o nosort -F _jsflow_completion jsflow" in script.stdout


# -- 9. worker --max-time --
def test_worker_max_time_keeps_firing_past_one_pass(jsflow: Invoke, db: str) -> None:
    with WorkflowHost(f"sqlite:///{db}") as host:
        host.register_script("nap", "async function main() { await sleep('1ms'); return 1; }")
        for n in range(110):  # a pass fires at most 100
            host.start("nap", workflow_id=f"n{n}")
    time.sleep(0.05)
    res = jsflow("worker", "--max-time", "3", "--poll-interval", "0.05")
    assert "worker stopped (110 fired)" in res.stdout
