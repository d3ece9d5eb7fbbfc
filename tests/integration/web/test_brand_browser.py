"""A newsroom sets its brand in the browser (Debian's Chromium): as the editor types, the
preview at desktop and phone width, in dark mode and as plain text follows; a colour too
pale for white text is refused at its field with its contrast before saving; the brand is
saved. Screenshots: test-artifacts/screenshots/brand-<page>-<width>.png."""

from __future__ import annotations

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from digest.editions import create_newsletter
from digest.stories import ingest_source
from tests.support.browser import check_and_shoot, heading, submit_sign_in
from tests.support.factories import make_user
from tests.support.samples import TOPICS
from tests.support.stack import Stack
from tests.support.web import EDITOR

# The browser drives the pages, not the store: PostgreSQL only.
pytestmark = [pytest.mark.integration, pytest.mark.parametrize("stack", ["postgresql"], indirect=True)]


def border_of(page: Page, frame: str) -> str:
    return page.frame_locator(frame).locator("td.dateline").evaluate("e => getComputedStyle(e).borderBottomColor")


def test_an_editor_brands_a_newsletter_with_a_live_preview(live: Stack, context: BrowserContext) -> None:
    with live.factory.begin() as session:
        newsletter_id = create_newsletter(session, slug="morning", name="Morning", cron="0 7 * * *", timezone="UTC",
                                          allowed_topics=TOPICS).id
        ingest_source(session, "sample:sample_feed.json")
    make_user(live, EDITOR, "editor")
    page = context.new_page()
    page.goto(f"/editor/newsletters/{newsletter_id}")
    submit_sign_in(page, EDITOR)
    heading(page, "Morning active")
    assert border_of(page, "#brand-desktop") == "rgb(163, 36, 27)"  # the house red, before

    page.get_by_label("Accent colour").fill("#0b5394")
    page.get_by_label("Footer text").fill("Morning is reader-funded.")
    for frame in ("#brand-desktop", "#brand-phone"):
        expect(page.frame_locator(frame).locator("td.dateline")).to_have_css("border-bottom-color", "rgb(11, 83, 148)")
    # Dark mode lightens the accent and darkens the page, whatever the editor's own browser prefers.
    dark = page.frame_locator("#brand-dark")
    expect(dark.locator("table.container")).to_have_css("background-color", "rgb(31, 31, 31)")
    assert border_of(page, "#brand-dark") not in ("rgb(11, 83, 148)", "rgb(163, 36, 27)")
    expect(page.locator("#brand-text")).to_contain_text("Morning is reader-funded.")

    page.get_by_label("Accent colour").fill("#ffcc00")
    expect(page.locator("#accent_color-error")).to_have_text("accent_color #ffcc00 is 1.5:1 on white; needs 4.5:1")
    expect(page.get_by_label("Accent colour")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#brand-preview-note")).to_contain_text("shows the saved brand")
    check_and_shoot(page, "edit-error", prefix="brand", one_h1=True)

    page.get_by_label("Accent colour").fill("#0b5394")
    expect(page.locator("#accent_color-error")).to_be_hidden()
    page.get_by_label("Font").select_option("verdana")
    page.get_by_role("button", name="Save brand").click()
    expect(page.get_by_role("status")).to_contain_text("Brand saved.")
    expect(page.get_by_label("Accent colour")).to_have_value("#0b5394")
    assert border_of(page, "#brand-desktop") == "rgb(11, 83, 148)"  # drawn by the server this time
    check_and_shoot(page, "saved", prefix="brand")
