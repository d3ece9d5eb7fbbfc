"""What staff see after they act, in a real browser (Debian's Chromium through Playwright) at
1280 and 375 px: the edition page's "Editor's note saved." and "Test sent." inside the
viewport after the click, the test form keeping its addresses and a refused one shown at its
field; the preview frames as tall as their email and the phone's inside a 375 px screen;
wide tables that say they scroll; the audit log's filters.

Screenshots: test-artifacts/screenshots/feedback-<name>-<width>.png.

PostgreSQL only: what the browser sees does not depend on the database (the HTTP tests run
the same pages on both).
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Locator, Page, expect
from sqlalchemy import select

from digest import actions
from digest.config import Settings
from digest.store.models import Story, User, utcnow
from tests.support.browser import DESKTOP_WIDTH, PHONE_WIDTH, SCREENSHOTS, VIEW_HEIGHT, heading, submit_sign_in
from tests.support.factories import make_user, seed_readers, seed_stories
from tests.support.stack import Stack
from tests.support.web import EDITOR, clear_rate_limits

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("stack", ["postgresql"], indirect=True)]

SUBJECT = "Weekend reads"
ADMIN = "admin@example.org"
FALLBACK_FRAME_PX = 1100  # the stylesheet's height, for browsers without script


def _nothing(*args: Any, **kwargs: Any) -> None:
    pass


def make_edition(live: Stack) -> int:
    """A draft with five stories pinned (a long page: the note and test forms sit far down)."""
    seed_stories(live.factory)
    seed_readers(live.factory, 3)
    make_user(live, EDITOR, "editor")
    with live.factory() as session:
        editor = session.scalars(select(User).where(User.email == EDITOR)).one()
        story_ids = list(session.scalars(select(Story.id).order_by(Story.id).limit(5)))
    deps = actions.Deps(live.factory, Settings(), _nothing, _nothing, _nothing)
    who = actions.Actor(editor, "web")
    edition = actions.editions.create_edition(deps, who, subject=SUBJECT, send_at=utcnow() + timedelta(days=1),
                                              topics=None, max_stories=5, window_hours=48, draft=True)
    for story_id in story_ids:
        actions.editions.pick(deps, who, edition["id"], story_id, "pin")
    return int(edition["id"])


def shoot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    width = page.viewport_size["width"] if page.viewport_size else DESKTOP_WIDTH
    page.screenshot(path=str(SCREENSHOTS / f"feedback-{name}-{width}.png"))


def in_view(page: Page, locator: Locator) -> None:
    """The element is visible and wholly inside the viewport once the page has loaded (the
    browser scrolls to the address's #fragment as it loads, and the preview frames size
    themselves on their own load events): looked at until then, for at most 5 s."""
    expect(locator).to_be_visible()
    page.wait_for_load_state("load")
    size = page.viewport_size
    assert size is not None
    deadline = time.monotonic() + 5
    while True:
        box = locator.bounding_box()
        assert box is not None
        inside = (0 <= box["y"] and box["y"] + box["height"] <= size["height"]
                  and 0 <= box["x"] and box["x"] + box["width"] <= size["width"])
        if inside or time.monotonic() > deadline:
            break
        page.wait_for_timeout(100)
    assert inside, (box, size)


def no_sideways_scroll(page: Page) -> None:
    widths = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert widths[0] <= widths[1], widths


def until(page: Page, script: str, timeout_s: float = 10) -> None:
    """Wait until `script` (a function) returns true. (Playwright's wait_for_function
    evaluates a string, which the pages' CSP forbids.)"""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(script):
        assert time.monotonic() < deadline, f"never true: {script}"
        page.wait_for_timeout(100)


def frame_heights(page: Page) -> list[dict[str, float]]:
    return page.eval_on_selector_all("iframe[data-fit-content]", """frames => frames.map(f => ({
        height: f.getBoundingClientRect().height, content: f.contentDocument.documentElement.scrollHeight,
        right: f.getBoundingClientRect().right}))""")


@pytest.mark.parametrize("width", [DESKTOP_WIDTH, PHONE_WIDTH])
def test_what_an_action_did_is_said_in_view_beside_its_control(live: Stack, context: BrowserContext,
                                                               width: int) -> None:
    edition_id = make_edition(live)
    page = context.new_page()
    page.set_viewport_size({"width": width, "height": VIEW_HEIGHT})
    page.goto(f"/editor/editions/{edition_id}")
    submit_sign_in(page, EDITOR)
    heading(page, SUBJECT)

    # A headline for the last story: said in that story's box, where the page lands.
    last = page.locator("ol.story-list > li").last
    last.get_by_text("Headline and summary for this edition").click()
    last.get_by_label("Headline").fill("A better headline")
    last.get_by_role("button", name="Save for this edition").click()
    last = page.locator("ol.story-list > li").last
    said = last.get_by_role("status")
    expect(said).to_have_text("Headline and summary saved for this edition.")
    in_view(page, said)
    expect(last).to_contain_text("A better headline")
    shoot(page, "headline-saved")

    # The note: far down the page; after saving, the page lands at the note with the message.
    page.get_by_label("Shown above the stories").fill("Five reads for a slow Sunday.")
    page.get_by_role("button", name="Save note").click()
    saved = page.locator("#note").get_by_role("status")
    expect(saved).to_have_text("Editor's note saved.")
    in_view(page, saved)
    expect(page.get_by_label("Shown above the stories")).to_have_value("Five reads for a slow Sunday.")
    assert page.locator("p.ok[role=status]").count() == 1  # said once, there, not at the top
    shoot(page, "note-saved")

    # A test: the message in view at the form, which keeps what was typed.
    page.get_by_label("Send one copy to").fill("desk@example.org")
    page.locator("#test-as").fill("reader1@example.org")
    page.get_by_role("button", name="Send test").click()
    sent = page.locator("#test").get_by_role("status")
    expect(sent).to_have_text("Test sent.")
    in_view(page, sent)
    expect(page.get_by_label("Send one copy to")).to_have_value("desk@example.org")
    expect(page.locator("#test-as")).to_have_value("reader1@example.org")
    assert live.smtp.by_recipient().get("desk@example.org")
    shoot(page, "test-sent")

    # An address the browser lets through but the server refuses: said at the field, in view,
    # the typed text kept, nothing sent.
    page.get_by_label("Send one copy to").fill("desk@localhost")
    page.get_by_role("button", name="Send test").click()
    error = page.locator("#test-email-error")
    expect(error).to_be_visible()
    in_view(page, error)
    expect(page.get_by_label("Send one copy to")).to_have_value("desk@localhost")
    expect(page.get_by_label("Send one copy to")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#test-as")).to_have_value("reader1@example.org")
    assert "desk@localhost" not in live.smtp.by_recipient()
    shoot(page, "test-refused")


def test_preview_frames_follow_their_email_and_fit_a_phone(live: Stack, context: BrowserContext) -> None:
    edition_id = make_edition(live)
    page = context.new_page()
    page.goto(f"/editor/editions/{edition_id}")
    submit_sign_in(page, EDITOR)
    heading(page, SUBJECT)
    expect(page.locator("iframe[data-fitted]")).to_have_count(2)
    desktop, phone = frame_heights(page)
    for frame in (desktop, phone):
        assert abs(frame["height"] - 2 - frame["content"]) <= 1, frame  # 2: the frame's borders
        assert frame["content"] != FALLBACK_FRAME_PX
    assert phone["content"] != desktop["content"]  # each frame its own email's height

    page.set_viewport_size({"width": PHONE_WIDTH, "height": VIEW_HEIGHT})
    page.locator("#preview").scroll_into_view_if_needed()
    no_sideways_scroll(page)
    expect(page.locator("iframe[data-fitted]")).to_have_count(2)
    until(page, """() => [...document.querySelectorAll('iframe[data-fit-content]')].every(f =>
        Math.abs(f.getBoundingClientRect().height - 2 - f.contentDocument.documentElement.scrollHeight) <= 1)""")
    for frame in frame_heights(page):
        assert frame["right"] <= PHONE_WIDTH, frame
    page.get_by_role("heading", name="Preview").scroll_into_view_if_needed()
    shoot(page, "preview")


def test_without_script_the_frames_keep_their_fixed_height(live: Stack, browser: Any, web: str) -> None:
    edition_id = make_edition(live)
    clear_rate_limits(live)
    context = browser.new_context(viewport={"width": DESKTOP_WIDTH, "height": VIEW_HEIGHT}, base_url=web,
                                  java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"/editor/editions/{edition_id}")
        submit_sign_in(page, EDITOR)
        heading(page, SUBJECT)
        heights = [page.locator("iframe[data-fit-content]").nth(i).bounding_box()["height"]  # type: ignore[index]
                   for i in range(2)]
        assert heights == [FALLBACK_FRAME_PX] * 2
    finally:
        context.close()


def test_wide_tables_say_they_scroll(live: Stack, context: BrowserContext) -> None:
    make_edition(live)
    page = context.new_page()
    page.goto("/editor")
    submit_sign_in(page, EDITOR)
    heading(page, "Editor dashboard")
    upcoming = page.locator("section[aria-labelledby=upcoming-h] .table-wrap")
    expect(upcoming).not_to_have_attribute("data-scrolls", "")  # wide enough at 1280
    page.set_viewport_size({"width": PHONE_WIDTH, "height": VIEW_HEIGHT})
    expect(upcoming).to_have_attribute("data-scrolls", "")
    region = page.get_by_role("region", name="Upcoming editions (scrolls sideways)")
    expect(region).to_have_attribute("tabindex", "0")
    expect(page.locator("section[aria-labelledby=upcoming-h] .scroll-hint")).to_be_visible()
    region.focus()
    page.keyboard.press("ArrowRight")
    until(page, "() => document.querySelector('section[aria-labelledby=upcoming-h] .table-wrap').scrollLeft > 0")
    no_sideways_scroll(page)
    shoot(page, "dashboard")
    page.set_viewport_size({"width": DESKTOP_WIDTH, "height": VIEW_HEIGHT})
    expect(page.locator("section[aria-labelledby=upcoming-h] .scroll-hint")).to_be_hidden()


@pytest.mark.parametrize("width", [DESKTOP_WIDTH, PHONE_WIDTH])
def test_the_audit_log_filters_by_who_and_what(live: Stack, context: BrowserContext, width: int) -> None:
    edition_id = make_edition(live)
    make_user(live, ADMIN, "admin")  # an admin: the rows link to editor pages, which ops cannot open
    page = context.new_page()
    page.set_viewport_size({"width": width, "height": VIEW_HEIGHT})
    page.goto("/ops/audit")
    submit_sign_in(page, ADMIN)
    heading(page, "Audit log")
    rows = page.locator("tbody tr[data-audit]")
    expect(rows).to_have_count(7)  # the draft, five pins, the sign-in
    expect(rows.first).to_contain_text("login")
    page.get_by_label("Who").select_option(EDITOR)
    page.get_by_label("What").select_option("edition.pin")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(5)
    for i in range(5):
        expect(rows.nth(i)).to_contain_text("edition.pin")
        expect(rows.nth(i).get_by_role("link", name=SUBJECT)).to_have_attribute(
            "href", f"/editor/editions/{edition_id}")
    expect(page.get_by_label("Who")).to_have_value(EDITOR)
    expect(page.get_by_role("heading", name="5 rows")).to_be_visible()
    no_sideways_scroll(page)
    shoot(page, "audit")
    page.locator("#from").fill("2026-05-02")
    page.locator("#to").fill("2026-05-01")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#from-error")).to_have_text("From must not be after To.")
    expect(rows).to_have_count(0)
