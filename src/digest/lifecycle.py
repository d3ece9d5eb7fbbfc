"""Edition lifecycle: draft → scheduled → sending → sent, with cancel, pause and resume.

Every transition is one conditional UPDATE (`WHERE status IN (…)`), so pressing a button
twice, or two people pressing it at once, changes the edition once. Resume re-enqueues
only what is still queued, so it can never re-send: deliveries already sent are final.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from digest.planner import batch_ranges, finish_if_complete, mark_enqueued
from digest.store import Delivery, DeliveryStatus, Edition, EditionStatus, utcnow

ALLOWED_FROM = {
    "schedule": (EditionStatus.DRAFT,),
    "unschedule": (EditionStatus.SCHEDULED,),
    "cancel": (EditionStatus.DRAFT, EditionStatus.SCHEDULED, EditionStatus.PAUSED, EditionStatus.SENDING),
    "pause": (EditionStatus.SENDING,),
    "resume": (EditionStatus.PAUSED,),
}
TARGET = {
    "schedule": EditionStatus.SCHEDULED,
    "unschedule": EditionStatus.DRAFT,
    "cancel": EditionStatus.CANCELLED,
    "pause": EditionStatus.PAUSED,
    "resume": EditionStatus.SENDING,
}


class LifecycleError(ValueError):
    pass


def transition(session: Session, edition_id: int, action: str, reason: str | None = None,
               now: datetime | None = None) -> bool:
    """Apply `action`; True if this call changed the edition, False if it was already done
    (or another caller did it first). Raises LifecycleError when it cannot apply at all."""
    if action not in TARGET:
        raise LifecycleError(f"unknown action {action!r}")
    now = now or utcnow()
    edition = session.get(Edition, edition_id)
    if edition is None:
        raise LifecycleError(f"no edition with id {edition_id}")
    values: dict[str, object] = {"status": TARGET[action], "status_reason": reason}
    if action == "cancel":
        values["finished_at"] = now
    if action == "schedule" and edition.send_at < now:
        # A draft whose time passed while it was being curated goes out now, rather than
        # being skipped as "missed" by the release step.
        values["send_at"] = now
    result = session.execute(
        update(Edition).where(Edition.id == edition_id, Edition.status.in_(ALLOWED_FROM[action]))
        .values(**values).execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        session.refresh(edition)
        if edition.status == TARGET[action]:
            return False  # already so: pressing twice does nothing more
        raise LifecycleError(f"cannot {action} an edition that is {edition.status.value}")
    if action == "cancel":
        skip_cancelled(session, edition_id, now)
    session.expire(edition)
    return True


def resume_and_enqueue(factory: sessionmaker[Session], edition_id: int, batch_size: int,
                       enqueue: Callable[[int, int, int], None], reason: str | None = None) -> bool:
    """paused → sending, then batches for the deliveries still queued (only those)."""
    now = utcnow()
    with factory.begin() as session:
        changed = transition(session, edition_id, "resume", reason, now)
        if changed:
            mark_enqueued(session, edition_id, now)
    if changed:
        with factory() as session:
            ranges = batch_ranges(session, edition_id, batch_size)
        for first_id, last_id in ranges:
            enqueue(edition_id, first_id, last_id)
        if not ranges:
            with factory.begin() as session:
                finish_if_complete(session, edition_id, now)
    return changed


def skip_cancelled(session: Session, edition_id: int | None, now: datetime) -> int:
    """A cancelled edition's queued deliveries become final (skipped, with the reason), except
    rows a live worker holds: that batch records them itself, as sent if they went out, so
    the ledger never calls a delivered message skipped. The sweeper finishes the job for
    rows whose worker died (edition_id None: every cancelled edition)."""
    cancelled = select(Edition.id).where(Edition.status == EditionStatus.CANCELLED)
    target = Delivery.edition_id == edition_id if edition_id is not None else Delivery.edition_id.in_(cancelled)
    result = session.execute(
        update(Delivery).where(target, Delivery.status == DeliveryStatus.QUEUED,
                               (Delivery.lease_until.is_(None)) | (Delivery.lease_until < now))
        .values(status=DeliveryStatus.SKIPPED, last_error="edition cancelled", lease_until=None)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0
