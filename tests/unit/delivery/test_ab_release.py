"""Releasing an edition with a subject test: the share gets a subject each, half and half,
at random; the rest is held (no subject) where no claim or batch can take it; an audience
too small for two halves goes whole with the first subject and the test says why."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.delivery import ledger, release_edition
from digest.editions import ab, create_edition
from digest.readers import add_subscriber
from digest.store import AbTest, AuditEntry, Delivery, utcnow
from digest.stories import ingest_source
from tests.support.samples import SAMPLE_WINDOW_HOURS, TOPICS


def an_ab_edition(session: Session, readers: int, share: int) -> int:
    ingest_source(session, "sample:sample_feed.json")
    for number in range(readers):
        add_subscriber(session, f"r{number}@example.org", confirmed=True, allowed_topics=TOPICS)
    edition = create_edition(session, subject="First", send_at=utcnow(), topics=None, allowed_topics=TOPICS,
                             max_stories=5, window_hours=SAMPLE_WINDOW_HOURS)
    ab.set_ab(session, edition.id, ab.AbPlan("Second", share, 30))
    session.commit()
    return edition.id


def variants(session: Session, edition_id: int) -> Counter[int | None]:
    return Counter(session.scalars(select(Delivery.variant).where(Delivery.edition_id == edition_id)))


def test_the_share_is_split_and_the_rest_held_where_nothing_claims_it(session: Session) -> None:
    edition_id = an_ab_edition(session, 25, 40)
    now = utcnow()
    assert release_edition(session, edition_id, now, ab_minute_seconds=60)
    session.commit()
    assert variants(session, edition_id) == {None: 15, 1: 5, 2: 5}
    test = session.get_one(AbTest, edition_id)
    assert test.test_size == 10 and test.decide_at == now + timedelta(minutes=30) and test.decided_at is None
    # Only the test's rows are work: in the batch ranges and for a claim.
    [(first, last)] = ledger.batch_ranges(session, edition_id, 500)
    claimed = ledger.claim(session, edition_id, 0, 10**9, now, now + timedelta(seconds=30))
    assert len(claimed) == 10 and {row.variant for row in claimed} == {1, 2}
    assert ledger.release_held(session, edition_id, 2) == 15
    assert ledger.release_held(session, edition_id, 2) == 0  # a second call finds none
    assert variants(session, edition_id) == {2: 20, 1: 5}


def test_an_audience_too_small_for_a_test_gets_the_first_subject_and_says_why(session: Session) -> None:
    edition_id = an_ab_edition(session, 3, 50)
    assert release_edition(session, edition_id, utcnow())
    session.commit()
    assert variants(session, edition_id) == {1: 3}
    test = session.get_one(AbTest, edition_id)
    assert (test.winner_variant, test.reason_code) == (1, ab.AUDIENCE_TOO_SMALL) and test.decided_at is not None
    assert "50 % of 3 readers" in (test.reason or "")
    [row] = session.scalars(select(AuditEntry).where(AuditEntry.action == "edition.ab-decide"))
    assert row.actor == "system" and row.detail == {"winner_variant": 1, "reason_code": "audience_too_small"}
