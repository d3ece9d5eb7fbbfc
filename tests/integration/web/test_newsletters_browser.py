"""Newsletters in a real browser (Debian's Chromium): the list, then an editor changes a
schedule and sees its next five sends and the sample subject change as they type (a bad
zone shown at its field before saving), saves, pauses, and archives after being asked.
Screenshots: test-artifacts/screenshots/newsletters-<page>-<width>.png."""

from __future__ import annotations

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from digest.editions import create_newsletter, schedule_editions
from digest.store import utcnow
from tests.support.browser import check_and_shoot, heading, submit_sign_in
from tests.support.factories import add_active_reader, make_user
from tests.support.samples import TOPICS
from tests.support.stack import Stack
from tests.support.web import EDITOR

# The browser drives the pages, not the store: PostgreSQL only (the pages' SQLite runs are
# in the HTTP tests), which keeps CI's half hour.
pytestmark = [pytest.mark.integration, pytest.mark.parametrize("stack", ["postgresql"], indirect=True)]


def shoot(page: Page, live: Stack, name: str) -> None:
    check_and_shoot(page, name, prefix="newsletters" if live.backend == "postgresql" else None)


def test_an_editor_reschedules_pauses_and_archives_a_newsletter(live: Stack, context: BrowserContext) -> None:
    with live.factory.begin() as session:
        create_newsletter(session, slug="morning", name="Morning", cron="0 7 * * *", timezone="Europe/Kyiv",
                          allowed_topics=TOPICS)
    add_active_reader(live, "ann@example.org", topics=["politics"])
    with live.factory.begin() as session:
        schedule_editions(session, utcnow())
    make_user(live, EDITOR, "editor")
    page = context.new_page()
    page.goto("/editor")
    submit_sign_in(page, EDITOR)
    heading(page, "Editor dashboard")

    page.get_by_role("link", name="Newsletters", exact=True).click()
    heading(page, "Newsletters")
    row = page.get_by_role("row").filter(has_text="Morning")
    expect(row).to_contain_text("At 07:00, every day, Kyiv time")
    expect(row).to_contain_text("active")
    shoot(page, live, "list")

    row.get_by_role("link", name="Morning").click()
    heading(page, "Morning active")
    expect(page.get_by_text("1 reader")).to_be_visible()
    sends = page.locator("#next-sends li")
    expect(sends).to_have_count(5)

    # As the editor types, the page says what the schedule means: no submit needed.
    page.get_by_label("When (cron)").fill("0 6 * * 1-5")
    expect(page.locator("#schedule-words")).to_have_text("At 06:00, Monday through Friday, Kyiv time")
    expect(sends).to_have_count(5)
    for n in range(5):
        expect(sends.nth(n)).to_contain_text("06:00 EET")
        expect(sends.nth(n)).not_to_contain_text("Sat")
    page.get_by_label("Subject", exact=True).fill("{{ weekday }} with {{ newsletter }}")
    expect(page.locator("#subject-example")).to_contain_text("with Morning")
    page.get_by_label("Time zone").fill("Mars/Olympus")
    expect(page.locator("#timezone-error")).to_contain_text("unknown time zone")
    expect(page.get_by_label("Time zone")).to_have_attribute("aria-invalid", "true")
    shoot(page, live, "edit-error")
    page.get_by_label("Time zone").fill("Europe/Kyiv")
    expect(page.locator("#timezone-error")).to_be_hidden()
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status")).to_contain_text("Newsletter saved.")
    expect(page.get_by_label("When (cron)")).to_have_value("0 6 * * 1-5")
    shoot(page, live, "edit")

    page.get_by_role("button", name="Pause").click()
    heading(page, "Morning paused")
    expect(page.get_by_role("status")).to_contain_text("Newsletter paused")

    page.get_by_role("link", name="Archive…").click()
    heading(page, "Archive Morning?")
    shoot(page, live, "archive-confirm")
    page.get_by_role("button", name="Archive Morning").click()
    heading(page, "Morning archived")
    expect(page.get_by_role("button", name="Restore")).to_be_visible()
