"""A real server (``create_app`` under uvicorn on 127.0.0.1) over a SQLite host,
and Debian's chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from jsflow.host import WorkflowHost
from jsflow.server import create_app

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ADMIN_KEY = "ui-admin-key-0123456789"
READ_KEY = "ui-read-key-0123456789"
RESUME_KEY = "ui-resume-key-0123456789"
ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "test-output"
DOCS = ROOT / "docs"
#: screenshots the README shows (regenerate: JSFLOW_UI_DOCS=1 pytest tests/ui)
DOC_SHOTS = {"readme-list": "web-view-list.png", "readme-instance": "web-view-instance.png"}
EVIL = '<script>alert(1)</script>"><img src=x onerror=alert(1)>\x01\x1b[31m\x7f'

APPROVAL = """
async function main(order) {
  const go = await waitForEvent('go');
  const ok = await approve('manager', order);
  return { go, ok };
}"""
TOKEN_WAIT = """
async function main(order) {
  return await approve('finance', order);
}"""
HOOKED = """
async function main(order) {
  const hook = await createHook({ timeout: '2h' });
  return await hook.wait();
}"""
SLEEPER = """
async function main(order) {
  await sleep('2h');
  return 'woke';
}"""
NAP = """
async function main() {
  await sleep('1s');
  return 'rested';
}"""
FAILING = """
async function main(order) {
  return await boom(order);
}"""
BIG = """
async function main(n) {
  let x = 0;
  for (let i = 0; i < n; i++) x = await inc(x);
  await waitForEvent('done');
  return x;
}"""


@dataclass
class Served:
    url: str
    host: WorkflowHost


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _boom(order: object) -> None:
    raise RuntimeError(f"payment service down for {order!r}")


def build_host(db: Path) -> WorkflowHost:
    host = WorkflowHost(f"sqlite:///{db}", hook_secret="ui-test-secret")
    host.register_suspend_function("approve")
    host.register_step_function("boom", _boom)
    host.register_step_function("inc", lambda i: i + 1)
    for name, source in [
        ("approval", APPROVAL),
        ("token_wait", TOKEN_WAIT),
        ("hooked", HOOKED),
        ("sleeper", SLEEPER),
        ("failing", FAILING),
        ("big", BIG),
        ("nap", NAP),
    ]:
        host.register_script(name, source)
    return host


def start_big_instance(host: WorkflowHost, workflow_id: str, steps: int) -> None:
    """An instance whose journal holds ``steps`` step results (a few seconds)."""
    host.start("big", steps, workflow_id=workflow_id)


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    db = tmp_path_factory.mktemp("ui") / "ui.db"
    host = build_host(db)
    port = _free_port()
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


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
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


def sign_in(page: Page, base: str, key: str = ADMIN_KEY) -> None:
    page.goto(f"{base}/ui/login")
    page.fill("input[name=key]", key)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/ui/")


@pytest.fixture
def page(context: BrowserContext, served: Served) -> Page:
    pg = context.new_page()
    sign_in(pg, served.url)
    return pg


def shot(page: Page, name: str) -> Path:
    """Save a screenshot under test-output/ (and, with JSFLOW_UI_DOCS=1, the
    README's copies under docs/)."""
    OUTPUT.mkdir(exist_ok=True)
    path = OUTPUT / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("JSFLOW_UI_DOCS") == "1" and name in DOC_SHOTS:
        page.screenshot(path=str(DOCS / DOC_SHOTS[name]), full_page=name != "readme-list")
    return path
