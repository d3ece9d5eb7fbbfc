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
from digest.editions import ab, freeze_stories, lifecycle
from digest.readers import is_suppressed, subscribed_ids
from digest.staff import audit
from digest.store import Delivery, DeliveryStatus, Edition, EditionStatus, Frequency, Subscriber, SubscriberStatus

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


def left_out(session: Session, edition: Edition, subscriber: Subscriber, at: datetime) -> str | None:
    """Why `subscriber` would not get `edition` released at `at`, in words an editor reads in
    a preview; None when they would. The answer comes from the planning rule itself
    (ledger.count_audience for this one reader), the words from what it checks."""
    if is_suppressed(session, subscriber.email_key):
        return "their address is on the suppression list (erased, bounced or complained)"
    if ledger.count_audience(session, edition, at, subscriber.id):
        return None
    if subscriber.status != SubscriberStatus.ACTIVE:
        return {SubscriberStatus.PENDING: "they have not confirmed their address yet",
                SubscriberStatus.UNSUBSCRIBED: "they unsubscribed",
                SubscriberStatus.BOUNCED: "mail to their address bounced",
                SubscriberStatus.COMPLAINED: "they marked a digest as spam"}[subscriber.status]
    if subscriber.paused_until is not None and subscriber.paused_until > at:
        return f"they paused their digests until {subscriber.paused_until:%d %B %Y}"
    if edition.newsletter is not None and edition.newsletter_id not in subscribed_ids(session, subscriber.id):
        return f"they do not take {edition.newsletter.name}"
    if edition.topics and subscriber.topics and not set(edition.topics) & set(subscriber.topics):
        return f"they chose other topics ({', '.join(subscriber.topics)})"
    if subscriber.frequency == Frequency.WEEKLY:
        return "they take one digest a week and had one in the last 7 days"
    return "they are not in this edition's audience"


def release_edition(session: Session, edition_id: int, now: datetime, *,
                    ab_minute_seconds: float = 60.0) -> bool:
    """Claim, freeze stories and plan deliveries in the caller's transaction.

    False when another process released it first. An edition with too few qualifying
    stories is skipped with a reason rather than sent half-empty. An edition with a subject
    test plans every row held, then gives the test's share a subject each and the decision
    a time (`ab_minute_seconds` in a minute of its wait); an audience too small for a test
    goes whole with the first subject, and the test says why.
    """
    if not lifecycle.claim(session, edition_id, now):
        return False
    edition = session.get_one(Edition, edition_id, populate_existing=True)
    minimum = max(1, edition.newsletter.min_stories if edition.newsletter else 1)
    chosen = freeze_stories(session, edition)
    if len(chosen) < minimum:
        lifecycle.skip_thin(session, edition_id, now, len(chosen), minimum)
        return True
    test = ab.get_ab(session, edition_id)
    edition.planned_count = ledger.plan(session, edition, now, held=test is not None)
    if not edition.planned_count:
        lifecycle.skip_empty(session, edition_id, now, no_readers_reason(edition))
        return True
    if test is not None:
        size = ab.split_size(edition.planned_count, test.share)
        if size < 2:
            ledger.release_held(session, edition_id, ab.FIRST)
            decision = ab.too_small(edition.planned_count, test.share)
            ab.record_decision(session, edition_id, decision, (ab.Arm(0, 0, 0), ab.Arm(0, 0, 0)), now)
            audit(session, None, "edition.ab-decide", f"edition:{edition_id}",
                  {"winner_variant": decision.winner, "reason_code": decision.code}, via="system")
        else:
            ledger.split_for_test(session, edition_id, size)
            ab.start(session, edition_id, size, ab.decide_at_for(test, now, ab_minute_seconds))
    if edition.local_time:
        ledger.hold_for_local_time(session, edition)
    edition.enqueued_at = now
    return True


def editions_needing_sweep(session: Session, now: datetime, lease_seconds: int) -> list[int]:
    """Sending editions with queued work nobody holds that no enqueued task will pick up.

    That is work lost with a dead worker or a restarted Redis (which keeps no queue on
    disk here): the database re-derives it, the sweeper re-enqueues it. Three signs:
    - a lease that ran out since the last enqueue: its holder died (a live one renews, and
      every result clears the lease), so its rows go out again at once (a dead holder's
      lease ends before the enqueue that re-sends its rows, so one death, one enqueue);
    - work that became due since the last enqueue (a retry time, a reader's local hour);
    - work never claimed for a lease since the last enqueue while no batch of the edition
      is running: its tasks were lost with Redis' queue. Not while a batch runs: a big
      edition's tasks wait in Redis behind it for minutes, and enqueueing them again every
      lease would only pile up copies (each harmless: the claim finds nothing).
    """
    quiet_since = now - timedelta(seconds=lease_seconds)

    def work(*extra):  # type: ignore[no-untyped-def]
        # Rows a subject test holds are nobody's work until its decision gives them a subject.
        return select(Delivery.id).where(Delivery.edition_id == Edition.id, Delivery.status == DeliveryStatus.QUEUED,
                                         Delivery.variant.is_not(None), *extra).exists()

    def free_work(*extra):  # type: ignore[no-untyped-def]
        return work(
            (Delivery.lease_until.is_(None)) | (Delivery.lease_until < now),
            (Delivery.next_attempt_at.is_(None)) | (Delivery.next_attempt_at <= now),
            *extra,
        )

    # The first two signs in one EXISTS: with no index on lease_until (claims stay heap-only
    # updates), finding none reads the edition's queued rows, ~0.15 s at a million, so once.
    news = free_work((Delivery.next_attempt_at > Edition.enqueued_at) | (Delivery.lease_until > Edition.enqueued_at))
    running = work(Delivery.lease_until >= now)  # found among the first rows while batches run
    lost_tasks = (Edition.enqueued_at < quiet_since) & ~running
    return list(
        session.scalars(
            select(Edition.id).where(
                Edition.status == EditionStatus.SENDING,
                ((Edition.enqueued_at.is_(None)) | lost_tasks | news),
                free_work(),
            )
        )
    )


def sending_edition_ids(session: Session) -> list[int]:
    return list(session.scalars(select(Edition.id).where(Edition.status == EditionStatus.SENDING)))
