"""Releasing and planning editions: scheduled → sending exactly once, one delivery row per
eligible reader, written set-based, then cut into id ranges for send_batch tasks.

Every function here takes a Session and returns plain values; the Celery tasks decide
when to commit and what to enqueue (only after the commit).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.orm import Session

from digest.schedules import ScheduleError, local_instant
from digest.selector import select_for_edition
from digest.store import (
    Delivery,
    DeliveryStatus,
    Edition,
    EditionStatus,
    EditionStory,
    Notice,
    NoticeStatus,
    ts,
)
from digest.variants import SPARE_STORIES

BATCH_SIZE = 500
WEEKLY_INTERVAL_DAYS = 7

_INSERT_DELIVERIES = """
INSERT INTO deliveries (edition_id, subscriber_id, status, attempts)
SELECT :edition_id, s.id, 'queued', 0
FROM subscribers s
WHERE s.status = 'active'
  AND (s.paused_until IS NULL OR s.paused_until <= :now)
  AND (s.frequency = 'every' OR NOT EXISTS (
        SELECT 1 FROM deliveries w
        WHERE w.subscriber_id = s.id AND w.status = 'sent' AND w.sent_at > :week_ago))
  {topic_clause} {newsletter_clause}
ON CONFLICT (edition_id, subscriber_id) DO NOTHING
"""
_NEWSLETTER_CLAUSE = """
  AND EXISTS (SELECT 1 FROM newsletter_subscriptions ns
              WHERE ns.subscriber_id = s.id AND ns.newsletter_id = :newsletter_id)
"""
# A reader who chose no topics takes every edition; one who did takes editions sharing one.
_TOPIC_CLAUSE = """
  AND (NOT EXISTS (SELECT 1 FROM subscriber_topics t WHERE t.subscriber_id = s.id)
       OR EXISTS (SELECT 1 FROM subscriber_topics t
                  WHERE t.subscriber_id = s.id AND t.topic IN :topics))
"""


def due_edition_ids(session: Session, now: datetime) -> list[int]:
    return list(
        session.scalars(
            select(Edition.id)
            .where(Edition.status == EditionStatus.SCHEDULED, Edition.send_at <= now)
            .order_by(Edition.send_at, Edition.id)
        )
    )


def claim_edition(session: Session, edition_id: int, now: datetime) -> bool:
    """Flip one edition from scheduled to sending. A conditional UPDATE, so of any number
    of beat or worker processes racing here exactly one sees True."""
    result = session.execute(
        update(Edition)
        .where(Edition.id == edition_id, Edition.status == EditionStatus.SCHEDULED,
               Edition.send_at <= now)
        .values(status=EditionStatus.SENDING, started_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def freeze_stories(session: Session, edition: Edition) -> list[int]:
    """Choose the edition's stories now, plus spares for readers who already had some
    (digest.variants), and keep that list."""
    story_ids = select_for_edition(session, edition, spare=SPARE_STORIES)
    session.add_all(
        EditionStory(edition_id=edition.id, story_id=story_id, position=position)
        for position, story_id in enumerate(story_ids)
    )
    return story_ids


def plan_deliveries(session: Session, edition: Edition, now: datetime) -> int:
    """One queued delivery per eligible reader, in one INSERT … SELECT; returns rows added.

    Eligible: active, not paused, subscribed to the edition's newsletter (if it has one),
    sharing a topic with the edition (or having chosen none), and, for weekly readers,
    sent nothing in the last 7 days.
    """
    topic_clause = _TOPIC_CLAUSE if edition.topics else ""
    newsletter_clause = _NEWSLETTER_CLAUSE if edition.newsletter_id is not None else ""
    statement = text(_INSERT_DELIVERIES.format(topic_clause=topic_clause, newsletter_clause=newsletter_clause))
    statement = statement.bindparams(ts("now"), ts("week_ago"))
    params: dict[str, object] = {"edition_id": edition.id, "now": now,
                                 "week_ago": now - timedelta(days=WEEKLY_INTERVAL_DAYS)}
    if edition.newsletter_id is not None:
        params["newsletter_id"] = edition.newsletter_id
    if edition.topics:
        statement = statement.bindparams(bindparam("topics", expanding=True))
        params["topics"] = list(edition.topics)
    return session.execute(statement, params).rowcount or 0


def release_edition(session: Session, edition_id: int, now: datetime) -> bool:
    """Claim, freeze stories and plan deliveries in the caller's transaction.

    False when another process released it first. An edition with no qualifying story is
    cancelled with a reason rather than sent empty.
    """
    if not claim_edition(session, edition_id, now):
        return False
    edition = session.get_one(Edition, edition_id, populate_existing=True)
    minimum = max(1, edition.newsletter.min_stories if edition.newsletter else 1)
    chosen = freeze_stories(session, edition)
    if len(chosen) < minimum:
        edition.status = EditionStatus.SKIPPED
        edition.status_reason = (
            f"too thin: {len(chosen)} qualifying stor{'y' if len(chosen) == 1 else 'ies'}, "
            f"the minimum is {minimum} (check topics, window and featured stories)")
        edition.finished_at = now
        return True
    edition.planned_count = plan_deliveries(session, edition, now)
    if edition.local_time:
        hold_for_local_time(session, edition)
    edition.enqueued_at = now
    return True


_READER_ZONES = """
SELECT DISTINCT s.timezone FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id
WHERE d.edition_id = :e
"""
_HOLD_ZONE = """
UPDATE deliveries SET next_attempt_at = :at
WHERE edition_id = :e AND subscriber_id IN (SELECT id FROM subscribers WHERE {zone_test})
"""


def refresh_delivery_statistics(session: Session) -> None:
    """ANALYZE the columns the send path filters deliveries on, right after planning.

    Until autovacuum gets to it (a minute at best), PostgreSQL believes an edition planned
    a moment ago has one row: it then reads every queued delivery of the edition through
    (edition_id, status) and filters the batch's id range out of them, for each claim and
    each result write, which is quadratic in readers (0.2 s a batch at a million). With
    statistics it takes the partial index by id range. Samples ~30,000 rows, whatever the
    table's size; does not block readers or writers. SQLite plans without statistics."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("ANALYZE deliveries (edition_id, status, id, lease_until, next_attempt_at)"))


