"""The ops view of the send queue: per edition planned, sent, failed, bounced, skipped,
pending, rate and ETA; errors grouped by reason and domain; how long due work has waited.

Numbers come from the ledger (deliveries) and the broker (Redis), never from counters
kept on the side, so the dashboard, `digest status` and /metrics agree with the database.
The actions that steer the queue are in digest.actions.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from digest.delivery import error_reason, ledger
from digest.editions import is_auto_paused
from digest.store import Delivery, DeliveryStatus, Edition, EditionStatus, Newsletter, Subscriber, utcnow

RECENT_HOURS = 24
RATE_WINDOW_SECONDS = 60
# The ETA's rate: messages finished over the last two minutes, per second the edition has
# actually been sending within them (a send 20 s old is not diluted by 100 s it did not run).
ETA_WINDOW_SECONDS = 120
ETA_MIN_SECONDS = 5
ERROR_SAMPLE_ROWS = 5000


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
    audience: int = 0

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


def _delivery_counts(session: Session, ids: list[int]) -> dict[int, Counter[str]]:
    """Per edition, its deliveries by status: one grouped query."""
    counts: dict[int, Counter[str]] = {i: Counter() for i in ids}
    for edition_id, status, count in session.execute(
            select(Delivery.edition_id, Delivery.status, func.count()).where(Delivery.edition_id.in_(ids))
            .group_by(Delivery.edition_id, Delivery.status)):
        counts[edition_id][DeliveryStatus(status).value] = count
    return counts


@dataclass
class EditionCounts:
    """An edition and its ledger in numbers (the API's `counts`, the editor pages)."""

    id: int
    subject: str
    status: str
    send_at: str
    started_at: str | None
    finished_at: str | None
    status_reason: str | None
    planned: int = 0
    sent: int = 0
    failed: int = 0
    bounced: int = 0
    skipped: int = 0
    pending: int = 0
    audience: int = 0  # who it goes to: readers now eligible before release, its deliveries after

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


NOT_YET_PLANNED = (EditionStatus.DRAFT, EditionStatus.SCHEDULED)


def edition_audiences(session: Session, editions: list[Edition], now: datetime,
                      planned: dict[int, int] | None = None) -> dict[int, int]:
    """How many readers each edition goes to. Before release: the readers the planning rule
    picks now (or at its send time, if later: a reader's pause may end before it), one count
    per distinct newsletter, topics and hour. After release: its delivery rows."""
    counts = planned if planned is not None else {
        i: sum(c.values()) for i, c in _delivery_counts(session, [e.id for e in editions]).items()}
    audiences: dict[int, int] = {}
    seen: dict[tuple[object, ...], int] = {}
    for edition in editions:
        if edition.status not in NOT_YET_PLANNED:
            audiences[edition.id] = counts.get(edition.id, 0)
            continue
        at = max(now, edition.send_at)
        key = (edition.newsletter_id, tuple(edition.topics or ()), at.replace(minute=0, second=0, microsecond=0))
        if key not in seen:
            seen[key] = ledger.count_audience(session, edition, at)
        audiences[edition.id] = seen[key]
    return audiences


def edition_counts(session: Session, edition_ids: list[int] | None = None) -> list[EditionCounts]:
    """Per edition (all of them, latest first, when no ids are given): planned, sent,
    failed, bounced, skipped, pending (still queued)."""
    query = select(Edition).order_by(Edition.send_at.desc(), Edition.id.desc())
    if edition_ids is not None:
        query = query.where(Edition.id.in_(edition_ids))
    editions = list(session.scalars(query))
    counts = _delivery_counts(session, [e.id for e in editions])
    audiences = edition_audiences(session, editions, utcnow(), {i: sum(c.values()) for i, c in counts.items()})
    return [EditionCounts(
        id=e.id, subject=e.subject, status=e.status.value, send_at=e.send_at.isoformat(),
        started_at=_iso(e.started_at), finished_at=_iso(e.finished_at), status_reason=e.status_reason,
        planned=sum(counts[e.id].values()), sent=counts[e.id]["sent"], failed=counts[e.id]["failed"],
        bounced=counts[e.id]["bounced"], skipped=counts[e.id]["skipped"], pending=counts[e.id]["queued"],
        audience=audiences[e.id],
    ) for e in editions]


def edition_health(session: Session, editions: list[Edition], now: datetime) -> list[EditionHealth]:
    ids = [e.id for e in editions]
    counts = _delivery_counts(session, ids)
    audiences = edition_audiences(session, editions, now, {i: sum(c.values()) for i, c in counts.items()})
    since = now - timedelta(seconds=RATE_WINDOW_SECONDS)
    rates = dict(session.execute(
        select(Delivery.edition_id, func.count()).where(
            Delivery.edition_id.in_(ids), Delivery.status == DeliveryStatus.SENT, Delivery.sent_at >= since)
        .group_by(Delivery.edition_id)).all())
    eta_since = now - timedelta(seconds=ETA_WINDOW_SECONDS)
    finished_recently = dict(session.execute(
        select(Delivery.edition_id, func.count()).where(
            Delivery.edition_id.in_(ids), Delivery.status != DeliveryStatus.QUEUED, Delivery.attempted_at >= eta_since)
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
            eta_seconds=eta_seconds(edition, pending, int(finished_recently.get(edition.id, 0)), now),
            auto_paused=is_auto_paused(edition),
            audience=audiences[edition.id],
        ))
    return result


def eta_seconds(edition: Edition, pending: int, finished_recently: int, now: datetime) -> int | None:
    """Seconds until the last pending message goes, at the rate of the last two minutes:
    the messages finished in that window over the seconds the edition sent within it. Only
    while sending (a sent edition is done: 0); None until there is a rate to go by."""
    if edition.status == EditionStatus.SENT or (edition.status == EditionStatus.SENDING and not pending):
        return 0
    if edition.status != EditionStatus.SENDING or not finished_recently:
        return None
    began = max(now - timedelta(seconds=ETA_WINDOW_SECONDS), edition.started_at or now)
    seconds = (now - began).total_seconds()
    if seconds < ETA_MIN_SECONDS:
        return None
    return int(pending * seconds / finished_recently)


# Where an edition sits on /ops: what is moving (or stopped mid-way) first, then what is
# about to, then what is done.
OPS_ORDER = {"sending": 0, "paused": 0, "scheduled": 1, "draft": 1}


def ops_order(health: list[EditionHealth]) -> list[EditionHealth]:
    """Sending and paused editions first, then scheduled soonest first, then the finished,
    latest first."""
    def key(h: EditionHealth) -> tuple[int, float]:
        group = OPS_ORDER.get(h.status, 2)
        at = datetime.fromisoformat(h.send_at).timestamp()
        return group, (at if group == 1 else -at)
    return sorted(health, key=key)


@dataclass
class ErrorGroup:
    """Deliveries with an error, one reason and recipient domain in one edition: each
    delivery counted once, by where it ended (failed and bounced are the /ops columns of the
    same names; retrying are still queued after an error)."""

    reason: str
    domain: str
    edition_id: int
    count: int
    failed: int = 0
    bounced: int = 0
    retrying: int = 0

    def label(self) -> str:
        return f"{self.reason} ({self.domain}): {self.count}"


def error_groups(session: Session, edition_ids: list[int], limit: int = 20) -> list[ErrorGroup]:
    """Recent delivery errors grouped by reason and recipient domain, most frequent first."""
    rows = session.execute(
        select(Delivery.edition_id, Delivery.last_error, Subscriber.email, Delivery.status)
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(Delivery.edition_id.in_(edition_ids), Delivery.last_error.is_not(None),
               Delivery.status.in_([DeliveryStatus.FAILED, DeliveryStatus.BOUNCED, DeliveryStatus.QUEUED]))
        .order_by(Delivery.attempted_at.desc().nulls_last()).limit(ERROR_SAMPLE_ROWS))
    groups: Counter[tuple[str, str, int]] = Counter()
    ends: dict[tuple[str, str, int], Counter[str]] = {}
    for edition_id, error, email, status in rows:
        key = (error_reason(error), email.rsplit("@", 1)[-1].lower(), edition_id)
        groups[key] += 1
        ends.setdefault(key, Counter())[DeliveryStatus(status).value] += 1
    return [ErrorGroup(reason, domain, edition_id, count, failed=ends[key]["failed"], bounced=ends[key]["bounced"],
                       retrying=ends[key]["queued"])
            for key, count in groups.most_common(limit) for reason, domain, edition_id in [key]]


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



@dataclass
class QueueSnapshot:
    """The send queue at one moment, as `digest status`, /ops and /ops/status.json show it."""

    now: datetime
    editions: list[EditionHealth]
    errors: list[ErrorGroup]
    oldest_waiting_seconds: int | None
    queue: str
    queue_depth: int | None

    @property
    def paused(self) -> list[EditionHealth]:
        return [h for h in self.editions if h.status == "paused"]

    def as_json(self) -> dict[str, Any]:
        return {
            "editions": [h.as_dict() for h in self.editions],
            "errors": [{"reason": g.reason, "domain": g.domain, "edition_id": g.edition_id, "count": g.count,
                        "failed": g.failed, "bounced": g.bounced, "retrying": g.retrying} for g in self.errors],
            "queue": self.queue, "queue_depth": self.queue_depth,
            "oldest_waiting_seconds": self.oldest_waiting_seconds,
        }


def queue_snapshot(session: Session, editions: list[Edition], now: datetime, redis_client: Any, queue: str,
                   error_limit: int = 20) -> QueueSnapshot:
    """Health of `editions` (at most their first 50 for the error sample), the errors most
    common among them, the queue's depth in the broker and its oldest waiting work."""
    return QueueSnapshot(
        now=now, editions=ops_order(edition_health(session, editions, now)),
        errors=error_groups(session, [e.id for e in editions][:50], limit=error_limit),
        oldest_waiting_seconds=oldest_waiting_seconds(session, now), queue=queue,
        queue_depth=queue_depth(redis_client, queue))
