"""Audience in a real browser (Debian's Chromium): a new newsletter takes the readers already
on the list and the dashboard counts them; an edition shows who it goes to before it is
scheduled; one that goes to nobody asks first and, released, ends skipped, saying why.
Screenshots: test-artifacts/screenshots/audience-<page>-<width>.png."""

from __future__ import annotations

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from digest.store import Edition, EditionStatus, utcnow
from tests.support.browser import check_and_shoot, heading, submit_sign_in
from tests.support.factories import add_active_reader, make_user, seed_stories
from tests.support.stack import Stack
from tests.support.web import EDITOR

# The browser drives the pages, not the store: PostgreSQL only (the pages' SQLite runs are
# in the HTTP tests), which keeps CI's half hour.
pytestmark = [pytest.mark.integration, pytest.mark.parametrize("stack", ["postgresql"], indirect=True)]
TEN_YEARS_HOURS = 24 * 365 * 10  # the sample stories are from May 2023


def shoot(page: Page, live: Stack, name: str) -> None:
    check_and_shoot(page, name, prefix="audience" if live.backend == "postgresql" else None)


def test_an_editor_sees_who_each_newsletter_and_edition_reaches(live: Stack, context: BrowserContext) -> None:
    seed_stories(live.factory)
    for address in ("ann@example.org", "bob@example.org"):
        add_active_reader(live, address, topics=["politics"])
    with live.factory.begin() as session:
        nobody = Edition(subject="Sports tonight", send_at=utcnow(), status=EditionStatus.DRAFT, max_stories=5,
                         window_hours=TEN_YEARS_HOURS, topics=["sports"])
        session.add(nobody)
    make_user(live, EDITOR, "editor")
    page = context.new_page()
    page.goto("/editor")
    submit_sign_in(page, EDITOR)
    heading(page, "Editor dashboard")

    # A newsletter that takes the readers already on the list.
    page.get_by_role("link", name="Newsletters", exact=True).click()
    page.get_by_role("link", name="New newsletter").click()
    page.get_by_label("Name", exact=True).fill("Politics Daily")
    page.get_by_label("Short name").fill("politics-daily")
    page.get_by_role("checkbox", name="politics").check()
    page.get_by_label("Subscribe the 2 active readers whose topics match").check()
    shoot(page, live, "newsletter-new")
    page.get_by_role("button", name="Create newsletter").click()
    heading(page, "Politics Daily active")
    expect(page.get_by_text("2 readers")).to_be_visible()
    page.get_by_role("link", name="Dashboard").click()
    heading(page, "Editor dashboard")
    row = page.get_by_role("region", name="Newsletters").get_by_role("row").filter(has_text="Politics Daily")
    expect(row.get_by_role("cell").nth(1)).to_have_text("2")

    # An edition to nobody: the page says so, and scheduling asks first.
    page.get_by_role("link", name="Sports tonight").click()
    heading(page, "Sports tonight")
    expect(page.get_by_text("This edition goes to nobody")).to_be_visible()
    shoot(page, live, "edition-nobody")
    page.get_by_role("button", name="Schedule", exact=True).click()  # the box is required: nothing happens
    heading(page, "Sports tonight")
    page.get_by_label("Schedule it anyway").check()
    page.get_by_role("button", name="Schedule", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="Edition scheduled")).to_be_visible()

    # Released, it ends skipped and says why, never "sent".
    live.client.send_task("digest.release_due_editions")
    assert live.wait_for_edition(nobody.id, ("skipped", "sent")) == "skipped"
    page.reload()
    expect(page.locator(".status-bar .badge")).to_have_text("skipped")
    expect(page.get_by_text("no readers: no active reader shares one of its topics")).to_be_visible()
    shoot(page, live, "edition-skipped")
