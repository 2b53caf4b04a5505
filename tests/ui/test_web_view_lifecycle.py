"""Issue 20 in the web view: query answers on the instance page, cancel with or
without cleanup (over plain HTTP, with a real server)."""

from __future__ import annotations

import re

import httpx
from ui_helpers import ADMIN_KEY, Served

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
QUERIED = """
let stage = 'new';
defineQuery('stage', () => ({ stage }));
defineQuery('needs', (x) => x.y);
async function main() {
  stage = 'waiting';
  try { await waitForEvent('go'); } catch (e) { stage = 'cleaned:' + e.reason; throw e; }
}
"""


def signed_in(served: Served) -> httpx.Client:
    client = httpx.Client(base_url=served.url, timeout=10)
    token = CSRF.search(client.get("/ui/login").text).group(1)  # type: ignore[union-attr]
    assert (
        client.post("/ui/login", data={"key": ADMIN_KEY, "csrf_token": token, "next": "/ui/"}).status_code
        == 303
    )
    return client


def test_queries_shown_and_cancel_choice(served: Served) -> None:
    served.host.register_script("queried", QUERIED)
    served.host.start("queried", workflow_id="ui-q1")
    served.host.start("queried", workflow_id="ui-q2")
    c = signed_in(served)
    try:
        data = c.get("/ui/workflows/ui-q1", params={"format": "json"}).json()
        answers = {q["name"]: q for q in data["queries"]}
        assert answers["stage"]["value"] == {"stage": "waiting"}
        assert answers["needs"]["error"] and "TypeError" in answers["needs"]["error"]
        page = c.get("/ui/workflows/ui-q1")
        assert 'data-query="stage"' in page.text and 'name="cleanup"' in page.text
        token = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
        done = c.post(
            "/ui/workflows/ui-q1",
            data={"action": "cancel", "reason": "ui", "cleanup": "yes", "csrf_token": token},
        )
        assert done.status_code == 303
        assert served.host.get("ui-q1").status == "cancelled"
        assert served.host.query("ui-q1", "stage") == {"stage": "cleaned:ui"}
        token = CSRF.search(c.get("/ui/workflows/ui-q2").text).group(1)  # type: ignore[union-attr]
        c.post("/ui/workflows/ui-q2", data={"action": "cancel", "cleanup": "no", "csrf_token": token})
        assert served.host.get("ui-q2").status == "cancelled"
        assert served.host.query("ui-q2", "stage") == {"stage": "waiting"}
    finally:
        c.close()


def test_schedules_page_lists_next_runs(served: Served) -> None:
    served.host.register_script("queried", QUERIED)
    served.host.add_schedule("ui-nightly", "0 2 * * *", "queried")
    c = signed_in(served)
    try:
        data = c.get("/ui/schedules", params={"format": "json"}).json()
        row = next(s for s in data["schedules"] if s["name"] == "ui-nightly")
        assert row["next_run"] and row["paused"] is False
        page = c.get("/ui/schedules")
        assert page.status_code == 200 and 'data-schedule="ui-nightly"' in page.text
        assert "next-run" in page.text
    finally:
        c.close()
        served.host.remove_schedule("ui-nightly")


def test_instance_page_links_parent_and_children(served: Served) -> None:
    served.host.register_script("ui-kid", "async function main() { return await waitForEvent('go'); }")
    served.host.register_script(
        "ui-mom",
        "async function main() { const c = await startWorkflow('ui-kid'); return await c.result(); }",
    )
    served.host.start("ui-mom", workflow_id="ui-mom-1")
    c = signed_in(served)
    try:
        mom = c.get("/ui/workflows/ui-mom-1")
        assert 'class="child-link"' in mom.text and "ui-mom-1.child-0" in mom.text
        kid = c.get("/ui/workflows/ui-mom-1.child-0")
        assert 'class="parent-link"' in kid.text
        assert c.get("/ui/workflows/ui-mom-1", params={"format": "json"}).json()["children"] == [
            "ui-mom-1.child-0"
        ]
    finally:
        c.close()
