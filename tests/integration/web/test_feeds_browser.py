"""The feeds page in a real browser (Debian's Chromium): an editor adds a feed served by a
loopback publisher, reads how its first poll went and its story count, pauses it, and sees
two bad settings marked at their fields.
Screenshots: test-artifacts/screenshots/feeds-<page>-<width>.png."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import BrowserContext, expect

from tests.support.browser import check_and_shoot, heading, submit_sign_in
from tests.support.factories import make_user
from tests.support.http_server import LocalServer, local_server, page
from tests.support.samples import RSS
from tests.support.stack import Stack
from tests.support.web import EDITOR

# The browser drives the page, not the store: PostgreSQL only (the SQLite runs are in the
# HTTP tests).
pytestmark = [pytest.mark.integration, pytest.mark.parametrize("stack", ["postgresql"], indirect=True)]


@pytest.fixture
def publisher(live: Stack) -> Iterator[LocalServer]:
    with local_server({"/rss.xml": page(RSS, "application/rss+xml")}, port=live.publisher_port) as server:
        yield server


def test_an_editor_adds_a_feed_sees_its_stories_and_pauses_it(
        live: Stack, context: BrowserContext, publisher: LocalServer) -> None:
    make_user(live, EDITOR, "editor")
    url = publisher.url("/rss.xml")
    tab = context.new_page()
    tab.goto("/editor")
    submit_sign_in(tab, EDITOR)
    heading(tab, "Editor dashboard")

    tab.get_by_role("link", name="Feeds", exact=True).click()
    heading(tab, "Feeds")
    expect(tab.get_by_label("Poll every (minutes)")).to_have_value("15")
    tab.get_by_label("Feed address").fill(url)
    tab.get_by_role("checkbox", name="world").check()
    tab.get_by_label("Categories to topics").fill("Politics = politics")
    tab.get_by_role("button", name="Add feed").click()

    expect(tab.get_by_role("status")).to_have_text("Feed added: 2 stories in its first poll.")
    row = tab.get_by_role("row").filter(has_text=url)
    expect(row.locator("td[data-col=stories]")).to_have_text("2")
    expect(row).to_contain_text("2 new")
    expect(row.locator(".badge")).to_have_text("active")
    check_and_shoot(tab, "list", prefix="feeds")

    row.get_by_role("button", name=f"Pause: {url}").click()
    expect(tab.get_by_role("status")).to_contain_text("Feed paused")
    expect(row.locator(".badge")).to_have_text("paused")
    expect(row).to_contain_text("Paused by staff")
    expect(row.get_by_role("button", name=f"Resume: {url}")).to_be_visible()

    # Its settings: two bad fields, each marked at once beside itself.
    row.get_by_role("link", name=f"Edit: {url}").click()
    heading(tab, "Edit feed paused")
    tab.get_by_label("Poll every (minutes)").fill("0")
    tab.get_by_label("Categories to topics").fill("Politics = politics\nno topic here")
    tab.get_by_role("button", name="Save changes").click()
    expect(tab.get_by_role("alert")).to_contain_text("Nothing was saved")
    expect(tab.get_by_label("Poll every (minutes)")).to_have_attribute("aria-invalid", "true")
    expect(tab.locator("#every_minutes-error")).to_contain_text("Between 1 and 1440 minutes.")
    expect(tab.get_by_label("Categories to topics")).to_have_attribute("aria-invalid", "true")
    expect(tab.locator("#category_topics-error")).to_contain_text("Line 2 (“no topic here”)")
    check_and_shoot(tab, "edit-errors", prefix="feeds")
