"""Releasing editions: scheduled → sending exactly once, the story list frozen and one
delivery row per eligible reader written set-based, in the caller's transaction; and the
sweeper's view of work that nobody holds.

Every function here takes a Session and returns plain values; digest.delivery.pipeline
decides when to commit and what to enqueue (only after the commit).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.delivery import ledger
from digest.editions import freeze_stories, lifecycle
from digest.store import Delivery, DeliveryStatus, Edition, EditionStatus

BATCH_SIZE = 500


def due_edition_ids(session: Session, now: datetime) -> list[int]:
    return list(
        session.scalars(
            select(Edition.id)
            .where(Edition.status == EditionStatus.SCHEDULED, Edition.send_at <= now)
            .order_by(Edition.send_at, Edition.id)
        )
    )


def no_readers_reason(edition: Edition) -> str:
    """Why an edition reached nobody, in words an editor can act on."""
    if edition.newsletter is not None:
        return f"no readers on {edition.newsletter.name}: no active reader takes it" + (
            " with one of its topics" if edition.topics else "")
    return "no readers: no active reader " + ("shares one of its topics" if edition.topics else "is subscribed")


def release_edition(session: Session, edition_id: int, now: datetime) -> bool:
    """Claim, freeze stories and plan deliveries in the caller's transaction.

    False when another process released it first. An edition with too few qualifying
    stories is skipped with a reason rather than sent half-empty.
    """
    if not lifecycle.claim(session, edition_id, now):
        return False
    edition = session.get_one(Edition, edition_id, populate_existing=True)
    minimum = max(1, edition.newsletter.min_stories if edition.newsletter else 1)
    chosen = freeze_stories(session, edition)
    if len(chosen) < minimum:
        lifecycle.skip_thin(session, edition_id, now, len(chosen), minimum)
        return True
    edition.planned_count = ledger.plan(session, edition, now)
    if not edition.planned_count:
        lifecycle.skip_empty(session, edition_id, now, no_readers_reason(edition))
        return True
    if edition.local_time:
        ledger.hold_for_local_time(session, edition)
    edition.enqueued_at = now
    return True


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


def sending_edition_ids(session: Session) -> list[int]:
    return list(session.scalars(select(Edition.id).where(Edition.status == EditionStatus.SENDING)))
