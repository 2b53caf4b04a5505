"""A real server (``create_app`` under uvicorn on 127.0.0.1) over a SQLite host,
and Debian's chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright
from ui_helpers import (
    ADMIN_KEY,
    CHROMIUM,
    CHROMIUM_ARGS,
    READ_KEY,
    RESUME_KEY,
    Served,
    build_host,
    free_port,
    sign_in,
)

from jsflow.server import create_app

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    db = tmp_path_factory.mktemp("ui") / "ui.db"
    host = build_host(db)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app = create_app(
        host, api_keys={ADMIN_KEY: ["admin"], READ_KEY: ["read"], RESUME_KEY: ["resume"]}, public_url=url
    )
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    try:
        yield Served(url, host)
    finally:
        server.should_exit = True
        thread.join(10)
        host.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Module scope: Playwright's sync API keeps an event loop marked running on
    this thread while it is open, which would break later tests that run one."""
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it: apt-get install -y chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(5000)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context: BrowserContext, served: Served) -> Page:
    pg = context.new_page()
    sign_in(pg, served.url)
    return pg
