"""A reader in a real browser (Debian's Chromium driven by Playwright): sign up, confirm from
the email, read a digest, leave from the email's link, change preferences.

Every page is photographed at desktop and phone width into test-artifacts/screenshots/
for a person to look at, and checked for the basics: each input has a label, one h1,
nothing wider than a 375 px phone.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from digest.store.models import Frequency, SubscriberStatus
from tests.support.browser import (
    check_and_shoot,
    heading,
    launch_chromium,
    local_context,
)
from tests.support.factories import seed_readers, seed_stories, send_due_edition
from tests.support.mail import html_part, mail_to, wait_for_mail
from tests.support.queries import reader_by_email, statuses
from tests.support.stack import Stack
from tests.support.web import clear_rate_limits

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch_chromium()


@pytest.fixture
def context(browser: Browser, live: Stack, web: str) -> Iterator[BrowserContext]:
    yield from local_context(browser)


def email_link(page: Page, html: str, name: str) -> str:
    """The href of a visible link in an email's HTML, as a person would click it."""
    page.set_content(html)
    link = page.get_by_role("link", name=name, exact=True)
    expect(link).to_be_visible()
    href = link.get_attribute("href")
    assert href
    return href


def test_a_reader_signs_up_reads_a_digest_and_leaves_in_a_browser(
        live: Stack, web: str, context: BrowserContext) -> None:
    clear_rate_limits(live)
    backend = live.backend
    address = "browser.reader@example.org"
    [control] = seed_readers(live.factory, 1, prefix="browser-control")
    page = context.new_page()
    mail_view = context.new_page()

    # Sign up: type, tick one topic with the mouse and one with the keyboard, submit.
    response = page.goto(f"{web}/subscribe")
    assert response is not None and response.status == 200
    heading(page, "Get the featured stories in your email")
    check_and_shoot(page, "subscribe", prefix=backend)
    page.get_by_label("Email address").fill(address)
    page.get_by_label("Name").fill("Bea")
    page.get_by_label("Science").click()
    page.get_by_label("World").focus()
    page.keyboard.press("Space")
    expect(page.get_by_label("Science")).to_be_checked()
    expect(page.get_by_label("World")).to_be_checked()
    expect(page.get_by_label("Politics")).not_to_be_checked()
    page.get_by_role("button", name="Subscribe").click()
    heading(page, "Check your inbox")
    check_and_shoot(page, "sent", prefix=backend)
    pending = reader_by_email(live, address)
    assert pending is not None and pending.status == SubscriberStatus.PENDING
    assert pending.topics == ["science", "world"] and pending.name == "Bea"

    # Confirm from the email's button.
    [confirmation] = wait_for_mail(live, address, subject="Confirm")
    confirm_url = email_link(mail_view, html_part(confirmation.message), "Yes, send me the featured stories")
    assert confirm_url.startswith(f"{web}/confirm/")
    page.goto(confirm_url)
    heading(page, "You're subscribed")
    expect(page.get_by_text("You chose: science, world.")).to_be_visible()
    check_and_shoot(page, "confirmed", prefix=backend)
    assert reader_by_email(live, address).status == SubscriberStatus.ACTIVE  # type: ignore[union-attr]
    wait_for_mail(live, address, subject="Welcome")

    # A digest arrives; leave from its visible Unsubscribe link.
    seed_stories(live.factory)
    send_due_edition(live, "Browser edition one")
    [digest] = wait_for_mail(live, address, subject="Browser edition one")
    digest_html = html_part(digest.message)
    mail_view.set_content(digest_html)
    expect(mail_view.get_by_text("Hi Bea,")).to_be_visible()
    check_and_shoot(mail_view, "email", prefix=backend, one_h1=False)  # an email has no h1 of its own
    unsubscribe_url = email_link(mail_view, digest_html, "Unsubscribe")
    assert unsubscribe_url == f"{web}/unsubscribe/{reader_by_email(live, address).token}"  # type: ignore[union-attr]

    page.goto(unsubscribe_url)
    heading(page, "Unsubscribe?")
    expect(page.get_by_text(address)).to_be_visible()
    check_and_shoot(page, "unsubscribe", prefix=backend)
    assert reader_by_email(live, address).status == SubscriberStatus.ACTIVE  # type: ignore[union-attr]  # opening is not leaving
    page.get_by_role("button", name="Unsubscribe").click()
    heading(page, "You're unsubscribed")
    check_and_shoot(page, "unsubscribed", prefix=backend)
    gone = reader_by_email(live, address)
    assert gone is not None
    assert (gone.status, gone.unsubscribe_channel) == (SubscriberStatus.UNSUBSCRIBED, "page")

    # The next edition goes out, but not to them.
    second = send_due_edition(live, "Browser edition two")
    [control_copy] = wait_for_mail(live, control, subject="Browser edition two")
    assert [str(r.message["Subject"]) for r in mail_to(live, address)] == [
        "Confirm your subscription to Political IQ", "Welcome to Political IQ: you're subscribed",
        "Browser edition one"]
    assert address not in statuses(live, second)

    # Another reader changes topics and frequency from their email's preferences link.
    preferences_url = email_link(mail_view, html_part(control_copy.message), "Manage preferences")
    page.goto(preferences_url)
    heading(page, "Your preferences")
    page.get_by_label("Technology").click()
    page.get_by_label("Culture").focus()
    page.keyboard.press("Space")
    page.get_by_label("At most one a week").check()
    page.get_by_role("button", name="Save preferences").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    expect(page.get_by_label("At most one a week")).to_be_checked()
    check_and_shoot(page, "preferences", prefix=backend)
    changed = reader_by_email(live, control)
    assert changed is not None
    assert changed.topics == ["culture", "technology"]
    assert changed.frequency == Frequency.WEEKLY

    # A broken link gets a page a person can act on.
    response = page.goto(f"{web}/unsubscribe/not-a-real-token")
    assert response is not None and response.status == 404
    heading(page, "Link not recognised")
    expect(page.get_by_role("link", name="Go to the sign-up page")).to_be_visible()
    check_and_shoot(page, "error", prefix=backend)

