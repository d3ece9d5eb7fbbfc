"""The public archive: every sent edition, one newsletter's, their RSS feeds with each
edition's headlines, and a date shown once."""

from __future__ import annotations

from datetime import UTC, datetime
from xml.etree import ElementTree as ET

import httpx
import pytest
from sqlalchemy import select

from digest.editions import create_newsletter
from digest.store import Edition, EditionStatus, EditionStory, Story
from tests.support.factories import seed_stories
from tests.support.samples import TOPICS
from tests.support.stack import Stack

pytestmark = pytest.mark.integration
WHEN = datetime(2026, 12, 2, 7, 0, tzinfo=UTC)


def sent(live: Stack, subject: str, newsletter_id: int | None, story_titles: list[str]) -> int:
    with live.factory.begin() as session:
        edition = Edition(subject=subject, send_at=WHEN, status=EditionStatus.SENT, max_stories=2, window_hours=48,
                          newsletter_id=newsletter_id, finished_at=WHEN)
        session.add(edition)
        session.flush()
        ids = {s.title: s.id for s in session.scalars(select(Story))}
        session.add_all(EditionStory(edition_id=edition.id, story_id=ids[title], position=i)
                        for i, title in enumerate(story_titles))
        return edition.id


def test_the_archive_by_newsletter_with_headlines_in_its_feed(live: Stack, web: str) -> None:
    seed_stories(live.factory)
    with live.factory.begin() as session:
        morning = create_newsletter(session, slug="morning", name="Morning", cron="0 7 * * *", timezone="UTC",
                                    allowed_topics=TOPICS).id
    with live.factory() as session:
        titles = [s.title for s in session.scalars(select(Story).order_by(Story.id))][:3]
    dated = sent(live, "Morning: Wednesday 2 December 2026", morning, titles)
    plain = sent(live, "Our picks", None, titles[1:])
    with httpx.Client(base_url=web, timeout=20) as client:
        everything = client.get("/archive").text
        assert everything.count("2 December 2026") == 2  # in the one subject, and beside the other
        assert 'href="/archive/newsletters/morning"' in everything
        one = client.get("/archive/newsletters/morning")
        assert one.status_code == 200 and "Morning: past editions" in one.text
        assert f"/archive/{dated}" in one.text and f"/archive/{plain}" not in one.text
        assert client.get("/archive/newsletters/nothing").status_code == 404

        feed = ET.fromstring(client.get("/archive/newsletters/morning.rss").content)
        [item] = feed.iter("item")
        # Two stories at most: the edition's own list, not its spares.
        assert item.findtext("description") == "\n".join(titles[:2])
        items = {i.findtext("title"): i.findtext("description") for i in
                 ET.fromstring(client.get("/archive.rss").content).iter("item")}
        assert items == {"Morning: Wednesday 2 December 2026": "\n".join(titles[:2]),
                         "Our picks": "\n".join(titles[1:3])}
        page = client.get(f"/archive/{dated}").text
        assert page.count("2 December 2026") == 2  # the title tag and the heading: no third in the byline


def test_view_in_browser_opens_while_the_edition_is_still_going_out(live: Stack, web: str) -> None:
    """Each copy links to its edition's archive page: a reader who got theirs early opens it
    while the rest are sent (or paused); an edition not yet released is not public."""
    seed_stories(live.factory)
    edition_id = sent(live, "Going out now", None, [])
    with httpx.Client(base_url=web, timeout=20) as client:
        for status, code in ((EditionStatus.SENDING, 200), (EditionStatus.PAUSED, 200), (EditionStatus.SENT, 200),
                             (EditionStatus.SCHEDULED, 404), (EditionStatus.DRAFT, 404),
                             (EditionStatus.CANCELLED, 404)):
            with live.factory.begin() as session:
                session.get_one(Edition, edition_id).status = status
            assert client.get(f"/archive/{edition_id}").status_code == code, status
