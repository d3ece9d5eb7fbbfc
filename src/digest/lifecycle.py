"""Edition lifecycle: draft → scheduled → sending → sent, with cancel, pause and resume.

Every transition is one conditional UPDATE (`WHERE status IN (…)`), so pressing a button
twice, or two people pressing it at once, changes the edition once. Resume re-enqueues
only what is still queued, so it can never re-send: deliveries already sent are final.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from digest.planner import batch_ranges, finish_if_complete, mark_enqueued
from digest.store.models import Delivery, DeliveryStatus, Edition, EditionStatus, utcnow

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
        # What was not sent will not be: the queue rows become final, with the reason.
        session.execute(
            update(Delivery).where(Delivery.edition_id == edition_id, Delivery.status == DeliveryStatus.QUEUED)
            .values(status=DeliveryStatus.SKIPPED, last_error="edition cancelled", lease_until=None)
            .execution_options(synchronize_session=False)
        )
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