def hold_for_local_time(session: Session, edition: Edition) -> None:
    """Each reader's delivery waits until the edition's wall time in their zone: one
    set-based UPDATE per distinct zone, never one per reader."""
    assert edition.local_time and edition.local_date and edition.local_zone
    for (zone,) in session.execute(text(_READER_ZONES), {"e": edition.id}).all():
        try:
            at = local_instant(edition.local_date, edition.local_time, zone or edition.local_zone)
        except ScheduleError:  # a zone that no longer exists: the edition's own zone
            at = local_instant(edition.local_date, edition.local_time, edition.local_zone)
        zone_test = "timezone IS NULL" if zone is None else "timezone = :zone"
        session.execute(text(_HOLD_ZONE.format(zone_test=zone_test)).bindparams(ts("at")),
                        {"e": edition.id, "at": at, "zone": zone})


def batch_ranges(session: Session, edition_id: int, batch_size: int = BATCH_SIZE) -> list[tuple[int, int]]:
    """Inclusive delivery-id ranges of at most batch_size queued rows each.

    Reads one id in batch_size from the database (a window function), so a million
    readers cost two thousand small rows here, never the full list in memory.
    """
    starts = list(
        session.execute(
            text(
                "SELECT id FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY id) AS rn "
                "FROM deliveries WHERE edition_id = :e AND status = 'queued') q "
                "WHERE (rn - 1) % :size = 0 ORDER BY id"
            ),
            {"e": edition_id, "size": batch_size},
        ).scalars()
    )
    if not starts:
        return []
    last = session.execute(
        text("SELECT MAX(id) FROM deliveries WHERE edition_id = :e AND status = 'queued'"),
        {"e": edition_id},
    ).scalar_one()
    ends = [start - 1 for start in starts[1:]] + [last]
    return list(zip(starts, ends, strict=True))


def finish_if_complete(session: Session, edition_id: int, now: datetime) -> bool:
    """sending → sent once no delivery is left queued. Conditional, so safe to repeat."""
    pending = (
        select(Delivery.id)
        .where(Delivery.edition_id == edition_id, Delivery.status == DeliveryStatus.QUEUED)
        .exists()
    )
    result = session.execute(
        update(Edition)
        .where(Edition.id == edition_id, Edition.status == EditionStatus.SENDING, ~pending)
        .values(status=EditionStatus.SENT, finished_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def editions_needing_sweep(session: Session, now: datetime, lease_seconds: int) -> list[int]:
    """Sending editions with queued work nobody holds and nobody enqueued lately.

    That is work lost with a dead worker or a restarted Redis (which keeps no queue on
    disk here): the database re-derives it, the sweeper re-enqueues it.
    """
    quiet_since = now - timedelta(seconds=lease_seconds)

    def free_work(*extra):  # type: ignore[no-untyped-def]
        return (
            select(Delivery.id)
            .where(
                Delivery.edition_id == Edition.id,
                Delivery.status == DeliveryStatus.QUEUED,
                (Delivery.lease_until.is_(None)) | (Delivery.lease_until < now),
                (Delivery.next_attempt_at.is_(None)) | (Delivery.next_attempt_at <= now),
                *extra,
            )
            .exists()
        )

    # Work that became due since the last enqueue (a retry time or a reader's local hour
    # arriving) goes out at once; anything else free after a lease is lost work.
    newly_due = free_work(Delivery.next_attempt_at > Edition.enqueued_at)
    return list(
        session.scalars(
            select(Edition.id).where(
                Edition.status == EditionStatus.SENDING,
                ((Edition.enqueued_at.is_(None)) | (Edition.enqueued_at < quiet_since) | newly_due),
                free_work(),
            )
        )
    )


def mark_enqueued(session: Session, edition_id: int, now: datetime) -> None:
    session.execute(
        update(Edition).where(Edition.id == edition_id).values(enqueued_at=now)
        .execution_options(synchronize_session=False)
    )


def sending_edition_ids(session: Session) -> list[int]:
    return list(session.scalars(select(Edition.id).where(Edition.status == EditionStatus.SENDING)))



def stale_notice_ids(session: Session, now: datetime, lease_seconds: int) -> list[int]:
    """Notices nobody holds that have waited longer than a lease: their task was lost."""
    cutoff = now - timedelta(seconds=lease_seconds)
    return list(
        session.scalars(
            select(Notice.id).where(
                Notice.status == NoticeStatus.QUEUED,
                Notice.created_at < cutoff,
                (Notice.lease_until.is_(None)) | (Notice.lease_until < now),
            ).limit(1000)
        )
    )
