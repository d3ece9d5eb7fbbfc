"""Destructive actions in a real browser (Debian's Chromium): cancelling an edition and
retracting a story are never one stray click. Each asks on a page that names the thing and
who it still reaches; a retraction is undone from the line that reports it.
Screenshots: test-artifacts/screenshots/confirm-<page>-<width>.png."""

from __future__ import annotations

import pytest
from playwright.sync_api import BrowserContext, Page, expect
from sqlalchemy import select

from digest.store import Edition, EditionStatus, Story, StoryStatus, Subscriber, utcnow
from tests.support.browser import check_and_shoot, heading, submit_sign_in
from tests.support.factories import add_active_reader, make_user, seed_stories
from tests.support.stack import Stack
from tests.support.web import EDITOR

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("stack", ["postgresql"], indirect=True)]
WATER = "Regional Water Utility Posts Surprise Quarterly Profit"


def shoot(page: Page, name: str) -> None:
    check_and_shoot(page, name, prefix="confirm")


def test_cancel_and_retract_ask_first_and_a_retraction_is_undone(live: Stack, context: BrowserContext) -> None:
    seed_stories(live.factory)
    for n in range(3):
        add_active_reader(live, f"reader{n}@example.org")
    with live.factory.begin() as session:
        edition = Edition(subject="Morning Briefing", send_at=utcnow(), status=EditionStatus.DRAFT, max_stories=5,
                          window_hours=48)
        session.add(edition)
    make_user(live, EDITOR, "editor")
    page = context.new_page()
    page.goto("/editor")
    submit_sign_in(page, EDITOR)

    page.goto(f"/editor/editions/{edition.id}")
    heading(page, "Morning Briefing")
    page.get_by_role("link", name="Cancel edition…").click()
    heading(page, "Cancel “Morning Briefing”?")
    expect(page.get_by_text("It would go to 3 readers; none of them will get it.")).to_be_visible()
    shoot(page, "cancel")
    page.get_by_role("link", name="Keep it").click()
    heading(page, "Morning Briefing")
    with live.factory() as session:
        assert session.get_one(Edition, edition.id).status == EditionStatus.DRAFT
    page.get_by_role("link", name="Cancel edition…").click()
    page.get_by_role("button", name="Yes, cancel “Morning Briefing”").click()
    expect(page.get_by_role("status").filter(has_text="Edition cancelled.")).to_be_visible()

    # Cancelled by mistake: one click makes a new draft like it, nothing sent.
    page.get_by_role("button", name="Duplicate as a new draft").click()
    heading(page, "Morning Briefing")
    expect(page.get_by_role("status").filter(has_text="A copy of that edition, as a draft")).to_be_visible()
    expect(page.locator("#edition-status")).to_have_text("draft")
    with live.factory() as session:
        assert [e.status for e in session.scalars(select(Edition).order_by(Edition.id))] == [
            EditionStatus.CANCELLED, EditionStatus.DRAFT]

    # Erasing a reader asks, names them, and wants the box ticked.
    reader = add_active_reader(live, "leaving@example.org")
    page.goto(f"/editor/readers/{reader.id}")
    page.get_by_role("link", name="Erase…").click()
    heading(page, "Erase leaving@example.org?")
    shoot(page, "erase")
    page.get_by_role("link", name="Cancel").click()
    heading(page, "leaving@example.org")
    page.get_by_role("link", name="Erase…").click()
    page.get_by_role("button", name="Erase this reader").click()  # the box not ticked: the browser refuses
    heading(page, "Erase leaving@example.org?")
    page.get_by_label("I understand that this cannot be undone").check()
    page.get_by_role("button", name="Erase this reader").click()
    with live.factory() as session:
        assert session.get_one(Subscriber, reader.id).erased_at is not None

    page.get_by_role("link", name="Stories", exact=True).click()
    page.get_by_role("link", name=f"Retract: {WATER}").click()
    heading(page, f"Retract “{WATER}”?")
    shoot(page, "retract")
    page.get_by_role("button", name="Yes, retract it").click()
    undo = page.get_by_role("status").filter(has_text="was retracted.")
    expect(undo).to_be_visible()
    shoot(page, "retracted")
    undo.get_by_role("button", name="Undo").click()
    expect(page.get_by_role("status").filter(has_text="Story updated.")).to_be_visible()
    with live.factory() as session:
        assert session.scalars(select(Story.status).where(Story.title == WATER)).one() == StoryStatus.PUBLISHED
