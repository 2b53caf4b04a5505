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
