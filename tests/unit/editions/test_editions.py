"""Editions: send times in a reader's zone, clean subjects, counts, and a faithful preview."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import lxml.html
import pytest
from sqlalchemy.orm import Session

from digest.delivery.planner import release_edition
from digest.editions import (
    EditionError,
    clean_subject,
    create_edition,
    get_edition,
    parse_send_at,
    preview_edition,
)
from digest.observe import edition_counts
from digest.readers import InvalidReader, add_subscriber
from digest.store.models import Delivery, DeliveryStatus, Edition, EditionStatus, Story, utcnow
from digest.stories import ingest_source
from tests.support.queries import count_rows
from tests.support.samples import SAMPLE_WINDOW_HOURS, TOPICS

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def new_edition(session: Session, **options: object) -> Edition:
    values: dict[str, object] = {"subject": "Morning", "send_at": NOW, "topics": None,
                                 "allowed_topics": TOPICS, "max_stories": 5, "window_hours": 48}
    return create_edition(session, **{**values, **options})  # type: ignore[arg-type]


# ------------------------------------------------------------------ send times


@pytest.mark.parametrize(
    ("at", "tz", "expected"),
    [
        ("2026-12-01T07:00", "Europe/Kyiv", datetime(2026, 12, 1, 5, 0, tzinfo=UTC)),
        ("2026-07-01T07:00", "Europe/Kyiv", datetime(2026, 7, 1, 4, 0, tzinfo=UTC)),
        ("2026-12-01T07:00", "America/New_York", datetime(2026, 12, 1, 12, 0, tzinfo=UTC)),
        ("2026-12-01T07:00", None, datetime(2026, 12, 1, 7, 0, tzinfo=UTC)),
        ("2026-12-01T07:00+02:00", None, datetime(2026, 12, 1, 5, 0, tzinfo=UTC)),
        ("2026-12-01T07:00Z", None, datetime(2026, 12, 1, 7, 0, tzinfo=UTC)),
        (" 2026-12-01 07:00 ", "UTC", datetime(2026, 12, 1, 7, 0, tzinfo=UTC)),
        (None, "Europe/Kyiv", NOW),
    ],
)
def test_parse_send_at(at: str | None, tz: str | None, expected: datetime) -> None:
    when = parse_send_at(at, tz, NOW)

    assert when == expected
    assert when.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("at", "tz", "message"),
    [
        ("tomorrow", None, "not an ISO 8601 date-time"),
        ("2026-13-01T07:00", None, "not an ISO 8601 date-time"),
        ("2026-12-01T07:00", "Mars/Olympus_Mons", "unknown time zone"),
        ("2026-12-01T07:00", "../../etc/passwd", "unknown time zone"),
        ("2026-12-01T07:00+02:00", "Europe/Kyiv", "not both"),
    ],
)
def test_bad_send_at_is_an_edition_error(at: str, tz: str | None, message: str) -> None:
    with pytest.raises(EditionError, match=message):
        parse_send_at(at, tz, NOW)


# ------------------------------------------------------------------ subjects and options


def test_subject_whitespace_is_collapsed() -> None:
    assert clean_subject("  The   featured\tstories ") == "The featured stories"


@pytest.mark.parametrize(
    ("subject", "message"),
    [("Hello\r\nBcc: x@example.com", "single line"), ("Hello\nthere", "single line"), ("  ", "empty"),
     ("x" * 301, "longer than 300")],
)
def test_bad_subject_is_refused(session: Session, subject: str, message: str) -> None:
    with pytest.raises(EditionError, match=message):
        new_edition(session, subject=subject)
    assert count_rows(session, Edition) == 0


@pytest.mark.parametrize(
    ("options", "message"),
    [({"max_stories": 0}, "max stories"), ({"max_stories": 51}, "max stories"),
     ({"window_hours": 0}, "at least one hour"), ({"topics": "politics,astrology"}, "unknown topic")],
)
def test_bad_options_are_refused(session: Session, options: dict[str, object], message: str) -> None:
    with pytest.raises(EditionError, match=message):
        new_edition(session, **options)
    assert count_rows(session, Edition) == 0


def test_create_schedules_or_drafts(session: Session) -> None:
    scheduled = new_edition(session, topics="World, politics")
    draft = new_edition(session, draft=True)

    assert scheduled.status == EditionStatus.SCHEDULED
    assert scheduled.topics == ["politics", "world"]
    assert draft.status == EditionStatus.DRAFT
    assert draft.topics is None


def test_unknown_edition_is_an_edition_error(session: Session) -> None:
    with pytest.raises(EditionError, match="no edition with id 404"):
        get_edition(session, 404)


# ------------------------------------------------------------------ counts


def test_counts_per_status(session: Session) -> None:
    edition = new_edition(session)
    other = new_edition(session, subject="Other")
    statuses = [DeliveryStatus.SENT] * 3 + [DeliveryStatus.FAILED, DeliveryStatus.BOUNCED,
                                            DeliveryStatus.SKIPPED] + [DeliveryStatus.QUEUED] * 2
    for index, status in enumerate(statuses):
        reader = add_subscriber(session, f"r{index}@example.com", allowed_topics=TOPICS, confirmed=True)
        session.add(Delivery(edition_id=edition.id, subscriber_id=reader.id, status=status))
    session.flush()

    counts = {c.id: c for c in edition_counts(session)}

    mine = counts[edition.id].as_dict()
    assert {k: mine[k] for k in ("planned", "sent", "failed", "bounced", "skipped", "pending")} == {
        "planned": 8, "sent": 3, "failed": 1, "bounced": 1, "skipped": 1, "pending": 2}
    assert counts[other.id].planned == 0
    assert [c.id for c in edition_counts(session, [other.id])] == [other.id]


# ------------------------------------------------------------------ preview


@pytest.fixture
def stocked(session: Session) -> Session:
    ingest_source(session, "sample:sample_feed.json")
    ingest_source(session, "sample:sample_article.txt")
    return session


def test_preview_before_planning_uses_the_selector(stocked: Session) -> None:
    edition = new_edition(stocked, send_at=utcnow(), window_hours=SAMPLE_WINDOW_HOURS, max_stories=3)

    subject, body_html, body_text = preview_edition(stocked, edition.id)

    assert subject == "Morning"
    headlines = [a.text_content() for a in lxml.html.document_fromstring(body_html).cssselect("h2.headline a")]
    assert len(headlines) == 3
    featured = {s.title for s in stocked.query(Story).filter(Story.featured.is_(True))}
    assert set(headlines) <= featured
    assert "Hi Sample Reader," in body_text
    assert "/unsubscribe/preview-token" in body_text


def test_preview_as_a_subscriber_uses_their_name_but_never_their_token(stocked: Session) -> None:
    reader = add_subscriber(stocked, "Olena@Example.org", name="Olena", allowed_topics=TOPICS)
    edition = new_edition(stocked, send_at=utcnow(), window_hours=SAMPLE_WINDOW_HOURS)

    _, body_html, body_text = preview_edition(stocked, edition.id, "olena@example.ORG")

    assert "Hi Olena," in body_text
    # staff holding the reader's live link could act as the reader: the links lead to the
    # page that says this was a preview
    assert reader.token not in body_html and reader.token not in body_text
    assert "/unsubscribe/preview-token" in body_html and "/preferences/preview-token" in body_text


def test_preview_for_an_unknown_address_answers_as_for_a_reader_without_name_or_history(stocked: Session) -> None:
    # An error here would tell staff who is subscribed: the unknown address gets what a
    # new reader there would get, exactly as a known reader with no name and no history.
    add_subscriber(stocked, "known@example.com", allowed_topics=TOPICS)
    edition = new_edition(stocked, send_at=utcnow(), window_hours=SAMPLE_WINDOW_HOURS)

    known = preview_edition(stocked, edition.id, "known@example.com")
    unknown = preview_edition(stocked, edition.id, "Nobody@Example.com")

    assert unknown == tuple(part.replace("known@example.com", "Nobody@example.com") for part in known)
    assert "preview-token" in unknown[1]
    with pytest.raises(InvalidReader):
        preview_edition(stocked, edition.id, "not an address")


def test_preview_after_release_shows_the_frozen_stories(stocked: Session) -> None:
    send_at = utcnow() - timedelta(minutes=1)
    edition = new_edition(stocked, send_at=send_at, window_hours=SAMPLE_WINDOW_HOURS, max_stories=2)
    assert release_edition(stocked, edition.id, utcnow())
    stocked.flush()
    stocked.expire_all()  # as a later command would see it
    # The first max_stories of the frozen list (the rest are spares for per-reader dedupe).
    frozen = [row.story.title for row in stocked.get_one(Edition, edition.id).story_rows][:2]
    # An editor pins a story after the freeze; the selector would lead with it now.
    stocked.add(Story(url="https://news.example.com/late", title="Late Pin", published_at=send_at - timedelta(hours=1),
                      featured=True, pinned=True, topics=[]))
    stocked.flush()
    stocked.expire_all()

    _, body_html, _ = preview_edition(stocked, edition.id)

    headlines = [a.text_content() for a in lxml.html.document_fromstring(body_html).cssselect("h2.headline a")]
    assert headlines == frozen
    assert len(frozen) == 2 and "Late Pin" not in frozen
