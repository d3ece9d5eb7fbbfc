"""The core editor job with the keyboard alone, in a real browser (Debian's Chromium): sign in,
open a newsletter, create an edition for it, pick a story, look at the preview, send a test
and schedule it, pressing only Tab, Shift+Tab, Enter, Space and the arrow keys (typing text
into fields aside). At every stop the focused element shows it (an outline or a box shadow),
and on each staff page the first Tab stop is the skip link, which moves focus to the main
content.

PostgreSQL only: the keys and the pages do not depend on the database.
"""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import BrowserContext, Locator, Page, expect
from sqlalchemy import select

from digest.editions import create_newsletter
from digest.readers import set_subscriptions
from digest.store import Edition, EditionCuration, Subscriber
from tests.support.browser import heading
from tests.support.factories import make_user, seed_readers, seed_stories
from tests.support.mail import html_part, wait_for_mail
from tests.support.processes import REPO
from tests.support.samples import TOPICS
from tests.support.stack import Stack
from tests.support.web import EDITOR, PASSWORD

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("stack", ["postgresql"], indirect=True)]

COUNCIL = "City Council Approves Overhaul of Downtown Transit Routes"
TAB_STOPS_AT_MOST = 120

# What the focused element shows: an outline wider than nothing, or a box shadow. Inside a
# frame (a link in the email preview) it is the frame's focused element that shows it; when
# the frame's document itself has the focus (it scrolls), the frame.
_FOCUS = """() => {
    let el = document.activeElement;
    while (el && el.tagName === 'IFRAME' && el.contentDocument) {
        const inner = el.contentDocument.activeElement;
        if (!inner || inner === el.contentDocument.body) break;
        el = inner;
    }
    if (!el || el === el.ownerDocument.body) return {shown: false, what: 'nothing focused'};
    const style = el.ownerDocument.defaultView.getComputedStyle(el);
    const outline = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0;
    const shadow = style.boxShadow && style.boxShadow !== 'none';
    return {shown: outline || shadow,
            what: el.outerHTML.slice(0, 160) +
                  ` (outline: ${style.outlineStyle} ${style.outlineWidth}, shadow: ${style.boxShadow})`};
}"""


class Keyboard:
    """The editor's hands on the keyboard: every key press is one of the allowed keys, and
    every Tab stop is checked for a visible focus."""

    KEYS = frozenset({"Tab", "Shift+Tab", "Enter", "Space", "ArrowDown", "ArrowUp", "ArrowLeft", "ArrowRight"})

    def __init__(self, page: Page) -> None:
        self.page, self.presses = page, 0

    def press(self, key: str) -> None:
        assert key in self.KEYS, key
        self.page.keyboard.press(key)
        self.presses += 1

    def follow(self, key: str) -> None:
        """Press `key` on a link or in a form and wait for the page it opens (the next Tab
        belongs to that page, not to the one going away)."""
        with self.page.expect_navigation():
            self.press(key)

    def type(self, text: str) -> None:
        """Text into the focused field, as typing it would."""
        self.page.keyboard.type(text)

    def focus_shown(self) -> None:
        focus = self.page.evaluate(_FOCUS)
        assert focus["shown"], f"{self.page.url}: focus not visible on {focus['what']}"

    def focused(self, target: Locator) -> bool:
        return bool(target.evaluate("el => el === document.activeElement"))

    def tab_to(self, target: Locator, *, backwards: bool = False) -> None:
        """Tab (or Shift+Tab) until `target` has the focus, checking each stop on the way."""
        for _ in range(TAB_STOPS_AT_MOST):
            self.press("Shift+Tab" if backwards else "Tab")
            self.focus_shown()
            if self.focused(target):
                return
        raise AssertionError(f"{target} not reached in {TAB_STOPS_AT_MOST} Tab presses on {self.page.url}")

    def skip_to_main(self) -> None:
        """On a freshly loaded page (no #fragment to start from): the first Tab stop is the
        skip link, and Enter on it puts the focus on the main content."""
        self.press("Tab")
        self.focus_shown()
        expect(self.page.locator(":focus")).to_have_text("Skip to content")
        self.press("Enter")
        expect(self.page.locator(":focus")).to_have_attribute("id", "main")
        self.focus_shown()


