"""The web view over plain HTTP (no browser): the JSON behind every page, change
stamps, sign-in rules, redirects and headers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from ui_helpers import ADMIN_KEY, RESUME_KEY, Served

from jsflow.host import WorkflowHost
from jsflow.server import create_app

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def signed_in(served: Served, key: str = ADMIN_KEY) -> httpx.Client:
    client = httpx.Client(base_url=served.url, timeout=10)
    token = CSRF.search(client.get("/ui/login").text).group(1)  # type: ignore[union-attr]
    response = client.post("/ui/login", data={"key": key, "csrf_token": token, "next": "/ui/"})
    assert response.status_code == 303, response.text
    return client


@pytest.fixture
def client(served: Served) -> Iterator[httpx.Client]:
    c = signed_in(served)
    try:
        yield c
    finally:
        c.close()


def test_every_page_has_its_json(client: httpx.Client, served: Served) -> None:
    served.host.start("approval", {"id": "J-1"}, workflow_id="json-1")
    served.host.send_event("json-1", "later", {"n": 1})
    listing = client.get("/ui/", params={"q": "json-1", "format": "json"}).json()
    assert [i["workflow_id"] for i in listing["items"]] == ["json-1"]
    assert listing["items"][0]["waiting_on"] == ["event"]
    assert {"running", "suspended", "completed", "faulted", "cancelled"} <= set(listing["counts"])
    inst = client.get("/ui/workflows/json-1", params={"format": "json"}).json()
    assert inst["args"] == [{"id": "J-1"}]
    assert [(e["name"], e["payload"]) for e in inst["inbox"]] == [("later", {"n": 1})]
    assert inst["waits"][0]["names"] == ["go"]
    assert inst["history"]["items"][0]["kind"] == "started"
    scripts = client.get("/ui/scripts", params={"format": "json"}).json()
    approval = next(s for s in scripts["scripts"] if s["name"] == "approval")
    assert any(i["workflow_id"] == "json-1" for i in approval["versions"][0]["instances"])


def test_stamp_changes_when_the_instance_does(client: httpx.Client, served: Served) -> None:
    served.host.start("approval", {"id": "J-2"}, workflow_id="stamp-1")
    first = client.get("/ui/workflows/stamp-1", params={"format": "stamp"}).json()["stamp"]
    assert client.get("/ui/workflows/stamp-1", params={"format": "stamp"}).json()["stamp"] == first
    served.host.send_event("stamp-1", "unrelated", None)  # buffered only
    second = client.get("/ui/workflows/stamp-1", params={"format": "stamp"}).json()["stamp"]
    served.host.send_event("stamp-1", "go", None)
    third = client.get("/ui/workflows/stamp-1", params={"format": "stamp"}).json()["stamp"]
    assert len({first, second, third}) == 3


def test_without_a_session(served: Served) -> None:
    with httpx.Client(base_url=served.url, timeout=10) as anon:
        assert anon.get("/").headers["location"] == "/ui/"
        assert anon.get("/ui").headers["location"] == "/ui/"
        response = anon.get("/ui/workflows/x%2Fy")
        assert response.status_code == 303
        assert response.headers["location"] == "/ui/login?next=%2Fui%2Fworkflows%2Fx%2Fy"
        response = anon.get("/ui/", params={"format": "json"})
        assert response.status_code == 401 and response.json()["error"]["type"] == "NotSignedIn"
        assert anon.post("/ui/workflows/x", data={"action": "cancel"}).status_code == 303


def test_sign_in_rules(served: Served) -> None:
    with httpx.Client(base_url=served.url, timeout=10) as c:
        token = CSRF.search(c.get("/ui/login").text).group(1)  # type: ignore[union-attr]
        refused = c.post("/ui/login", data={"key": RESUME_KEY, "csrf_token": token})
        assert refused.status_code == 403 and "needs read or admin" in refused.text
        ok = c.post("/ui/login", data={"key": ADMIN_KEY, "csrf_token": token, "next": "//evil.example/"})
        assert ok.headers["location"] == "/ui/"
        good = c.cookies["jsflow_session"]
        assert c.get("/ui/").status_code == 200
        c.cookies.clear()
        tampered = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
        c.cookies.set("jsflow_session", tampered, domain="127.0.0.1", path="/ui")
        assert c.get("/ui/").status_code == 303  # a tampered signature is no session
        c.cookies.clear()
        c.cookies.set("jsflow_session", good, domain="127.0.0.1", path="/ui")
        # a fresh CSRF token after sign-in: the pre-session one no longer works
        assert c.post("/ui/logout", data={"csrf_token": token}).status_code == 403
        fresh = CSRF.search(c.get("/ui/").text).group(1)  # type: ignore[union-attr]
        out = c.post("/ui/logout", data={"csrf_token": fresh})
        assert out.headers["location"] == "/ui/login"
        assert c.get("/ui/").status_code == 303


def test_headers_odd_queries_and_missing_instances(client: httpx.Client) -> None:
    page = client.get("/ui/", params={"cursor": "garbage", "status": "bogus"})
    assert page.status_code == 200
    assert "invalid cursor" in page.text and "unknown status" in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
    missing = client.get(f"/ui/workflows/{quote('no<such>', safe='')}")
    assert missing.status_code == 404 and "no&lt;such&gt;" in missing.text
    assert client.get("/ui/static/ui.js").status_code == 200


def test_scripts_page_lists_versions_with_their_instances(client: httpx.Client, served: Served) -> None:
    host = served.host
    host.register_script("versioned", "async function main() { await waitForEvent('a'); }")
    host.start("versioned", workflow_id="v1-instance")
    host.register_script("versioned", "async function main() { await waitForEvent('b'); }")
    host.start("versioned", workflow_id="v2-instance")
    scripts = client.get("/ui/scripts", params={"format": "json"}).json()["scripts"]
    (versioned,) = (s for s in scripts if s["name"] == "versioned")
    newest, oldest = versioned["versions"]
    assert "'b'" in newest["source"] and "'a'" in oldest["source"]
    assert [i["workflow_id"] for i in newest["instances"]] == ["v2-instance"]
    assert [i["workflow_id"] for i in oldest["instances"]] == ["v1-instance"]
    html = client.get("/ui/scripts").text
    assert "waitForEvent(&#39;b&#39;)" in html and "v1-instance" in html


def test_list_pages_by_cursor(client: httpx.Client, served: Served) -> None:
    for n in range(5):
        served.host.start("sleeper", {"n": n}, workflow_id=f"paged-{n}")
    seen: list[str] = []
    params: dict[str, str] = {"q": "paged-", "limit": "2", "format": "json"}
    while True:
        page = client.get("/ui/", params=params).json()
        assert len(page["items"]) <= 2
        seen += [i["workflow_id"] for i in page["items"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == [f"paged-{n}" for n in reversed(range(5))]
    html = client.get("/ui/", params={"q": "paged-", "limit": "2"}).text
    assert 'rel="next"' in html and "limit=2" in html


async def test_cookie_is_secure_behind_https(tmp_path: Path) -> None:
    host = WorkflowHost(f"sqlite:///{tmp_path / 'https.db'}")
    app = create_app(host, api_keys={"k": ["admin"]}, public_url="https://flows.example.com", worker=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://flows.example.com") as c:
        token = CSRF.search((await c.get("/ui/login")).text).group(1)  # type: ignore[union-attr]
        response = await c.post("/ui/login", data={"key": "k", "csrf_token": token})
        assert response.status_code == 303
        assert "secure" in response.headers["set-cookie"].lower()
    host.close()
