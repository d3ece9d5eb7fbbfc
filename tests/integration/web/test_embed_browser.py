"""The snippet `digest embed` prints, pasted into a publisher's page served from another
origin, submitted by a person in Chromium with no JavaScript: the confirmation mail arrives;
the same snippet on a page whose origin is not listed is refused."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, expect
from sqlalchemy import select

from digest.store.models import ConsentEvent, SubscriberStatus
from tests.support.browser import heading, launch_chromium, local_context
from tests.support.front_door import FrontDoor, embed_snippet, publisher_page
from tests.support.mail import text_part, wait_for_mail
from tests.support.processes import free_port
from tests.support.queries import reader_by_email
from tests.support.stack import Stack, settle
from tests.support.web import clear_rate_limits

# The browser drives the pages, not the store: PostgreSQL only (the pages' SQLite runs are
# in the HTTP tests), which keeps CI's half hour.
pytestmark = [pytest.mark.integration, pytest.mark.parametrize("stack", ["postgresql"], indirect=True)]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch_chromium()


@pytest.fixture
def with_script(browser: Browser, live: Stack) -> Iterator[BrowserContext]:
    clear_rate_limits(live)
    yield from local_context(browser)


@pytest.fixture
def no_script(browser: Browser, live: Stack) -> Iterator[BrowserContext]:
    clear_rate_limits(live)
    yield from local_context(browser, javascript=False)


def test_a_reader_signs_up_from_the_publishers_page_without_javascript(
        live: Stack, front_door: FrontDoor, no_script: BrowserContext) -> None:
    snippet = embed_snippet(live, front_door, "--topics", "science,world")
    with publisher_page(front_door.publisher_port, snippet) as article:
        page = no_script.new_page()
        page.goto(article)
        form = page.locator("form.digest-signup")
        # The honeypot is there for robots only: not seen, not in the accessibility tree.
        expect(page.locator("input[name=website]")).to_be_hidden()
        assert sorted(t.get_attribute("name") or "" for t in form.get_by_role("textbox").all()) == ["email", "name"]
        page.get_by_label("Email address").fill("article.reader@example.org")
        page.get_by_label("Name (optional)").fill("URGENT verify at https://evil.example")
        page.get_by_label("Science").check()
        page.get_by_role("button", name="Subscribe").click()
        page.wait_for_url(f"{front_door.base_url}/subscribe")
        heading(page, "Check your inbox")
        back = page.get_by_role("link", name="Back to the page you came from")
        assert (back.get_attribute("href") or "").startswith(front_door.publisher_origin)

    [received] = wait_for_mail(live, "article.reader@example.org")
    assert "evil.example" not in text_part(received.message)
    subscriber = reader_by_email(live, "article.reader@example.org")
    assert subscriber is not None and subscriber.status == SubscriberStatus.PENDING
    assert subscriber.topics == ["science"]
    with live.factory() as session:
        [event] = session.scalars(select(ConsentEvent).where(ConsentEvent.subscriber_id == subscriber.id))
    assert event.channel == "embed"
    assert event.detail is not None and event.detail["page"].startswith(front_door.publisher_origin)


def test_the_snippet_on_a_page_whose_origin_is_not_listed_is_refused(
        live: Stack, front_door: FrontDoor, no_script: BrowserContext) -> None:
    snippet = embed_snippet(live, front_door)
    with publisher_page(free_port(), snippet) as article:
        page = no_script.new_page()
        page.goto(article)
        page.get_by_label("Email address").fill("elsewhere@example.org")
        with page.expect_navigation() as navigation:
            page.get_by_role("button", name="Subscribe").click()
        response = navigation.value
        assert response is not None and response.status == 403
    settle(live)
    assert reader_by_email(live, "elsewhere@example.org") is None
    assert live.smtp.by_recipient() == {}


def test_with_embed_js_the_answer_is_shown_in_place_and_read_out(
        live: Stack, front_door: FrontDoor, with_script: BrowserContext) -> None:
    snippet = embed_snippet(live, front_door, "--script")
    with publisher_page(front_door.publisher_port, snippet) as article:
        page = with_script.new_page()
        page.goto(article)
        page.get_by_label("Email address").fill("inline.reader@example.org")
        page.get_by_role("button", name="Subscribe").click()
        answer = page.get_by_role("status")
        expect(answer).to_have_text(re.compile(r"^Check your inbox"))
        assert answer.get_attribute("aria-live") == "polite"
        assert page.url == article  # the reader never left the article
        expect(page.get_by_label("Email address")).to_have_value("")
    wait_for_mail(live, "inline.reader@example.org")
    subscriber = reader_by_email(live, "inline.reader@example.org")
    assert subscriber is not None and subscriber.consent_source == "embed-snippet-v1"


def test_the_iframe_variant_signs_a_reader_up_inside_the_frame_without_script_or_cookie(
        live: Stack, front_door: FrontDoor, no_script: BrowserContext) -> None:
    snippet = embed_snippet(live, front_door, "--iframe", "--topics", "science,world")
    assert "<form" not in snippet and "<script" not in snippet  # the publisher's page holds a frame only
    with publisher_page(front_door.publisher_port, snippet) as article:
        page = no_script.new_page()
        page.goto(article)
        frame = page.frame_locator("iframe[title='Sign up for the featured stories']")
        frame.get_by_label("Email address").fill("framed.reader@example.org")
        frame.get_by_label("Science").check()
        frame.get_by_role("button", name="Subscribe").click()
        expect(frame.get_by_role("heading", name="Check your inbox")).to_be_visible()
        assert page.url == article  # the article stays; the answer is in the frame
        assert no_script.cookies() == []  # no CSRF cookie was needed (a browser sends none to a frame elsewhere)
    wait_for_mail(live, "framed.reader@example.org")
    subscriber = reader_by_email(live, "framed.reader@example.org")
    assert subscriber is not None and subscriber.consent_source == "embed-frame-v1"
    assert subscriber.topics == ["science"]
