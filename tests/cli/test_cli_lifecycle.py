"""Issue 20 on the CLI: event --start, query, cancel --no-cleanup."""

from __future__ import annotations

from pathlib import Path

from cli_helpers import Invoke, as_json

COLLECT = """
let got = [];
defineQuery('votes', () => got);
defineQuery('nth', (i) => got[i]);
async function main(want) {
  try {
    while (got.length < want) got.push(await waitForEvent('vote'));
    return got;
  } catch (e) {
    got = ['cancelled:' + e.reason];
    throw e;
  }
}
"""


def test_event_with_start_creates_then_sends(jsflow: Invoke, tmp_path: Path) -> None:
    script = tmp_path / "collect.js"
    script.write_text(COLLECT)
    first = as_json(jsflow("event", "p1", "vote", '"ann"', "--start", str(script), "--args", "[2]", "--json"))
    assert first["status"] == "suspended" and first["event"]["delivered"]
    second = as_json(jsflow("event", "p1", "vote", '"bob"', "--start", "collect", "--json"))
    assert second["status"] == "completed" and second["value"] == ["ann", "bob"]
    bad = jsflow("event", "p2", "vote", "1", "--start", str(script), "--args", "{}", ok=False)
    assert bad.exit_code == 2 and "JSON array" in bad.stderr


def test_query_and_cancel_with_and_without_cleanup(jsflow: Invoke, tmp_path: Path) -> None:
    script = tmp_path / "collect.js"
    script.write_text(COLLECT)
    jsflow("run", str(script), "3", "--id", "c1")
    jsflow("event", "c1", "vote", '"ann"')
    assert as_json(jsflow("query", "c1", "votes", "--json"))["value"] == ["ann"]
    assert '"ann"' in jsflow("query", "c1", "nth", "0").stdout
    missing = jsflow("query", "c1", "nope", ok=False)
    assert missing.exit_code == 1 and "no query 'nope'" in missing.stderr
    cancelled = as_json(jsflow("cancel", "c1", "--reason", "bye", "--json"))
    assert cancelled["status"] == "cancelled" and cancelled["cancel_reason"] == "bye"
    assert as_json(jsflow("query", "c1", "votes", "--json"))["value"] == ["cancelled:bye"]
    jsflow("run", str(script), "3", "--id", "c2")
    now = as_json(jsflow("cancel", "c2", "--no-cleanup", "--json"))
    assert now["status"] == "cancelled"
    assert as_json(jsflow("query", "c2", "votes", "--json"))["value"] == []


def test_schedule_commands(jsflow: Invoke, tmp_path: Path) -> None:
    script = tmp_path / "collect.js"
    script.write_text(COLLECT)
    added = as_json(jsflow("schedule", "add", "hourly", "0 * * * *", str(script), "2", "--json"))
    assert added["name"] == "hourly" and added["args"] == [2] and added["next_run"]
    jsflow(
        "schedule", "add", "daily", "0 9 * * *", "collect", "--timezone", "Europe/Paris", "--catch-up", "none"
    )
    listed = as_json(jsflow("schedule", "list", "--json"))["items"]
    assert [s["name"] for s in listed] == ["daily", "hourly"]
    assert listed[0]["timezone"] == "Europe/Paris" and listed[0]["catch_up"] == "none"
    assert as_json(jsflow("schedule", "pause", "daily", "--json"))["paused"] is True
    assert "paused" in jsflow("schedule", "list").stdout
    assert as_json(jsflow("schedule", "resume", "daily", "--json"))["paused"] is False
    jsflow("schedule", "remove", "daily")
    assert [s["name"] for s in as_json(jsflow("schedule", "list", "--json"))["items"]] == ["hourly"]
    bad = jsflow("schedule", "add", "x", "not a cron", "collect", ok=False)
    assert bad.exit_code != 0 and "cron" in bad.stderr
    assert jsflow("schedule", "pause", "nope", ok=False).exit_code == 1


def test_show_links_parent_and_children(jsflow: Invoke, tmp_path: Path) -> None:
    (tmp_path / "kid.js").write_text("async function main(n) { return await waitForEvent('go'); }")
    (tmp_path / "mom.js").write_text(
        "async function main() { const c = await startWorkflow('kid', [1]); return await c.result(); }"
    )
    jsflow("run", str(tmp_path / "kid.js"), "0", "--id", "warmup")  # registers the child script
    jsflow("run", str(tmp_path / "mom.js"), "--id", "mom")
    shown = as_json(jsflow("show", "mom", "--json"))
    assert shown["children"] == ["mom.child-0"] and shown["parent_id"] is None
    assert as_json(jsflow("show", "mom.child-0", "--json"))["parent_id"] == "mom"
    assert "children: mom.child-0" in jsflow("show", "mom").stdout
    assert "parent: mom" in jsflow("show", "mom.child-0").stdout
    jsflow("event", "mom.child-0", "go", "5")
    assert as_json(jsflow("show", "mom", "--json"))["value"] == 5


OLD_ORDER = "async function main() { await waitForEvent('go'); return 'old'; }"
NEW_ORDER = """
async function main() {
  if (patched('fraud-check')) { await waitForEvent('checked'); }
  await waitForEvent('go');
  return 'new';
}
"""
DROPPED = "async function main() { await waitForEvent('checked'); await waitForEvent('go'); return 'x'; }"


def test_replay_against_reports_patches_and_upgrade_refuses_drift(jsflow: Invoke, tmp_path: Path) -> None:
    d = tmp_path / "v"
    d.mkdir()
    order = d / "order.js"
    order.write_text(OLD_ORDER)
    jsflow("run", str(order), "--id", "old-1")
    order.write_text(NEW_ORDER)
    jsflow("run", str(order), "--id", "new-1")
    reports = {r["workflow_id"]: r for r in as_json(jsflow("replay", "--against", str(order), "--json"))}
    assert reports["old-1"]["ok"] and reports["old-1"]["patches"] == []
    assert reports["new-1"]["ok"] and reports["new-1"]["patches"] == ["fraud-check"]
    upgraded = as_json(jsflow("upgrade", "old-1", str(order), "--json"))
    assert upgraded["status"] == "suspended"
    assert as_json(jsflow("event", "old-1", "go", "--json"))["value"] == "new"  # the old path: no patch wait
    order.write_text(DROPPED)
    drift = jsflow("replay", "--against", str(order), "--json", ok=False)
    assert drift.exit_code == 1
    assert {r["workflow_id"]: r["verdict"] for r in as_json(drift)} == {"new-1": "drift"}
    refused = jsflow("upgrade", "new-1", str(order), ok=False)
    assert refused.exit_code == 1 and "new-1" in refused.stderr and "drift" in refused.stderr
    both = jsflow("replay", str(order), "--against", str(order), ok=False)
    assert both.exit_code == 2
