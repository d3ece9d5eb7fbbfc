"""The ops view of the send queue, and the actions that steer it.

Numbers come from the ledger (deliveries) and the broker (Redis), never from counters
kept on the side, so the dashboard, `digest status` and /metrics agree with the database.
Actions are conditional UPDATEs: idempotent, and safe when two people press at once.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from digest.planner import batch_ranges, mark_enqueued
from digest.store import Delivery, DeliveryStatus, Edition, EditionStatus, Newsletter, Subscriber, utcnow

RECENT_HOURS = 24
RATE_WINDOW_SECONDS = 60
ERROR_SAMPLE_ROWS = 5000
AUTO_PAUSE_PREFIX = "auto-paused"


@dataclass
class EditionHealth:
    id: int
    subject: str
    newsletter: str | None
    status: str
    status_reason: str | None
    send_at: str
    started_at: str | None
    finished_at: str | None
    planned: int
    sent: int
    failed: int
    bounced: int
    skipped: int
    pending: int
    rate_per_minute: int
    eta_seconds: int | None
    auto_paused: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def watched_editions(session: Session, now: datetime) -> list[Edition]:
    """Editions ops care about now: sending or paused, finished lately, or due soon."""
    recent = now - timedelta(hours=RECENT_HOURS)
    return list(session.scalars(
        select(Edition).where(or_(
            Edition.status.in_([EditionStatus.SENDING, EditionStatus.PAUSED]),
            Edition.finished_at >= recent,
            (Edition.status == EditionStatus.SCHEDULED) & (Edition.send_at <= now + timedelta(hours=RECENT_HOURS)),
        )).order_by(Edition.send_at.desc(), Edition.id.desc()).limit(50)))


def edition_health(session: Session, editions: list[Edition], now: datetime) -> list[EditionHealth]:
    ids = [e.id for e in editions]
    counts: dict[int, Counter[str]] = {i: Counter() for i in ids}
    for edition_id, status, count in session.execute(
            select(Delivery.edition_id, Delivery.status, func.count()).where(Delivery.edition_id.in_(ids))
            .group_by(Delivery.edition_id, Delivery.status)):
        counts[edition_id][DeliveryStatus(status).value] = count
    since = now - timedelta(seconds=RATE_WINDOW_SECONDS)
    rates = dict(session.execute(
        select(Delivery.edition_id, func.count()).where(
            Delivery.edition_id.in_(ids), Delivery.status == DeliveryStatus.SENT, Delivery.sent_at >= since)
        .group_by(Delivery.edition_id)).all())
    names = dict(session.execute(select(Newsletter.id, Newsletter.name)).all())
    result = []
    for edition in editions:
        c = counts[edition.id]
        pending = c["queued"]
        rate = int(rates.get(edition.id, 0))
        result.append(EditionHealth(
            id=edition.id, subject=edition.subject,
            newsletter=names.get(edition.newsletter_id) if edition.newsletter_id else None,
            status=edition.status.value, status_reason=edition.status_reason,
            send_at=edition.send_at.isoformat(), started_at=_iso(edition.started_at),
            finished_at=_iso(edition.finished_at), planned=sum(c.values()), sent=c["sent"],
            failed=c["failed"], bounced=c["bounced"], skipped=c["skipped"], pending=pending,
            rate_per_minute=rate,
            # An ETA only means something while sending (a sent edition is done: 0).
            eta_seconds=(0 if edition.status == EditionStatus.SENT
                         else None if edition.status != EditionStatus.SENDING
                         else int(pending * 60 / rate) if rate and pending else (0 if not pending else None)),
            auto_paused=bool(edition.status == EditionStatus.PAUSED and edition.status_reason
                             and edition.status_reason.startswith(AUTO_PAUSE_PREFIX)),
        ))
    return result


_CODE = re.compile(r"^(\d{3})\b")


def error_reason(error: str) -> str:
    """A short, groupable reason: the SMTP code and the text with numbers and ids blurred."""
    text_ = " ".join(error.split())
    text_ = re.sub(r"\b[0-9a-f]{8,}\b", "…", text_)
    text_ = re.sub(r"\d+(\.\d+)+", "#", text_[4:] if _CODE.match(text_) else text_)
    code = _CODE.match(" ".join(error.split()))
    return f"{code.group(1)} {text_[:60]}".strip() if code else text_[:64]


@dataclass
class ErrorGroup:
    reason: str
    domain: str
    edition_id: int
    count: int

    def label(self) -> str:
        return f"{self.reason} ({self.domain}): {self.count}"


def error_groups(session: Session, edition_ids: list[int], limit: int = 20) -> list[ErrorGroup]:
    """Recent delivery errors grouped by reason and recipient domain, most frequent first."""
    rows = session.execute(
        select(Delivery.edition_id, Delivery.last_error, Subscriber.email)
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(Delivery.edition_id.in_(edition_ids), Delivery.last_error.is_not(None),
               Delivery.status.in_([DeliveryStatus.FAILED, DeliveryStatus.BOUNCED, DeliveryStatus.QUEUED]))
        .order_by(Delivery.attempted_at.desc().nulls_last()).limit(ERROR_SAMPLE_ROWS))
    groups: Counter[tuple[str, str, int]] = Counter()
    for edition_id, error, email in rows:
        groups[(error_reason(error), email.rsplit("@", 1)[-1].lower(), edition_id)] += 1
    return [ErrorGroup(reason, domain, edition_id, count)
            for (reason, domain, edition_id), count in groups.most_common(limit)]


def oldest_waiting_seconds(session: Session, now: datetime) -> int | None:
    """How long the longest-waiting due work has been enqueued without being claimed."""
    oldest = session.scalar(
        select(func.min(Edition.enqueued_at)).where(
            Edition.status == EditionStatus.SENDING,
            select(Delivery.id).where(
                Delivery.edition_id == Edition.id, Delivery.status == DeliveryStatus.QUEUED,
                (Delivery.lease_until.is_(None)) | (Delivery.lease_until < now),
                (Delivery.next_attempt_at.is_(None)) | (Delivery.next_attempt_at <= now),
            ).exists()))
    return int((now - oldest).total_seconds()) if oldest else None


# ------------------------------------------------------------------ auto-pause


def check_auto_pause(session: Session, edition_id: int, window: int, ratio: float,
                     now: datetime | None = None) -> str | None:
    """Pause a sending edition whose last `window` attempts failed at `ratio` or more.
    Returns the reason when this call paused it."""
    rows = session.execute(
        select(Delivery.last_error).where(Delivery.edition_id == edition_id, Delivery.attempted_at.is_not(None))
        .order_by(Delivery.attempted_at.desc()).limit(window)).scalars().all()
    if len(rows) < window:
        return None
    failures = [error for error in rows if error]
    if len(failures) / len(rows) < ratio:
        return None
    common, count = Counter(error_reason(e) for e in failures).most_common(1)[0]
    reason = (f"{AUTO_PAUSE_PREFIX}: {len(failures)} of the last {len(rows)} attempts failed "
              f"(most often {common!r}, {count}×)")
    result = session.execute(
        update(Edition).where(Edition.id == edition_id, Edition.status == EditionStatus.SENDING)
        .values(status=EditionStatus.PAUSED, status_reason=reason[:500])
        .execution_options(synchronize_session=False))
    return reason if result.rowcount == 1 else None


# ------------------------------------------------------------------ actions


def retry_failed(factory: sessionmaker[Session], edition_id: int, batch_size: int,
                 enqueue: Callable[[int, int, int], None]) -> int:
    """Re-queue only the failed deliveries of an edition (never the sent or bounced) and send
    them. Returns how many this call re-queued: 0 on a second press. A paused edition keeps
    them queued until it is resumed."""
    now = utcnow()
    with factory.begin() as session:
        requeued = session.execute(
            update(Delivery).where(Delivery.edition_id == edition_id, Delivery.status == DeliveryStatus.FAILED)
            .values(status=DeliveryStatus.QUEUED, attempts=0, next_attempt_at=None, lease_until=None)
            .execution_options(synchronize_session=False)).rowcount or 0
        sending = False
        if requeued:
            changed, sending = _reopen(session, edition_id, now, "retrying failed deliveries")
    if sending:
        _enqueue_all(factory, edition_id, batch_size, enqueue)
    return requeued


def send_missing(factory: sessionmaker[Session], edition_id: int, batch_size: int,
                 enqueue: Callable[[int, int, int], None]) -> int:
    """For an edition cut short (cancelled or stopped): send to the deliveries that never
    reached a final state, and to those skipped only because it was cancelled. Returns how
    many deliveries this call set going: 0 on a second press."""
    now = utcnow()
    with factory.begin() as session:
        missing = session.scalar(select(func.count()).select_from(Delivery).where(
            Delivery.edition_id == edition_id,
            (Delivery.status == DeliveryStatus.QUEUED)
            | ((Delivery.status == DeliveryStatus.SKIPPED) & (Delivery.last_error == "edition cancelled"))))
        if not missing:
            return 0  # nothing cut short: the edition stays as it is
        session.execute(
            update(Delivery).where(Delivery.edition_id == edition_id, Delivery.status == DeliveryStatus.SKIPPED,
                                   Delivery.last_error == "edition cancelled")
            .values(status=DeliveryStatus.QUEUED, last_error=None, lease_until=None)
            .execution_options(synchronize_session=False))
        changed, _ = _reopen(session, edition_id, now, "sending to the missing", also_paused=True)
        if not changed:
            return 0  # already sending: a second press does nothing more
        missing = session.scalar(select(func.count()).select_from(Delivery).where(
            Delivery.edition_id == edition_id, Delivery.status == DeliveryStatus.QUEUED)) or 0
    _enqueue_all(factory, edition_id, batch_size, enqueue)
    return missing


def _reopen(session: Session, edition_id: int, now: datetime, reason: str,
            also_paused: bool = False) -> tuple[bool, bool]:
    """Back to sending from a finished state: (this call changed it, it is sending now)."""
    states = [EditionStatus.SENT, EditionStatus.CANCELLED] + ([EditionStatus.PAUSED] if also_paused else [])
    changed = session.execute(
        update(Edition).where(Edition.id == edition_id, Edition.status.in_(states))
        .values(status=EditionStatus.SENDING, status_reason=reason, finished_at=None)
        .execution_options(synchronize_session=False)).rowcount == 1
    if changed:
        mark_enqueued(session, edition_id, now)
        return True, True
    status = session.scalar(select(Edition.status).where(Edition.id == edition_id))
    return False, status == EditionStatus.SENDING


def _enqueue_all(factory: sessionmaker[Session], edition_id: int, batch_size: int,
                 enqueue: Callable[[int, int, int], None]) -> None:
    with factory() as session:
        ranges = batch_ranges(session, edition_id, batch_size)
    for first_id, last_id in ranges:
        enqueue(edition_id, first_id, last_id)


def queue_depth(redis_client: Any, queue: str) -> int | None:
    try:
        return int(redis_client.llen(queue))
    except Exception:  # noqa: BLE001 - the broker being down is itself what ops must see
        return None


def editions_by_status(session: Session) -> dict[str, int]:
    return {EditionStatus(status).value: count for status, count in session.execute(
        select(Edition.status, func.count()).group_by(Edition.status))}


def pending_deliveries(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Delivery).where(
        Delivery.status == DeliveryStatus.QUEUED)) or 0

