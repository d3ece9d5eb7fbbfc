"""Audience, always visible and never silently zero: through the editor pages and the API,
a newsletter shows its readers (and can take the existing ones when created), an edition
shows who it goes to before it is sent, and one that goes to nobody asks first and, released,
ends skipped with the reason, never a green "sent"."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy import select

from digest import staff
from digest.store import ConsentEvent, Edition, EditionStatus, StatusCode, Subscriber, SubscriberStatus, utcnow
from tests.support.factories import add_active_reader, make_user, seed_stories
from tests.support.stack import Stack
from tests.support.web import EDITOR, csrf_token, h1, signed_in

pytestmark = pytest.mark.integration


@pytest.fixture
def editor(live: Stack, web: str) -> httpx.Client:
    make_user(live, EDITOR, "editor")
    with signed_in(web, EDITOR, next_path="/editor") as client:
        yield client  # type: ignore[misc]


def post(client: httpx.Client, page: str, action: str, data: dict[str, object]) -> httpx.Response:
    return client.post(action, data={"csrf_token": csrf_token(client.get(page).text), **data})


def readers(live: Stack) -> None:
    """Two active readers who chose politics, and one who left."""
    for address in ("one@example.org", "two@example.org", "three@example.org"):
        add_active_reader(live, address, topics=["politics"])
    with live.factory.begin() as session:
        session.scalars(select(Subscriber).where(Subscriber.email == "three@example.org")).one().status = (
            SubscriberStatus.UNSUBSCRIBED)


def test_a_new_newsletter_can_take_the_existing_readers_and_shows_its_count(live: Stack, editor: httpx.Client) -> None:
    readers(live)
    form = editor.get("/editor/newsletters/new")
    assert "Subscribe the 2 active readers whose topics match" in form.text
    response = post(editor, "/editor/newsletters/new", "/editor/newsletters/new", {
        "slug": "morning", "name": "Morning", "cron": "0 7 * * *", "timezone": "UTC", "max_stories": "5",
        "min_stories": "1", "subject_template": "{{ newsletter }}", "subscribe_existing": "yes"})
    assert response.status_code == 303
    dashboard = editor.get("/editor").text
    assert re.search(r"<td>Morning<div.*?</td>\s*<td class=\"num\">2</td>", dashboard, re.DOTALL), dashboard
    with live.factory() as session:
        events = session.scalars(select(ConsentEvent).where(ConsentEvent.kind == "newsletter-added")).all()
        assert sorted(e.channel for e in events) == ["admin", "admin"]
    # Without the box ticked, a newsletter starts with nobody, and the dashboard says so.
    post(editor, "/editor/newsletters/new", "/editor/newsletters/new", {
        "slug": "evening", "name": "Evening", "cron": "0 19 * * *", "timezone": "UTC", "max_stories": "5",
        "min_stories": "1", "subject_template": "{{ newsletter }}"})
    assert re.search(r"<td>Evening<div.*?</td>\s*<td class=\"num bad\">0</td>", editor.get("/editor").text,
                     re.DOTALL)


def test_an_edition_to_nobody_asks_first_and_released_ends_skipped_with_the_reason(
        live: Stack, editor: httpx.Client) -> None:
    readers(live)
    seed_stories(live.factory)
    with live.factory.begin() as session:
        reaching = Edition(subject="For everyone", send_at=utcnow(), status=EditionStatus.DRAFT, max_stories=5,
                           window_hours=24 * 365 * 10)
        nobody = Edition(subject="For sports fans", send_at=utcnow(), status=EditionStatus.DRAFT, max_stories=5,
                         window_hours=24 * 365 * 10, topics=["sports"])
        session.add_all([reaching, nobody])
    assert "Goes to <strong>2 readers</strong>" in editor.get(f"/editor/editions/{reaching.id}").text
    page = editor.get(f"/editor/editions/{nobody.id}").text
    assert "This edition goes to nobody" in page and 'name="anyway"' in page
    dashboard = editor.get("/editor").text
    assert re.search(r"For sports fans</a>.*?<td class=\"num bad\">0</td>", dashboard, re.DOTALL)

    refused = post(editor, f"/editor/editions/{nobody.id}", f"/editor/editions/{nobody.id}/status",
                   {"action": "schedule"})
    assert refused.status_code == 409 and h1(refused.text) == "This edition goes to nobody"
    assert post(editor, f"/editor/editions/{nobody.id}", f"/editor/editions/{nobody.id}/status",
                {"action": "schedule", "anyway": "yes"}).status_code == 303
    live.client.send_task("digest.release_due_editions")
    assert live.wait_for_edition(nobody.id, ("skipped", "sent")) == "skipped"
    with live.factory() as session:
        skipped = session.get_one(Edition, nobody.id)
        assert skipped.status_code == StatusCode.NO_READERS
        assert skipped.status_reason == "no readers: no active reader shares one of its topics"
    page = editor.get(f"/editor/editions/{nobody.id}").text
    assert "skipped" in page and "no readers: no active reader shares one of its topics" in page


def test_the_api_shows_subscribers_and_audience(live: Stack, web: str) -> None:
    readers(live)
    with live.factory.begin() as session:
        user = staff.create_user(session, EDITOR, "editor", "correct horse battery staple")
        _, token = staff.create_api_token(session, user, "audience")
    with httpx.Client(base_url=f"{web}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=20) as api:
        created = api.post("/newsletters", json={"slug": "politics-daily", "name": "Politics Daily",
                                                 "cron": "0 7 * * *", "topics": ["politics"],
                                                 "subscribe_existing": True})
        assert created.status_code == 201 and created.json()["subscribers"] == 2
        empty = api.post("/newsletters", json={"slug": "sports", "name": "Sports", "cron": "0 7 * * *"})
        assert empty.status_code == 201 and empty.json()["subscribers"] == 0
        assert {n["slug"]: n["subscribers"] for n in api.get("/newsletters").json()} == {
            "politics-daily": 2, "sports": 0}
        taken = api.post("/newsletters", json={"slug": "sports", "name": "Sports", "cron": "0 7 * * *"})
        assert taken.status_code == 409 and taken.json()["code"] == "conflict"
        edition = api.post("/editions", json={"subject": "Politics only", "topics": ["politics"]}).json()
        one = api.get(f"/editions/{edition['id']}").json()
        assert one["audience"] == 2 and one["status"] == "draft" and one["counts"]["audience"] == 2
        assert [e["audience"] for e in api.get("/editions").json() if e["id"] == edition["id"]] == [2]


def test_previewing_as_a_reader_who_will_not_get_it_says_so_and_why(live: Stack, editor: httpx.Client) -> None:
    readers(live)  # one@ and two@ take politics; three@ unsubscribed
    seed_stories(live.factory)
    with live.factory.begin() as session:
        politics = Edition(subject="Politics", send_at=utcnow(), status=EditionStatus.DRAFT, max_stories=5,
                           window_hours=24 * 365 * 10, topics=["politics"])
        world = Edition(subject="World", send_at=utcnow(), status=EditionStatus.DRAFT, max_stories=5,
                        window_hours=24 * 365 * 10, topics=["world"])
        session.add_all([politics, world])

    def warning(edition_id: int, email: str) -> str | None:
        page = editor.get(f"/editor/editions/{edition_id}", params={"email": email})
        assert page.status_code == 200, page.text
        found = re.search(r"<p class=\"error\" role=\"status\" data-left-out>(.*?)</p>", page.text, re.DOTALL)
        return " ".join(found.group(1).split()) if found else None

    assert warning(politics.id, "one@example.org") is None
    assert warning(politics.id, "three@example.org") == (
        "three@example.org will not receive this edition: they unsubscribed. "
        "This is what they would get if they did.")
    assert warning(world.id, "two@example.org") == (
        "two@example.org will not receive this edition: they chose other topics (politics). "
        "This is what they would get if they did.")
