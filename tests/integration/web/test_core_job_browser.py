"""The core editor job, timed and counted in a real browser (Debian's Chromium): a new editor
signs in with a one-time password and chooses their own, creates a newsletter that takes the
readers already on the list, opens its first edition (made with it), sees who it goes to,
pins a story, and leaves it scheduled. Every click and every field filled is counted; the
count and the time go to test-artifacts/core-job.json for the notes (the time is reported,
never asserted: this machine is shared)."""

from __future__ import annotations

import json
import re
import time

import pytest
from playwright.sync_api import BrowserContext, Locator, Page, expect
from sqlalchemy import select

from digest.store import Edition, EditionCuration, EditionStatus, Newsletter
from tests.support.browser import heading
from tests.support.factories import add_active_reader, make_user, seed_stories
from tests.support.processes import REPO
from tests.support.stack import Stack
from tests.support.web import PASSWORD

# Counted once, on the production database: the SQLite run would add nothing here.
pytestmark = [pytest.mark.integration, pytest.mark.parametrize("stack", ["postgresql"], indirect=True)]
NEWCOMER = "first-day@example.org"
OWN_PASSWORD = "a password of my own"


class Hands:
    """What the editor does, counted: a click is a click, typing into a field is one fill."""

    def __init__(self, page: Page) -> None:
        self.page, self.clicks, self.fills = page, 0, 0

    def click(self, target: Locator) -> None:
        target.click()
        self.clicks += 1

    def fill(self, target: Locator, text: str) -> None:
        target.fill(text)
        self.fills += 1


def test_from_first_sign_in_to_a_curated_scheduled_edition(live: Stack, context: BrowserContext) -> None:
    seed_stories(live.factory)
    for n in range(3):
        add_active_reader(live, f"reader{n}@example.org", topics=["politics"])
    make_user(live, NEWCOMER, "editor", one_time=True)
    page = context.new_page()
    hands = Hands(page)
    started = time.monotonic()

    page.goto("/editor")
    hands.fill(page.get_by_label("Email"), NEWCOMER)
    hands.fill(page.get_by_label("Password"), PASSWORD)
    hands.click(page.get_by_role("button", name="Sign in"))
    heading(page, "Change your password")
    hands.fill(page.get_by_label("One-time password"), PASSWORD)
    hands.fill(page.get_by_label("New password", exact=True), OWN_PASSWORD)
    hands.fill(page.get_by_label("New password again"), OWN_PASSWORD)
    hands.click(page.get_by_role("button", name="Change password"))
    heading(page, "Editor dashboard")

    hands.click(page.get_by_role("link", name="Newsletters", exact=True))
    hands.click(page.get_by_role("link", name="New newsletter"))
    hands.fill(page.get_by_label("Name", exact=True), "Evening Politics")
    hands.fill(page.get_by_label("Short name"), "evening-politics")
    hands.fill(page.get_by_label("When (cron)"), "0 18 * * *")
    hands.click(page.get_by_role("checkbox", name="politics"))
    hands.click(page.get_by_label(re.compile(r"Subscribe the 3 active readers")))
    hands.click(page.get_by_role("button", name="Create newsletter"))
    heading(page, "Evening Politics active")

    hands.click(page.get_by_role("link", name=re.compile(r"\d{2}:00")).first)  # its next edition
    expect(page.get_by_text("Goes to 3 readers")).to_be_visible()
    hands.fill(page.get_by_label("Search published stories"), "council")
    page.get_by_label("Search published stories").press("Enter")
    hands.click(page.get_by_role("button", name=re.compile("^Pin to this edition: ")).first)
    expect(page.get_by_role("status").filter(has_text="Story pinned")).to_be_visible()
    elapsed = time.monotonic() - started

    with live.factory() as session:
        newsletter = session.scalars(select(Newsletter).where(Newsletter.slug == "evening-politics")).one()
        edition = session.scalars(select(Edition).where(Edition.newsletter_id == newsletter.id)
                                  .order_by(Edition.send_at)).first()
        assert edition is not None and edition.status == EditionStatus.SCHEDULED
        pins = session.scalars(select(EditionCuration.action).where(EditionCuration.edition_id == edition.id)).all()
        assert pins == ["pin"]
    report = {"clicks": hands.clicks, "fields_filled": hands.fills, "seconds": round(elapsed, 1),
              "steps": "sign in with a one-time password, choose a password, create a newsletter taking the "
                       "existing readers, open its first edition, see its audience, pin a story (scheduled)"}
    artifacts = REPO / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "core-job.json").write_text(json.dumps(report, indent=2) + "\n")
    print(report)
