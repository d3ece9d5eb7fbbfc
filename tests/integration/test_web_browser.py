"""A reader in a real browser (Debian's Chromium driven by Playwright): sign up, confirm from
the email, read a digest, leave from the email's link, change preferences.

Every page is photographed at desktop and phone width into test-artifacts/screenshots/
for a person to look at, and checked for the basics: each input has a label, one h1,
nothing wider than a 375 px phone.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Iterator

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Route,
    expect,
    sync_playwright,
)

from digest.store.models import Frequency, SubscriberStatus
from tests.integration.conftest import REPO, Stack
from tests.integration.helpers import due_edition, seed_readers, seed_stories
from tests.integration.test_web_http import (
    clear_rate_limits,
    html_part,
    mail_to,
    reader_by_email,
    statuses,
    wait_for_mail,
)

pytestmark = pytest.mark.integration

SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
DESKTOP_WIDTH, PHONE_WIDTH = 1280, 375
VIEW_HEIGHT = 900
CHROMIUM = "/usr/bin/chromium"

_UNLABELLED = """els => els.filter(e => {
    const named = (e.labels && [...e.labels].some(l => l.textContent.trim()))
        || (e.getAttribute('aria-label') || '').trim() || e.getAttribute('aria-labelledby');
    return !named;
}).map(e => e.outerHTML)"""


def _png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A flat-colour PNG: stands in for the story images the sample feed points at."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + bytes(rgb) * width
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(row * height)) + chunk(b"IEND", b""))


PLACEHOLDER_IMAGE = _png(160, 90, (190, 196, 204))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser: Browser, live: Stack, web: str) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": DESKTOP_WIDTH, "height": VIEW_HEIGHT}, locale="en-GB")
    context.set_default_timeout(10_000)

    def outside(route: Route) -> None:
        # Nothing leaves the machine: story images get a placeholder, the rest is refused.
        if route.request.resource_type == "image":
            route.fulfill(status=200, content_type="image/png", body=PLACEHOLDER_IMAGE)
        else:
            route.abort()

    context.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/])"), outside)
    yield context
    context.close()


def check_and_shoot(page: Page, backend: str, name: str, *, web_page: bool = True) -> None:
    """Full-page screenshots at desktop and phone width, with the accessibility basics."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        for width in (DESKTOP_WIDTH, PHONE_WIDTH):
            page.set_viewport_size({"width": width, "height": VIEW_HEIGHT})
            page.screenshot(path=str(SCREENSHOTS / f"{backend}-{name}-{width}.png"), full_page=True)
            unlabelled = page.eval_on_selector_all("input:not([type=hidden]), select, textarea", _UNLABELLED)
            assert unlabelled == [], f"{name}: inputs without a label: {unlabelled}"
            if web_page:
                assert page.locator("h1").count() == 1, f"{name}: not exactly one h1"
            if width == PHONE_WIDTH:
                scroll_width = page.evaluate("document.documentElement.scrollWidth")
                assert scroll_width <= PHONE_WIDTH, f"{name}: {scroll_width} px wide on a {PHONE_WIDTH} px phone"
    finally:
        page.set_viewport_size({"width": DESKTOP_WIDTH, "height": VIEW_HEIGHT})


def heading(page: Page, text: str) -> None:
    expect(page.get_by_role("heading", level=1)).to_have_text(text)


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
    check_and_shoot(page, backend, "subscribe")
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
    check_and_shoot(page, backend, "sent")
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
    check_and_shoot(page, backend, "confirmed")
    assert reader_by_email(live, address).status == SubscriberStatus.ACTIVE  # type: ignore[union-attr]
    wait_for_mail(live, address, subject="Welcome")

    # A digest arrives; leave from its visible Unsubscribe link.
    seed_stories(live.factory)
    first = due_edition(live.factory, "Browser edition one")
    live.client.send_task("digest.release_due_editions")
    live.wait_for_edition(first)
    [digest] = wait_for_mail(live, address, subject="Browser edition one")
    digest_html = html_part(digest.message)
    mail_view.set_content(digest_html)
    expect(mail_view.get_by_text("Hi Bea,")).to_be_visible()
    check_and_shoot(mail_view, backend, "email", web_page=False)
    unsubscribe_url = email_link(mail_view, digest_html, "Unsubscribe")
    assert unsubscribe_url == f"{web}/unsubscribe/{reader_by_email(live, address).token}"  # type: ignore[union-attr]

    page.goto(unsubscribe_url)
    heading(page, "Unsubscribe?")
    expect(page.get_by_text(address)).to_be_visible()
    check_and_shoot(page, backend, "unsubscribe")
    assert reader_by_email(live, address).status == SubscriberStatus.ACTIVE  # type: ignore[union-attr]  # opening is not leaving
    page.get_by_role("button", name="Unsubscribe").click()
    heading(page, "You're unsubscribed")
    check_and_shoot(page, backend, "unsubscribed")
    gone = reader_by_email(live, address)
    assert gone is not None
    assert (gone.status, gone.unsubscribe_channel) == (SubscriberStatus.UNSUBSCRIBED, "page")

    # The next edition goes out, but not to them.
    second = due_edition(live.factory, "Browser edition two")
    live.client.send_task("digest.release_due_editions")
    live.wait_for_edition(second)
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
    check_and_shoot(page, backend, "preferences")
    changed = reader_by_email(live, control)
    assert changed is not None
    assert changed.topics == ["culture", "technology"]
    assert changed.frequency == Frequency.WEEKLY

    # A broken link gets a page a person can act on.
    response = page.goto(f"{web}/unsubscribe/not-a-real-token")
    assert response is not None and response.status == 404
    heading(page, "Link not recognised")
    expect(page.get_by_role("link", name="Go to the sign-up page")).to_be_visible()
    check_and_shoot(page, backend, "error")

