"""Web view sessions and credentials (issue 18, items 2, 6 and 12): signing out
ends the session on the server (a copy of the cookie stops working), failed
sign-ins are rate limited per address, a read-only key never sees a hook URL,
and HEAD works on the pages."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn
from test_web_view_http import signed_in
from ui_helpers import ADMIN_KEY, READ_KEY, Served, build_host, free_port

from jsflow.host import WorkflowHost
from jsflow.server import create_app

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def test_sign_out_ends_the_session_for_every_copy_of_the_cookie(served: Served) -> None:
    client = signed_in(served)
    copy = httpx.Client(base_url=served.url, timeout=10, cookies=client.cookies)
    assert copy.get("/ui/", params={"format": "json"}).status_code == 200
    token = CSRF.search(client.get("/ui/").text).group(1)  # type: ignore[union-attr]
    assert client.post("/ui/logout", data={"csrf_token": token}).status_code == 303
    refused = copy.get("/ui/", params={"format": "json"})
    assert refused.status_code == 401 and refused.json()["error"]["type"] == "NotSignedIn"
    assert copy.get("/ui/").status_code == 303  # to the sign-in page
    again = signed_in(served)  # signing in again works
    assert again.get("/ui/", params={"format": "json"}).status_code == 200


def test_a_read_key_sees_no_hook_url_in_the_web_view(served: Served) -> None:
    served.host.start("hooked", {"id": "H-cred"}, workflow_id="ui-cred")
    admin, reader = signed_in(served), signed_in(served, READ_KEY)
    url = admin.get("/ui/workflows/ui-cred", params={"format": "json"}).json()["waits"][0]["url"]
    token = url.rsplit("/", 1)[1]
    assert token in admin.get("/ui/workflows/ui-cred").text
    assert reader.get("/ui/workflows/ui-cred", params={"format": "json"}).json()["waits"][0]["url"] is None
    for page in ("/ui/workflows/ui-cred", "/ui/", "/ui/scripts"):
        assert token not in reader.get(page).text


@contextmanager
def own_server(host: WorkflowHost, **options: object) -> Iterator[str]:
    """``create_app(host, **options)`` on a real uvicorn; yields its URL."""
    port = free_port()
    app = create_app(host, api_keys={ADMIN_KEY: ["admin"]}, **options)  # type: ignore[arg-type]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def test_the_event_form_does_not_wait_for_a_slow_step(tmp_path: Path) -> None:
    host = build_host(tmp_path / "slow.db")
    host.register_step_function("slow", lambda: time.sleep(6) or "slept")
    host.register_script(
        "slow_after", "async function main() { await waitForEvent('go'); return await slow(); }"
    )
    host.start("slow_after", workflow_id="slow-1")
    with own_server(host) as url:
        client = signed_in(Served(url, host))
        token = CSRF.search(client.get("/ui/workflows/slow-1").text).group(1)  # type: ignore[union-attr]
        started = time.monotonic()
        form = {"csrf_token": token, "action": "event", "name": "go", "payload": "1"}
        sent = client.post("/ui/workflows/slow-1", data=form)
        took = time.monotonic() - started
        assert sent.status_code == 303 and took < 4.5, took
        assert "being delivered" in client.get("/ui/workflows/slow-1").text
        deadline = time.monotonic() + 20
        while host.get("slow-1").status != "completed" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert host.get("slow-1").value == "slept"
    host.close()


def test_failed_sign_ins_are_rate_limited(tmp_path: Path) -> None:
    host = build_host(tmp_path / "rl.db")
    with own_server(host, failure_rate_limit="3/minute") as url, httpx.Client(base_url=url, timeout=10) as c:
        codes = []
        for _ in range(4):
            token = CSRF.search(c.get("/ui/login").text).group(1)  # type: ignore[union-attr]
            codes.append(c.post("/ui/login", data={"key": "guess", "csrf_token": token}).status_code)
        assert codes == [401, 401, 401, 429]
        token = CSRF.search(c.get("/ui/login").text).group(1)  # type: ignore[union-attr]
        refused = c.post("/ui/login", data={"key": ADMIN_KEY, "csrf_token": token})
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert c.head("/ui/login").status_code == 200
        assert c.post("/ui/login", content=b"k" * 100_000).status_code == 413
    host.close()
