"""Web view sessions and credentials (issue 18, items 2, 6 and 12): signing out
ends the session on the server (a copy of the cookie stops working), failed
sign-ins are rate limited per address, a read-only key never sees a hook URL,
and HEAD works on the pages."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from test_web_view_http import signed_in
from ui_helpers import ADMIN_KEY, READ_KEY, Served, build_host, free_port

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


def test_failed_sign_ins_are_rate_limited(tmp_path: Path) -> None:
    import threading
    import time

    import uvicorn

    host = build_host(tmp_path / "rl.db")
    port = free_port()
    app = create_app(host, api_keys={ADMIN_KEY: ["admin"]}, failure_rate_limit="3/minute")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
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
    finally:
        server.should_exit = True
        thread.join(10)
        host.close()
