"""The web view says why an instance waits: the sentence on the list and the
instance page, the script around the waiting line highlighted, and a
wait's schema shown and checked in the browser before a form is sent."""

from __future__ import annotations

import re
from urllib.parse import quote

from playwright.sync_api import Page, expect
from ui_helpers import Served, shot

VOTES = """// a 2-of-3 approval
async function main(order) {
  const note = 'three approvers, two must agree';
  const votes = await waitForEvents('vote', { count: 2, distinct: 'voter', timeout: '1d' });
  return { order, votes };
}"""

TYPED = """
async function main() {
  return await waitForEvent('qty', { schema: { type: 'object', required: ['qty'],
    properties: { qty: { type: 'integer', minimum: 1 } } } });
}"""


def test_instance_page_highlights_the_waiting_line_and_says_why(page: Page, served: Served) -> None:
    host = served.host
    host.register_script("votes", VOTES)
    host.start("votes", "A-17", workflow_id="votes-ui-1")
    host.send_event("votes-ui-1", "vote", {"voter": "ann"})
    page.goto(f"{served.url}/ui/workflows/{quote('votes-ui-1', safe='')}")
    sentence = page.locator("#wait-sentence")
    expect(sentence).to_have_text(
        re.compile(r"^waiting for 1 more 'vote' event \(have: ann\), 1 of 2 received; times out in 2[34]h")
    )
    current = page.locator("figure.excerpt mark.line.current")
    expect(current).to_have_count(1)
    expect(current).to_have_attribute("data-line", "4")
    expect(current).to_contain_text("waitForEvents('vote'")
    expect(current).to_be_visible()
    assert current.evaluate("el => getComputedStyle(el).backgroundColor") != "rgba(0, 0, 0, 0)"
    expect(page.locator("figure.excerpt .line")).to_contain_text(["three approvers"])  # lines around it
    page_text = page.locator("body").inner_text()
    assert "__j" not in page_text
    shot(page, "approvals-instance")
    page.goto(f"{served.url}/ui/?q=votes-ui-1")
    expect(page.locator("table.instances .wait-sentence")).to_contain_text("1 of 2 received; times out in")


def test_resume_and_event_forms_check_the_schema_before_sending(page: Page, served: Served) -> None:
    host = served.host
    host.register_script("typed", TYPED)
    host.start("typed", workflow_id="typed-ui-1")
    page.goto(f"{served.url}/ui/workflows/typed-ui-1")
    form = page.locator("#form-event")
    expect(form.locator(".form-schema")).to_contain_text('"minimum": 1')
    form.locator("input[name=name]").fill("qty")
    form.locator("textarea[name=payload]").fill('{"qty": 0}')
    form.locator("button[type=submit]").click()
    expect(form.locator(".schema-error")).to_contain_text("/qty")
    assert host.pending_events("typed-ui-1") == []  # nothing was sent
    form.locator("textarea[name=payload]").fill('{"qty": 2}')
    form.locator("button[type=submit]").click()
    expect(page.locator("p.flash")).to_contain_text("delivered")
    assert host.get("typed-ui-1").value == {"qty": 2}


def test_resume_form_checks_a_suspend_functions_schema(page: Page, served: Served) -> None:
    host = served.host
    host.register_script(
        "hooked_schema",
        "async function main() { const h = await createHook({schema: {type: 'boolean'}}); return h.wait(); }",
    )
    host.start("hooked_schema", workflow_id="hooked-ui-1")
    page.goto(f"{served.url}/ui/workflows/hooked-ui-1")
    expect(page.locator("table.waits td.description")).to_contain_text("waiting for an HTTP call to its hook")
    form = page.locator("#form-resume")
    expect(form.locator(".form-schema")).to_contain_text('"boolean"')
    form.locator("textarea[name=value]").fill('"yes"')
    form.locator("button[type=submit]").click()
    expect(form.locator(".schema-error")).to_contain_text("expected boolean")
    assert host.get("hooked-ui-1").status == "suspended"
    form.locator("textarea[name=value]").fill("true")
    form.locator("button[type=submit]").click()
    expect(page.locator("p.flash")).to_be_visible()
    assert host.get("hooked-ui-1").value is True
