"""The links in a test copy lead to a page that says it was a test, and never touch a reader."""

from __future__ import annotations

import re

import httpx
import pytest

from digest.store import Edition, EditionStatus, Subscriber, utcnow
from tests.support.factories import add_active_reader, make_user, seed_stories
from tests.support.mail import html_part, wait_for_mail
from tests.support.queries import count
from tests.support.stack import Stack
from tests.support.web import EDITOR, csrf_token, h1, one_click, signed_in

pytestmark = pytest.mark.integration


def test_a_test_copys_links_say_it_was_a_test_and_change_nothing(live: Stack, web: str) -> None:
    make_user(live, EDITOR, "editor")
    add_active_reader(live, "reader@example.org")
    seed_stories(live.factory)
    with live.factory.begin() as session:
        edition = Edition(subject="Tested", send_at=utcnow(), status=EditionStatus.DRAFT, max_stories=5,
                          window_hours=24 * 365 * 10)
        session.add(edition)
    page = f"/editor/editions/{edition.id}"
    with signed_in(web, EDITOR, next_path="/editor") as editor:
        sent = editor.post(f"{page}/test", data={"csrf_token": csrf_token(editor.get(page).text),
                                                 "email": "desk@example.org"})
        assert sent.status_code == 303
    [copy] = wait_for_mail(live, "desk@example.org", subject="[TEST] ")
    links = re.findall(r'href="(http[^"]+/(?:unsubscribe|preferences)/[^"]+)"', html_part(copy.message))
    assert links, "no reader links in the test copy"
    with httpx.Client(timeout=20) as client:
        for link in set(links):
            response = client.get(link)
            assert response.status_code == 200 and h1(response.text) == "A link from a test copy", link
    unsubscribe = next(link for link in links if "/unsubscribe/" in link)
    posted = one_click(unsubscribe)
    assert posted.status_code == 200 and posted.text == "This was a test copy: nothing changed.\n"
    assert count(live, Subscriber, Subscriber.status == "active") == 1


def test_a_test_can_be_sent_as_a_reader_and_never_touches_them(live: Stack, web: str) -> None:
    make_user(live, EDITOR, "editor")
    add_active_reader(live, "ann@example.org", name="Ann Reader")
    seed_stories(live.factory)
    with live.factory.begin() as session:
        edition = Edition(subject="As Ann", send_at=utcnow(), status=EditionStatus.DRAFT, max_stories=5,
                          window_hours=24 * 365 * 10)
        session.add(edition)
    page = f"/editor/editions/{edition.id}"
    with signed_in(web, EDITOR, next_path="/editor") as editor:
        token = csrf_token(editor.get(page).text)
        assert editor.post(f"{page}/test", data={"csrf_token": token, "email": "desk@example.org",
                                                  "as_email": "ann@example.org"}).status_code == 303
    [copy] = wait_for_mail(live, "desk@example.org", subject="[TEST] ")
    body = html_part(copy.message)
    assert "Hi Ann Reader," in body and "/unsubscribe/test-preview" in body
    with signed_in(web, EDITOR, next_path="/editor") as editor:
        # As an address no reader holds: sent as a new reader there would get it, not an
        # error that would tell staff who is subscribed.
        token = csrf_token(editor.get(page).text)
        unknown = editor.post(f"{page}/test", data={"csrf_token": token, "email": "desk2@example.org",
                                                     "as_email": "nobody@example.org"})
        assert unknown.status_code == 303
    [other] = wait_for_mail(live, "desk2@example.org", subject="[TEST] ")
    assert "Hi Ann Reader," not in html_part(other.message)
    assert live.smtp.by_recipient().get("ann@example.org") is None
