"""Every sample in samples/ runs, and does what its comment says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from jsflow.cli import cli

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"


@pytest.fixture(autouse=True)
def _repo_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(REPO))


def test_order_approval_python() -> None:
    from samples import order_approval

    small, approved, late = order_approval.main()
    assert small["status"] == "charged" and small["receipt"]["idempotency_key"] == "order-A-2:1"
    assert approved["status"] == "charged"
    assert late == {"orderId": "A-1", "status": "rejected", "by": "nobody (timed out)"}


def test_fan_out_runs_steps_concurrently() -> None:
    from samples import fan_out

    value, took = fan_out.main()
    assert value == {"name": "Ada", "orders": 3, "score": 712}
    assert took < 3 * fan_out.DELAY * 0.9


def test_poller_continues_as_new() -> None:
    from samples import poller

    poller.CHECKS.clear()
    assert poller.main() == {"jobId": "job-9", "polls": poller.READY_AFTER, "result": "report.pdf"}


def _dev(*args: str) -> dict:
    res = CliRunner().invoke(cli, ["dev", *args, "--json", "--no-interactive"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_hook_approval_js() -> None:
    script = str(SAMPLES / "hook_approval.js")
    ok = _dev(script, '{"title": "laptop"}', "--resume", '{"approved": true, "by": "ann"}')
    assert ok["value"] == "approved by ann"
    assert _dev(script, '{"title": "laptop"}')["value"].startswith("expired")


@pytest.mark.parametrize(
    ("inputs", "status"),
    [
        (["--event", 'payment={"amount": 3}'], "paid"),
        (["--event", "cancel=changed"], "cancelled"),
        ([], "expired"),
    ],
)
def test_payment_race_js(inputs: list[str], status: str) -> None:
    assert _dev(str(SAMPLES / "payment_race.js"), "A-1", *inputs)["value"]["status"] == status


def test_demo_end_to_end(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("JSFLOW_DB", "JSFLOW_APP")}
    (tmp_path / "samples").symlink_to(SAMPLES)
    proc = subprocess.run(
        [sys.executable, str(SAMPLES / "demo.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    for fragment in (
        "suspended",
        "delivered to wait",
        "fired 1",
        "completed",
        "timeline",
        "order A-17 shipped",
    ):
        assert fragment in out, fragment
    assert (tmp_path / ".jsflow" / "demo.db").exists()


def test_two_of_three_js() -> None:
    script = str(SAMPLES / "two_of_three.js")
    request = '{"id": "PR-7", "approvers": ["ann", "bob", "cy"]}'
    votes = [
        "--event",
        'vote={"voter": "ann", "yes": true}',
        "--event",
        'vote={"voter": "cy", "yes": false}',
        "--event",
        'vote={"voter": "bob", "yes": true}',
    ]
    assert _dev(script, request, *votes)["value"] == {
        "id": "PR-7",
        "status": "approved",
        "by": ["ann", "bob"],
    }
    assert _dev(script, request)["value"] == {"id": "PR-7", "status": "expired"}


def test_order_approvals_js() -> None:
    script = str(SAMPLES / "order_approvals.js")
    events = ["--event", 'approval={"order": "A-18", "approved": true}']
    events += ["--event", 'approval={"order": "A-17", "approved": false}']
    assert _dev(script, '["A-17", "A-18"]', *events)["value"] == {"A-17": "rejected", "A-18": "approved"}


def test_approvals_demo_end_to_end(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("JSFLOW_DB", "JSFLOW_APP")}
    (tmp_path / "samples").symlink_to(SAMPLES)
    proc = subprocess.run(
        [sys.executable, str(SAMPLES / "approvals_demo.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    for fragment in (
        "waiting for 1 more 'vote' event",
        "(have: ann), 1 of 2 received",
        "line 10: const votes = await waitForEvents('vote', {",
        '"status": "approved", "by": ["ann", "bob"]',
        "does not match the wait's schema at '/approved'",
        '{"A-17": "rejected", "A-18": "approved"}',
    ):
        assert fragment in out + proc.stderr, fragment
