"""The editor pages follow a send (htmx fragments that stop themselves when it is over) and
show their charts with a text equivalent: the dashboard's upcoming editions and readers per
day, the edition page's Delivery section, the newsletter page's reach; /ops/status.json
carries the messages-per-minute series.

A real send through the session's worker to aiosmtpd; the fragments are fetched as htmx
does. PostgreSQL only: the chart queries run on both databases in tests/integration/observe.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from html import unescape

import httpx
import pytest
from sqlalchemy import select

from digest.store import (
    ANY,
    ClickCount,
    ClickUnique,
    ConsentEvent,
    Edition,
    EditionCuration,
    EditionStatus,
    Newsletter,
    NewsletterSubscription,
    Story,
    utcnow,
)
from tests.support.factories import make_api_token, make_user, seed_readers, seed_stories, send_due_edition
from tests.support.queries import reader_by_email
from tests.support.stack import Stack
from tests.support.web import EDITOR, OPS, csrf_token, signed_in

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("stack", ["postgresql"], indirect=True)]


def chart_json(page: str, chart_id: str) -> dict[str, object]:
    figure = page[page.index(f'<figure class="chart" id="{chart_id}"'):]
    figure = figure[:figure.index("</figure>")]
    [data] = re.findall(r'<script type="application/json">(.*?)</script>', figure, re.DOTALL)
    assert "as a table</summary>" in figure, "the chart has no table beside it"
    return json.loads(data)  # type: ignore[no-any-return]


def test_pages_follow_a_send_and_chart_it(live: Stack, web: str) -> None:
    make_user(live, EDITOR, "editor")
    make_user(live, OPS, "ops")
    seed_stories(live.factory)
    seed_readers(live.factory, 12)
    with live.factory.begin() as session:
        letter = Newsletter(slug="noon", name="Noon briefing", timezone="UTC", subject_template="Noon {date}")
        session.add(letter)
        session.flush()
        letter_id = letter.id
    reader = reader_by_email(live, "reader0@example.org")
    assert reader is not None
    with live.factory.begin() as session:
        session.add(NewsletterSubscription(newsletter_id=letter_id, subscriber_id=reader.id))
        session.add(ConsentEvent(subscriber_id=reader.id, kind="subscribe", channel="web", at=utcnow()))
        scheduled = Edition(subject="Later today", send_at=utcnow() + timedelta(hours=3),
                            status=EditionStatus.SCHEDULED, max_stories=5, window_hours=48)
        session.add(scheduled)
        session.flush()
        scheduled_id = scheduled.id

    with signed_in(web, EDITOR, "/editor") as editor:
        # Before any send: the upcoming editions poll; the readers chart has today's sign-up.
        page = editor.get("/editor").text
        assert 'hx-get="/editor/upcoming"' in page
        readers = chart_json(page, "readers-1")
        assert readers["lines"]["sign-ups"][-1] == 1  # type: ignore[index]
        upcoming = editor.get("/editor/upcoming")
        assert upcoming.status_code == 200 and f"/editor/editions/{scheduled_id}" in upcoming.text

        edition_id = send_due_edition(live, "Midday featured stories")
        # Finished: its page charts the deliveries, and the fragment tells htmx to stop (286).
        page = editor.get(f"/editor/editions/{edition_id}").text
        section = page[page.index('id="delivery"'):]
        assert "12 of 12 done (100 %)" in unescape(re.sub(r"<[^>]+>", "", section[:section.index("</section>")]))
        assert 'hx-get="/editor/editions/' not in section[:section.index("</section>")], "a finished send still polls"
        deliveries = chart_json(page, "deliveries")
        assert sum(deliveries["lines"]["sent"]) == 12  # type: ignore[index]
        fragment = editor.get(f"/editor/editions/{edition_id}/delivery")
        assert fragment.status_code == 286
        assert 'id="edition-status" hx-swap-oob="true" class="badge sent"' in fragment.text
        assert editor.get("/editor/editions/999999/delivery").status_code == 404

        # A newsletter's page: reach per edition (none sent in it yet) and its readers per day.
        page = editor.get(f"/editor/newsletters/{letter_id}").text
        assert "No edition of this newsletter has been sent yet." in page
        assert chart_json(page, "newsletter-readers")["lines"]["sign-ups"][-1] == 1  # type: ignore[index]

        with live.factory.begin() as session:
            session.get(Edition, edition_id).newsletter_id = letter_id  # type: ignore[union-attr]
        reach = chart_json(editor.get(f"/editor/newsletters/{letter_id}").text, "reach")
        assert reach["lines"] == {"sent": [12], "failed": [0], "bounced": [0]}
        assert str(reach["labels"][0]).endswith("Midday featured stories")  # type: ignore[index]
        # Its click rate per edition (3 clicking copies of 12), and the dashboard's week's best.
        assert "No reader has followed a link in a sent edition yet." in editor.get(f"/editor/newsletters/{letter_id}").text
        with live.factory.begin() as session:
            first = session.scalars(select(Story.id).order_by(Story.id)).first()
            session.add(ClickCount(edition_id=edition_id, story_id=first, variant=0, clicks=4, machine_clicks=2))
            session.add(ClickUnique(edition_id=edition_id, story_id=ANY, variant=ANY, unique_clicks=3))
        assert chart_json(editor.get(f"/editor/newsletters/{letter_id}").text, "click-rate")["lines"] == {
            "click rate %": [25.0]}
        page = editor.get("/editor").text
        assert chart_json(page, "best-stories-chart")["lines"] == {"clicks": [4]}
        assert f'<tr data-best-story="{first}">' in page and "Noon briefing" in page

        # Nothing upcoming any more but the scheduled one; with it gone, the poll stops.
        with live.factory.begin() as session:
            session.get(Edition, scheduled_id).status = EditionStatus.CANCELLED  # type: ignore[union-attr]
        assert editor.get("/editor/upcoming").status_code == 286

    with signed_in(web, OPS) as ops:
        series = ops.get("/ops/status.json").json()["send_rate"]
        assert series["title"] == "Messages per minute" and len(series["x"]) == 60
        assert sum(series["lines"]["sent"]) == 12
        page = ops.get("/ops").text
        assert sum(chart_json(page, "send-rate")["lines"]["sent"]) == 12  # type: ignore[arg-type]


def test_a_cancelled_edition_is_duplicated_into_a_draft_in_one_click(live: Stack, web: str) -> None:
    """With its curation (a pin, an exclusion, a rewritten headline); never one that reached
    anyone, which would reach them twice (409 edition_already_sent, and no button)."""
    make_user(live, EDITOR, "editor")
    seed_stories(live.factory)
    with live.factory.begin() as session:
        stories = session.scalars(select(Story.id).order_by(Story.id)).all()[:2]
        cancelled = Edition(subject="Morning briefing", send_at=utcnow() - timedelta(minutes=5),
                            status=EditionStatus.CANCELLED, max_stories=4, window_hours=24, note="Good morning.")
        session.add(cancelled)
        session.flush()
        session.add_all([EditionCuration(edition_id=cancelled.id, story_id=stories[0], action="pin", position=0,
                                         headline="A better headline"),
                         EditionCuration(edition_id=cancelled.id, story_id=stories[1], action="exclude")])
        cancelled_id = cancelled.id

    with signed_in(web, EDITOR, "/editor") as editor:
        page = editor.get(f"/editor/editions/{cancelled_id}").text
        assert "Duplicate as a new draft" in page
        done = editor.post(f"/editor/editions/{cancelled_id}/duplicate", data={"csrf_token": csrf_token(page)})
        assert done.status_code == 303
        copy_id = int(re.search(r"/editor/editions/(\d+)\?done=duplicated", done.headers["location"]).group(1))  # type: ignore[union-attr]
        assert "A copy of that edition, as a draft" in editor.get(done.headers["location"]).text
    with live.factory() as session:
        copy = session.get_one(Edition, copy_id)
        assert (copy.subject, copy.status, copy.note, copy.max_stories, copy.window_hours) == (
            "Morning briefing", EditionStatus.DRAFT, "Good morning.", 4, 24)
        rows = {(r.story_id, r.action, r.position, r.headline) for r in session.scalars(
            select(EditionCuration).where(EditionCuration.edition_id == copy_id))}
        assert rows == {(stories[0], "pin", 0, "A better headline"), (stories[1], "exclude", None, None)}

    seed_readers(live.factory, 3)
    sent_id = send_due_edition(live, "Already out")
    token = make_api_token(live, "admin@example.org", "admin")
    refused = httpx.post(f"{web}/api/v1/editions/{sent_id}/duplicate", headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 409 and refused.json()["code"] == "edition_already_sent", refused.text
    assert httpx.post(f"{web}/api/v1/editions/999999/duplicate",
                      headers={"Authorization": f"Bearer {token}"}).status_code == 404
    with signed_in(web, EDITOR, "/editor") as editor:
        assert "Duplicate as a new draft" not in editor.get(f"/editor/editions/{sent_id}").text
