"""Shared pieces of the web view tests: keys, scripts, hostile strings, the host
they run on, sign-in and screenshots (fixtures are in conftest.py)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Page

from jsflow.host import WorkflowHost

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
#: screenshots docs/operating.md shows (regenerate: JSFLOW_UI_DOCS=1 pytest tests/ui)
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


def free_port() -> int:
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


def sign_in(page: Page, base: str, key: str = ADMIN_KEY) -> None:
    page.goto(f"{base}/ui/login")
    page.fill("input[name=key]", key)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/ui/")


def shot(page: Page, name: str) -> Path:
    """Save a screenshot under test-output/ (and, with JSFLOW_UI_DOCS=1, the
    copies docs/operating.md shows, under docs/)."""
    OUTPUT.mkdir(exist_ok=True)
    path = OUTPUT / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("JSFLOW_UI_DOCS") == "1" and name in DOC_SHOTS:
        page.screenshot(path=str(DOCS / DOC_SHOTS[name]), full_page=name != "readme-list")
    return path
