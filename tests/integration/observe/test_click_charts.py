"""The click charts' numbers (digest.observe.click_charts) on both databases: a newsletter's
click rate per edition from its tallies and unique counts, the week's most clicked stories
across newsletters; and the per-story and per-hour charts built from an edition's stats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from digest.observe import best_stories, best_stories_chart, click_rates, hour_clicks_chart, story_clicks_chart
from digest.store import (
    ANY,
    ClickCount,
    ClickUnique,
    Delivery,
    Edition,
    EditionStatus,
    EditionTally,
    Newsletter,
    Story,
)

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 2, 12, 30, 30, tzinfo=UTC)


@pytest.fixture
def db(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    with factory.begin() as session:
        for model in (Delivery, Edition, Newsletter):
            session.execute(delete(model))
    return factory


def sent_edition(session: Session, subject: str, days_ago: float, sent: int, newsletter_id: int | None,
                 status: EditionStatus = EditionStatus.SENT) -> int:
    row = Edition(subject=subject, send_at=NOW - timedelta(days=days_ago), status=status, max_stories=5,
                  window_hours=48, newsletter_id=newsletter_id)
    session.add(row)
    session.flush()
    session.add(EditionTally(edition_id=row.id, sent=sent, failed=0, bounced=0, skipped=0, queued=0))
    return row.id


def story(session: Session, title: str) -> int:
    row = Story(url=f"https://news.example.org/{title.replace(' ', '-')}", title=title, published_at=NOW)
    session.add(row)
    session.flush()
    return row.id


def test_click_rate_per_edition_and_the_weeks_best_stories(db: sessionmaker[Session]) -> None:
    factory = db
    with factory.begin() as session:
        letter = Newsletter(slug="rates", name="Rates", timezone="UTC", subject_template="{date}")
        other = Newsletter(slug="other", name="Other", timezone="UTC", subject_template="{date}")
        session.add_all([letter, other])
        session.flush()
        old = sent_edition(session, "Old", 10, 200, letter.id)
        first = sent_edition(session, "First", 2, 200, letter.id)
        second = sent_edition(session, "Second", 1, 50, letter.id)
        elsewhere = sent_edition(session, "Elsewhere", 3, 80, other.id)
        sent_edition(session, "Cancelled", 1, 0, letter.id, EditionStatus.CANCELLED)
        a, b, c = story(session, "Alpha"), story(session, "Bravo"), story(session, "Charlie")
        counts = [(old, a, 99), (first, a, 7), (first, b, 5), (second, b, 9), (second, c, 1), (elsewhere, c, 8)]
        session.add_all(ClickCount(edition_id=e, story_id=s, variant=0, clicks=n, machine_clicks=3) for e, s, n in counts)
        # A machine-only story never ranks; the masthead (story 0) has no story to name.
        session.add(ClickCount(edition_id=first, story_id=0, variant=0, clicks=4, machine_clicks=0))
        session.add_all(ClickUnique(edition_id=e, story_id=ANY, variant=ANY, unique_clicks=n)
                        for e, n in ((old, 60), (first, 10), (second, 8)))
        letter_id = letter.id
    with factory() as session:
        rates = click_rates(session, letter_id)
        best = best_stories(session, NOW)
    assert rates.x_labels == ["22 Nov · Old", "30 Nov · First", "1 Dec · Second"]
    assert rates.lines == {"click rate %": [30.0, 5.0, 16.0]}
    assert [(b.title, b.newsletter, b.edition_id, b.clicks) for b in best] == [
        ("Bravo", "Rates", second, 9), ("Charlie", "Other", elsewhere, 8), ("Alpha", "Rates", first, 7),
        ("Bravo", "Rates", first, 5), ("Charlie", "Rates", second, 1)]
    chart = best_stories_chart(best)
    assert chart.bars and chart.lines == {"clicks": [9, 8, 7, 5, 1]} and chart.rows()[0] == ("1 · Bravo", [9])


def test_clicks_per_story_and_per_hour_since_sending() -> None:
    stories = story_clicks_chart([("Alpha", 3), ("Bravo", 0)])
    assert stories.rows() == [("1 · Alpha", [3])] and stories.lines == {"clicks": [3, 0]}
    started = datetime(2026, 12, 2, 6, 40, tzinfo=UTC)
    hours = hour_clicks_chart([(datetime(2026, 12, 2, 6, tzinfo=UTC), 2, 9), (datetime(2026, 12, 2, 9, tzinfo=UTC), 1, 0)],
                              started)
    assert hours.lines == {"people": [2, 0, 0, 1], "machines": [9, 0, 0, 0]}
    assert hours.x_labels is not None and hours.x_labels[0] == "0 h · 2 Dec 06:00 UTC"
    assert [label for label, _ in hours.rows()] == ["0 h · 2 Dec 06:00 UTC", "3 h · 2 Dec 09:00 UTC"]
    assert hour_clicks_chart([], started).empty
    # Clicks weeks later fall into the last bar, not a chart of a thousand hours.
    late = hour_clicks_chart([(datetime(2026, 12, 2, 6, tzinfo=UTC), 1, 0),
                              (datetime(2027, 1, 30, 6, tzinfo=UTC), 1, 0)], started)
    assert len(late.lines["people"]) == 14 * 24 and late.lines["people"][-1] == 1