def test_the_core_editor_job_by_keyboard_alone(live: Stack, context: BrowserContext) -> None:
    seed_stories(live.factory)
    readers = seed_readers(live.factory, 3)
    with live.factory.begin() as session:
        newsletter = create_newsletter(session, slug="morning-briefing", name="Morning Briefing",
                                       cron="0 7 * * 1-5", timezone="Europe/London", allowed_topics=TOPICS)
        session.flush()
        for reader in session.scalars(select(Subscriber).where(Subscriber.email.in_(readers))):
            set_subscriptions(session, reader, [newsletter.id])
        newsletter_id = newsletter.id
    make_user(live, EDITOR, "editor")
    page = context.new_page()
    keys = Keyboard(page)

    # Sign in.
    page.goto("/login")
    keys.skip_to_main()
    keys.tab_to(page.get_by_label("Email"))
    keys.type(EDITOR)
    keys.tab_to(page.get_by_label("Password"))
    keys.type(PASSWORD)
    keys.follow("Enter")
    heading(page, "Editor dashboard")

    # Open the newsletter.
    keys.skip_to_main()
    keys.tab_to(page.get_by_role("link", name="Newsletters", exact=True), backwards=True)
    keys.follow("Enter")
    heading(page, "Newsletters")
    keys.skip_to_main()
    keys.tab_to(page.get_by_role("link", name="Morning Briefing", exact=True))
    keys.follow("Enter")
    heading(page, "Morning Briefing active")

    # A new edition for it: a subject, the newsletter picked with the arrow keys.
    keys.skip_to_main()
    keys.tab_to(page.get_by_role("link", name="New edition", exact=True), backwards=True)
    keys.follow("Enter")
    heading(page, "New edition")
    keys.skip_to_main()
    keys.tab_to(page.get_by_label("Subject", exact=True))
    keys.type("Keyboard picks")
    keys.tab_to(page.get_by_label("Newsletter"))
    keys.press("ArrowDown")
    expect(page.get_by_label("Newsletter")).to_have_value(str(newsletter_id))
    keys.tab_to(page.get_by_role("button", name="Create draft"))
    keys.follow("Space")
    heading(page, "Keyboard picks")
    edition_id = int(re.search(r"/editor/editions/(\d+)", page.url).group(1))  # type: ignore[union-attr]

    # Pick a story: search, then pin it.
    keys.skip_to_main()
    keys.tab_to(page.get_by_label("Search published stories"))
    keys.type("council")
    keys.follow("Enter")
    expect(page.get_by_role("button", name=f"Pin to this edition: {COUNCIL}")).to_be_visible()
    keys.tab_to(page.get_by_role("button", name=f"Pin to this edition: {COUNCIL}"))
    keys.follow("Space")
    expect(page.get_by_role("status").filter(has_text="Story pinned")).to_be_visible()

    # The preview, as a reader of the newsletter would get it. (The page came back at the
    # stories, #stories: Tab goes on from there, as browsers do after a link to a fragment.)
    keys.tab_to(page.get_by_label("Preview as"))
    keys.type(readers[0])
    keys.follow("Enter")
    expect(page.frame_locator(".previews iframe").first.get_by_text(COUNCIL, exact=True)).to_be_visible()
    keys.tab_to(page.get_by_role("region", name="Plain-text part"))  # it scrolls: the keyboard can too
    keys.press("ArrowDown")

    # A test copy to the desk.
    keys.tab_to(page.get_by_label("Send one copy to"))
    keys.type("desk@example.org")
    keys.follow("Enter")
    [test_copy] = wait_for_mail(live, "desk@example.org", subject="[TEST] ")
    assert COUNCIL in html_part(test_copy.message)

    # Schedule it: with no time set it is due at once, and the worker sends it.
    expect(page.get_by_role("status").filter(has_text="Test sent")).to_be_visible()
    keys.tab_to(page.get_by_role("button", name="Schedule", exact=True), backwards=True)
    keys.follow("Enter")
    expect(page.get_by_role("status").filter(has_text="Edition scheduled")).to_be_visible()
    assert live.wait_for_edition(edition_id) == "sent"
    with live.factory() as session:
        edition = session.get_one(Edition, edition_id)
        assert edition.newsletter_id == newsletter_id and edition.subject == "Keyboard picks"
        assert session.scalars(select(EditionCuration.action).where(EditionCuration.edition_id == edition_id)).all() \
            == ["pin"]
    for address in readers:
        [copy] = wait_for_mail(live, address, subject="Keyboard picks")
        assert COUNCIL in html_part(copy.message)
    # How many keys the job takes, for the notes (reported, not asserted).
    artifacts = REPO / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "keyboard-job.json").write_text(json.dumps({"key_presses": keys.presses}) + "\n")
