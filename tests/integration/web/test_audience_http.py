"""Audience, always visible and never silently zero: through the editor pages and the API,
a newsletter shows its readers (and can take the existing ones when created), an edition
shows who it goes to before it is sent, and one that goes to nobody asks first and, released,
ends skipped with the reason, never a green "sent"."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest import staff
from digest.editions import create_newsletter
from digest.store import (
    ConsentEvent,
    Edition,
    EditionStatus,
    Newsletter,
    NewsletterSubscription,
    StatusCode,
    Subscriber,
    SubscriberStatus,
    utcnow,
)
from tests.support.factories import add_active_reader, make_user, seed_stories
from tests.support.samples import TOPICS
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


def subscribe(session: Session, address: str, newsletter: Newsletter) -> None:
    reader = session.scalars(select(Subscriber).where(Subscriber.email == address)).one()
    session.add(NewsletterSubscription(newsletter_id=newsletter.id, subscriber_id=reader.id))
    session.flush()


def test_a_new_newsletter_can_take_the_existing_readers_and_shows_its_count(live: Stack, editor: httpx.Client) -> None:
    readers(live)
    form = editor.get("/editor/newsletters/new")
    assert "Subscribe the 2 active readers whose topics match" in form.text
    response = post(editor, "/editor/newsletters/new", "/editor/newsletters/new", {
        "slug": "morning", "name": "Morning", "cron": "0 7 * * *", "timezone": "UTC", "max_stories": "5",
        "min_stories": "1", "subject_template": "{{ newsletter }}", "subscribe_existing": "yes"})
    assert response.status_code == 303
    dashboard = editor.get("/editor").text
    assert re.search(r">Morning</a><div.*?</td>\s*<td class=\"num\">2</td>", dashboard, re.DOTALL), dashboard
    listed = editor.get("/editor/newsletters").text
    assert re.search(r">Morning</a><div.*?</td>\s*<td class=\"num\" data-label=\"Readers\">2</td>", listed, re.DOTALL)
    with live.factory() as session:
        events = session.scalars(select(ConsentEvent).where(ConsentEvent.kind == "newsletter-added")).all()
        assert sorted(e.channel for e in events) == ["admin", "admin"]
    # Without the box ticked, a newsletter starts with nobody, and the dashboard says so.
    post(editor, "/editor/newsletters/new", "/editor/newsletters/new", {
        "slug": "evening", "name": "Evening", "cron": "0 19 * * *", "timezone": "UTC", "max_stories": "5",
        "min_stories": "1", "subject_template": "{{ newsletter }}"})
    assert re.search(r">Evening</a><div.*?</td>\s*<td class=\"num bad\">0</td>", editor.get("/editor").text,
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
    # Due, so released by the schedule action itself: no release task from the test.
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


def test_a_one_off_picks_its_newsletter_and_goes_to_its_readers(live: Stack, editor: httpx.Client) -> None:
    readers(live)  # one@ and two@ take politics; three@ left
    add_active_reader(live, "four@example.org", topics=["sports"])
    with live.factory.begin() as session:
        politics = create_newsletter(session, slug="politics-daily", name="Politics Daily", cron="0 7 * * *",
                                     timezone="UTC", allowed_topics=TOPICS)
        subscribe(session, "one@example.org", politics)
    form = editor.get("/editor/editions/new").text
    assert '<option value="" selected>None: every active reader</option>' in form
    assert f'<option value="{politics.id}">Politics Daily (1 reader)</option>' in form

    def new(newsletter_id: str) -> httpx.Response:
        return post(editor, "/editor/editions/new", "/editor/editions/new", {
            "subject": "Election night", "send_at": "", "timezone": "UTC", "max_stories": "5", "window_hours": "48",
            "newsletter_id": newsletter_id})

    made = new(str(politics.id))
    assert made.status_code == 303, made.text
    edition_id = int(re.search(r"/editor/editions/(\d+)", made.headers["location"]).group(1))  # type: ignore[union-attr]
    page = editor.get(f"/editor/editions/{edition_id}").text
    assert "Goes to <strong>1 reader</strong>" in page and "Politics Daily" in page
    with live.factory() as session:
        assert session.get_one(Edition, edition_id).newsletter_id == politics.id

    # Back to everyone on the edit page: the audience follows.
    edit = editor.get(f"/editor/editions/{edition_id}/edit").text
    response = editor.post(f"/editor/editions/{edition_id}/edit", data={
        "csrf_token": csrf_token(edit), "subject": "Election night",
        "send_at": re.search(r'name="send_at" type="datetime-local" value="([^"]+)"', edit).group(1),  # type: ignore[union-attr]
        "timezone": "UTC", "max_stories": "5", "window_hours": "48", "newsletter_id": ""})
    assert response.status_code == 303
    assert "Goes to <strong>3 readers</strong>" in editor.get(f"/editor/editions/{edition_id}").text

    for bad, status, message in (("999999", 404, "no newsletter 999999"), ("politics-daily", 400, "Choose a newsletter")):
        refused = new(bad)
        assert refused.status_code == status and h1(refused.text) == "New edition"
        assert re.search(rf'id="newsletter_id-error">[^<]*{message}', refused.text), bad
    with live.factory() as session:
        assert session.scalar(select(func.count()).select_from(Edition)) == 1


def test_the_api_makes_a_one_off_for_a_newsletter(live: Stack, web: str) -> None:
    readers(live)
    add_active_reader(live, "four@example.org", topics=["sports"])
    with live.factory.begin() as session:
        user = staff.create_user(session, EDITOR, "editor", "correct horse battery staple")
        _, token = staff.create_api_token(session, user, "audience")
    with httpx.Client(base_url=f"{web}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=20) as api:
        newsletter = api.post("/newsletters", json={"slug": "politics-daily", "name": "Politics Daily",
                                                    "cron": "0 7 * * *", "topics": ["politics"],
                                                    "subscribe_existing": True}).json()
        made = api.post("/editions", json={"subject": "For Politics Daily", "newsletter_id": newsletter["id"]})
        assert made.status_code == 201 and made.json()["newsletter_id"] == newsletter["id"]
        one = api.get(f"/editions/{made.json()['id']}").json()
        assert (one["audience"], one["status"]) == (2, "draft")
        everyone = api.post("/editions", json={"subject": "For everyone"}).json()
        assert api.get(f"/editions/{everyone['id']}").json()["audience"] == 3
        assert api.patch(f"/editions/{everyone['id']}", json={"newsletter_id": newsletter["id"]}).status_code == 200
        assert api.get(f"/editions/{everyone['id']}").json()["audience"] == 2
        assert api.patch(f"/editions/{everyone['id']}", json={"newsletter_id": None}).json()["newsletter_id"] is None
        unknown = api.post("/editions", json={"subject": "Nobody's", "newsletter_id": 999999})
        assert unknown.status_code == 404 and unknown.json()["code"] == "newsletter_not_found"
    with live.factory() as session:  # the two one-offs (the newsletter's own editions aside)
        assert session.scalar(select(func.count()).select_from(Edition).where(Edition.occurrence_at.is_(None))) == 2
