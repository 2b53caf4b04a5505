"""The web view in a real browser against a real server: sign-in, filters,
the instance page and its forms, paging a 10,000-entry timeline, escaping,
CSRF, and live updates."""

from __future__ import annotations

import re
import time
from urllib.parse import quote

from playwright.sync_api import BrowserContext, Page, expect
from ui_helpers import ADMIN_KEY, EVIL, READ_KEY, Served, shot, sign_in, start_big_instance


def wf_url(served: Served, workflow_id: str) -> str:
    return f"{served.url}/ui/workflows/{quote(workflow_id, safe='')}"


def timeline_rows(page: Page) -> int:
    return page.locator("table.timeline tbody tr").count()


def test_pages_without_a_session_go_to_sign_in_and_back(context: BrowserContext, served: Served) -> None:
    page = context.new_page()
    page.goto(served.url + "/")
    expect(page).to_have_url(f"{served.url}/ui/login?next=%2Fui%2F")
    page.goto(f"{served.url}/ui/scripts")
    expect(page).to_have_url(re.compile(r"/ui/login\?next=%2Fui%2Fscripts$"))
    shot(page, "login")
    page.fill("input[name=key]", "not-a-key")
    page.click("button[type=submit]")
    expect(page.locator("p.error")).to_contain_text("not valid")
    page.fill("input[name=key]", ADMIN_KEY)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{served.url}/ui/scripts")
    cookie = next(c for c in context.cookies() if c["name"] == "jsflow_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/ui"
    assert ADMIN_KEY not in cookie["value"]
    response = page.request.get(f"{served.url}/ui/")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp


def test_find_by_filter_open_and_send_an_event(page: Page, served: Served) -> None:
    host = served.host
    host.start("approval", {"id": "A-1"}, workflow_id="order-event-1")
    host.start("sleeper", {"id": "S-1"}, workflow_id="order-sleep-1")
    page.goto(f"{served.url}/ui/")
    page.select_option("select[name=status]", "suspended")
    page.select_option("select[name=waiting_on]", "event")
    page.fill("input[name=q]", "order-")
    page.click("form.filters button[type=submit]")
    expect(page).to_have_url(re.compile(r"waiting_on=event"))
    ids = page.locator("table.instances td.id").all_inner_texts()
    assert "order-event-1" in ids and "order-sleep-1" not in ids
    page.select_option("select[name=waiting_on]", "timer")
    page.click("form.filters button[type=submit]")
    expect(page.locator("table.instances td.id")).to_have_text(["order-sleep-1"])
    expect(page.locator("table.instances .due")).to_have_text(re.compile(r"^1h 59m|^2h 00m"))
    page.select_option("select[name=waiting_on]", "event")
    page.click("form.filters button[type=submit]")
    shot(page, "list")
    page.click("a:text-is('order-event-1')")
    expect(page.locator("#workflow-id")).to_have_text("order-event-1")
    before = timeline_rows(page)
    form = page.locator("#form-event")
    form.locator("input[name=name]").fill("go")
    form.locator("textarea[name=payload]").fill('{"by": "ann"}')
    form.locator("button[type=submit]").click()
    expect(page.locator("p.flash")).to_contain_text("delivered")
    expect(page.locator("table.waits")).to_contain_text("approve")
    assert timeline_rows(page) > before
    expect(page.locator("table.timeline")).to_contain_text('"by": "ann"')
    shot(page, "instance")


def test_refused_actions_show_the_hosts_error(page: Page, served: Served) -> None:
    served.host.start("approval", {"id": "A-2"}, workflow_id="order-refuse-1")
    page.goto(wf_url(served, "order-refuse-1"))
    form = page.locator("#form-event")
    form.locator("input[name=name]").fill("go")
    form.locator("textarea[name=payload]").fill("{not json")
    form.locator("button[type=submit]").click()
    expect(page.locator("[data-error-for=event]")).to_contain_text("not valid JSON")
    expect(form.locator("textarea[name=payload]")).to_have_value("{not json")
    served.host.cancel("order-refuse-1", "behind the page's back")
    form = page.locator("#form-event")
    form.locator("textarea[name=payload]").fill("1")
    form.locator("button[type=submit]").click()
    expect(page.locator("[data-error-for=event]")).to_contain_text("WorkflowFinishedError")


def test_resume_a_token_wait_and_cancel_another(page: Page, served: Served) -> None:
    host = served.host
    host.start("token_wait", {"id": "T-1"}, workflow_id="order-token-1")
    host.start("hooked", {"id": "H-1"}, workflow_id="order-hook-1")
    host.start("approval", {"id": "C-1"}, workflow_id="order-cancel-1")
    page.goto(f"{served.url}/ui/?waiting_on=token")
    ids = page.locator("table.instances td.id").all_inner_texts()
    assert {"order-token-1", "order-hook-1"} <= set(ids)
    page.goto(wf_url(served, "order-hook-1"))
    expect(page.locator("input.hook-url")).to_have_value(re.compile(rf"^{served.url}/hooks/"))
    page.locator("button.copy").click()
    expect(page.locator("button.copy")).to_have_text("Copied")
    page.goto(wf_url(served, "order-token-1"))
    form = page.locator("#form-resume")
    form.locator("textarea[name=value]").fill('{"approved": true}')
    form.locator("button[type=submit]").click()
    expect(page.locator("p.flash")).to_contain_text("completed")
    expect(page.locator("h1 .status")).to_have_text("completed")
    assert host.get("order-token-1").value == {"approved": True}
    page.goto(wf_url(served, "order-cancel-1"))
    page.locator("#form-cancel input[name=reason]").fill("customer withdrew")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#form-cancel button[type=submit]").click()
    expect(page.locator("h1 .status")).to_have_text("cancelled")
    expect(page.locator("dl.meta")).to_contain_text("customer withdrew")


def test_read_key_sees_but_may_not_steer(context: BrowserContext, served: Served) -> None:
    served.host.start("failing", {"id": "F-1"}, workflow_id="order-fault-1")
    page = context.new_page()
    sign_in(page, served.url, READ_KEY)
    page.goto(wf_url(served, "order-fault-1"))
    expect(page.locator("h1 .status")).to_have_text("faulted")
    expect(page.locator(".error-panel")).to_contain_text("payment service down")
    page.locator("#form-retry button[type=submit]").click()
    expect(page.locator("[data-error-for=retry]")).to_contain_text("may not retry")


def test_post_without_csrf_token_is_refused(page: Page, served: Served) -> None:
    served.host.start("approval", {"id": "X-1"}, workflow_id="order-csrf-1")
    url = wf_url(served, "order-csrf-1")
    for form in ({"action": "cancel"}, {"action": "cancel", "csrf_token": "forged"}):
        response = page.request.post(url, form=form, max_redirects=0)
        assert response.status == 403
        assert "CSRF" in response.text()
    assert served.host.get("order-csrf-1").status == "suspended"
    response = page.request.post(f"{served.url}/ui/login", form={"key": ADMIN_KEY}, max_redirects=0)
    assert response.status == 403


def test_ten_thousand_entry_timeline_opens_at_once(page: Page, served: Served) -> None:
    start_big_instance(served.host, "big-10k", 10_000)
    started = time.monotonic()
    page.goto(wf_url(served, "big-10k"), wait_until="domcontentloaded")
    elapsed = time.monotonic() - started
    assert timeline_rows(page) == 100
    print(f"10,000-entry timeline: first page in {elapsed * 1000:.0f} ms")
    assert elapsed < 1.0, f"first page took {elapsed:.2f} s"
    last = page.locator("table.timeline tbody tr").last.inner_text()
    slot = int(re.search(r'"slot": (\d+)', last).group(1))  # type: ignore[union-attr]
    page.click("nav.pager a[rel=next]")
    expect(page.locator("table.timeline tbody tr").first).to_contain_text(f'"slot": {slot + 1},')
    shot(page, "instance-10k")


def test_hostile_values_are_shown_as_text_and_run_nothing(page: Page, served: Served) -> None:
    host = served.host
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    host.start("approval", EVIL, {"note": EVIL, "k\x00": [EVIL]}, workflow_id=EVIL)
    host.send_event(EVIL, EVIL, {"payload": EVIL})  # not awaited: buffered
    host.send_event(EVIL, "go", EVIL)  # delivered: in the timeline
    page.goto(f"{served.url}/ui/?q={quote('<script>')}")
    link = page.locator("table.instances td.id a")
    expect(link).to_have_count(1)
    link.click()
    shown = EVIL.replace("\x01", "\u2401").replace("\x1b", "\u241b").replace("\x7f", "\u2421")
    expect(page.locator("#workflow-id")).to_have_text(shown)
    expect(page.locator("table.inbox")).to_contain_text("<script>alert(1)</script>")
    expect(page.locator("table.timeline")).to_contain_text("onerror=alert(1)")
    expect(page.locator("pre.json").first).to_contain_text("<img src=x onerror=alert(1)>")
    page.goto(f"{served.url}/ui/scripts")
    page.goto(wf_url(served, EVIL))
    page.wait_for_timeout(300)
    assert dialogs == []
    assert page.locator("img").count() == 0
    assert page.locator("script").count() == 1  # ui.js only
    shot(page, "instance-hostile")


def test_open_pages_update_live(page: Page, served: Served) -> None:
    host = served.host
    host.start("approval", {"id": "L-1"}, workflow_id="order-live-1")
    page.goto(wf_url(served, "order-live-1"))
    page.evaluate("window.notReloaded = true")
    before = timeline_rows(page)
    started = time.monotonic()
    host.send_event("order-live-1", "go", {"live": True})
    expect(page.locator("table.waits")).to_contain_text("approve", timeout=2500)
    assert time.monotonic() - started < 2.5
    assert timeline_rows(page) > before
    page.goto(f"{served.url}/ui/?q=order-live")
    page.evaluate("window.notReloaded = true")
    host.start("approval", {"id": "L-2"}, workflow_id="order-live-2")
    expect(page.locator("table.instances td.id").first).to_have_text("order-live-2", timeout=2500)
    assert page.evaluate("window.notReloaded") is True
    host.start("nap", workflow_id="order-nap-1")  # the server's worker fires the timer
    page.goto(wf_url(served, "order-nap-1"))
    page.evaluate("window.notReloaded = true")
    expect(page.locator("h1 .status")).to_have_text("completed", timeout=4000)
    expect(page.locator("pre.json").last).to_contain_text("rested")
    assert page.evaluate("window.notReloaded") is True
    page.goto(f"{served.url}/ui/scripts")
    expect(page.locator("section.script h2").first).to_be_visible()
    shot(page, "scripts")


def test_readme_screenshots(page: Page, served: Served) -> None:
    """The list and instance pages as docs/operating.md shows them (after the tests above
    have left instances in every state)."""
    host = served.host
    host.start("sleeper", {"id": "S-2"}, workflow_id="order-sleep-2")
    host.start("hooked", {"id": "H-2"}, workflow_id="order-hook-2")
    host.send_event("order-hook-2", "reminder", {"note": "buffered until awaited"})
    page.goto(f"{served.url}/ui/?q=order-")
    expect(page.locator("table.instances tbody tr").first).to_be_visible()
    shot(page, "readme-list")
    page.goto(wf_url(served, "order-hook-2"))
    expect(page.locator("button.copy")).to_be_visible()
    shot(page, "readme-instance")
