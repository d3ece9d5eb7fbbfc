"""Readers as staff look them up: search and filter the list, read one reader's whole
history (consent, deliveries, notices, bounces and complaints), export the list as CSV.

Reads only: every write to readers stays in `lifecycle`, `roster`, `subscriptions` and
`suppression`. Filters run in SQL (the list can hold millions), a page at a time.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlalchemy.orm import Session

from digest.errors import Invalid, NotFound
from digest.readers.summaries import MonthSummary, live_rows, month_summaries
from digest.store import (
    ConsentEvent,
    Delivery,
    DeliveryStatus,
    Edition,
    ErrorCode,
    Newsletter,
    NewsletterSubscription,
    Notice,
    Subscriber,
    SubscriberStatus,
    SubscriberTopic,
)

READERS_PAGE_MAX = 500
EXPORT_CHUNK_ROWS = 1000
EXPORT_COLUMNS = ("email", "name", "status", "topics", "newsletters", "created_at")
# The moving-out export: the list's columns and each reader's consent, which `import_file`
# reads back (created_at is the opt-in time; opt_in_ip the first subscribe event's).
MOVING_COLUMNS = (*EXPORT_COLUMNS, "confirmed_at", "unsubscribed_at", "opt_in_ip", "consent_source")
EXPORT_FORMATS = ("csv", "json")
QUERY_MAX_CHARS = 320  # the longest address
# A spreadsheet reads a cell starting with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ReaderNotFound(NotFound):
    default_code = "reader_not_found"


@dataclass(frozen=True)
class ReaderFilter:
    """`q` matches part of the address or the name, case-insensitively; the rest exactly."""

    q: str | None = None
    status: str | None = None
    newsletter_id: int | None = None
    topic: str | None = None
    limit: int = 50
    offset: int = 0


def _conditions(f: ReaderFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if f.q and f.q.strip():
        needle = f.q.strip().lower()[:QUERY_MAX_CHARS]
        conditions.append(or_(Subscriber.email_key.contains(needle, autoescape=True),
                              func.lower(Subscriber.name).contains(needle, autoescape=True)))
    if f.status:
        try:
            conditions.append(Subscriber.status == SubscriberStatus(f.status))
        except ValueError:
            raise Invalid("status must be one of " + ", ".join(s.value for s in SubscriberStatus)) from None
    if f.newsletter_id is not None:
        conditions.append(exists().where(NewsletterSubscription.subscriber_id == Subscriber.id,
                                         NewsletterSubscription.newsletter_id == f.newsletter_id))
    if f.topic:
        conditions.append(exists().where(SubscriberTopic.subscriber_id == Subscriber.id,
                                         SubscriberTopic.topic == f.topic.strip().lower()))
    return conditions


def search_readers(session: Session, f: ReaderFilter) -> tuple[list[Subscriber], int]:
    """Readers matching the filter, newest first, one page of them, and how many match in all."""
    conditions = _conditions(f)
    total = session.scalar(select(func.count()).select_from(Subscriber).where(*conditions)) or 0
    rows = session.scalars(select(Subscriber).where(*conditions).order_by(Subscriber.id.desc())
                           .limit(max(1, min(f.limit, READERS_PAGE_MAX))).offset(max(0, f.offset)))
    return list(rows), total


def newsletters_of(session: Session, subscriber_ids: Iterable[int]) -> dict[int, list[int]]:
    """Each reader's newsletter ids, for a page of readers in one query."""
    ids = list(subscriber_ids)
    found: dict[int, list[int]] = {i: [] for i in ids}
    if ids:
        for subscriber_id, newsletter_id in session.execute(
                select(NewsletterSubscription.subscriber_id, NewsletterSubscription.newsletter_id)
                .where(NewsletterSubscription.subscriber_id.in_(ids))
                .order_by(NewsletterSubscription.newsletter_id)):
            found[subscriber_id].append(newsletter_id)
    return found


def get_reader(session: Session, subscriber_id: int) -> Subscriber:
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None:
        raise ReaderNotFound(f"no reader with id {subscriber_id}")
    return subscriber


# ------------------------------------------------------------------ one reader's history


@dataclass(frozen=True)
class DeliveryLine:
    """One edition to this reader: what the ledger says happened."""

    delivery_id: int
    edition_id: int
    subject: str
    status: str
    at: datetime | None  # sent, or last tried; None while only planned
    error_code: str | None
    error: str | None


@dataclass(frozen=True)
class FeedbackLine:
    """A bounce or complaint about a message to this reader."""

    at: datetime | None
    kind: str  # hard bounce, soft bounce, complaint
    about: str  # the edition or notice it was about
    detail: str | None


@dataclass(frozen=True)
class ReaderHistory:
    subscriber: Subscriber
    newsletters: list[Newsletter]  # the ones they take
    consent: list[ConsentEvent]  # oldest first
    deliveries: list[DeliveryLine]  # newest first; a page of them when a limit is given
    deliveries_total: int
    notices: list[Notice]  # newest first
    feedback: list[FeedbackLine]  # newest first
    # Months older than the retention, from their summaries (newest first): the rows are gone.
    compacted: list[MonthSummary] = field(default_factory=list)


def reader_history(session: Session, subscriber_id: int, *, deliveries_limit: int | None = None,
                   deliveries_offset: int = 0) -> ReaderHistory:
    """Everything the ledgers hold about one reader. ReaderNotFound if there is none."""
    subscriber = get_reader(session, subscriber_id)
    newsletters = list(session.scalars(
        select(Newsletter).join(NewsletterSubscription, NewsletterSubscription.newsletter_id == Newsletter.id)
        .where(NewsletterSubscription.subscriber_id == subscriber_id).order_by(Newsletter.name)))
    consent = list(session.scalars(select(ConsentEvent).where(ConsentEvent.subscriber_id == subscriber_id)
                                   .order_by(ConsentEvent.at, ConsentEvent.id)))
    live = live_rows(subscriber_id, session)
    deliveries_total = session.scalar(select(func.count()).select_from(Delivery).where(*live)) or 0
    query = (select(Delivery, Edition.subject).join(Edition, Edition.id == Delivery.edition_id)
             .where(*live).order_by(Delivery.id.desc()))
    if deliveries_limit is not None:
        query = query.limit(max(1, deliveries_limit)).offset(max(0, deliveries_offset))
    deliveries = [_delivery_line(d, subject) for d, subject in session.execute(query)]
    notices = list(session.scalars(select(Notice).where(Notice.subscriber_id == subscriber_id)
                                   .order_by(Notice.id.desc())))
    return ReaderHistory(subscriber, newsletters, consent, deliveries, deliveries_total, notices,
                         _feedback(session, subscriber_id, consent, notices), month_summaries(session, subscriber_id))


def _delivery_line(delivery: Delivery, subject: str) -> DeliveryLine:
    return DeliveryLine(delivery.id, delivery.edition_id, subject, delivery.status.value,
                        delivery.sent_at or delivery.attempted_at,
                        delivery.error_code.value if delivery.error_code else None, delivery.last_error)


BOUNCE_KINDS = {ErrorCode.HARD_BOUNCE: "hard bounce", ErrorCode.SOFT_BOUNCE: "soft bounce"}


def _feedback(session: Session, subscriber_id: int, consent: list[ConsentEvent],
              notices: list[Notice]) -> list[FeedbackLine]:
    """Bounces from the ledger rows they marked (a hard bounce: the delivery `bounced`; a soft
    one: its code), complaints from the consent ledger. Times are the message's."""
    lines = [FeedbackLine(d.sent_at or d.attempted_at,
                          "hard bounce" if d.status == DeliveryStatus.BOUNCED else "soft bounce",
                          f"edition {d.edition_id}: {subject}", d.last_error)
             for d, subject in session.execute(
                 select(Delivery, Edition.subject).join(Edition, Edition.id == Delivery.edition_id)
                 .where(Delivery.subscriber_id == subscriber_id,
                        or_(Delivery.status == DeliveryStatus.BOUNCED,
                            and_(Delivery.status == DeliveryStatus.SENT,
                                 Delivery.error_code == ErrorCode.SOFT_BOUNCE))))]
    lines += [FeedbackLine(n.sent_at or n.created_at, BOUNCE_KINDS[n.error_code], f"{n.kind} notice",
                           n.last_error) for n in notices if n.error_code in BOUNCE_KINDS]
    lines += [FeedbackLine(c.at, "complaint", f"through {c.channel}",
                           str((c.detail or {}).get("feedback_type") or "") or None)
              for c in consent if c.kind == "complaint"]
    return sorted(lines, key=lambda line: line.at or EPOCH, reverse=True)


# ------------------------------------------------------------------ export


def count_readers(session: Session, f: ReaderFilter) -> int:
    return session.scalar(select(func.count()).select_from(Subscriber).where(*_conditions(f))) or 0


def export_csv(session: Session, f: ReaderFilter) -> Iterator[str]:
    """Every reader the filter matches (limit and offset ignored) as CSV text, a header and
    then EXPORT_CHUNK_ROWS readers at a time, oldest first; topics and newsletters (by
    slug) are joined with ";", which `import_csv` reads back."""
    conditions = _conditions(f)
    slugs: dict[int, str] = {i: slug for i, slug in session.execute(select(Newsletter.id, Newsletter.slug))}
    yield _csv_line(EXPORT_COLUMNS)
    after = 0
    while True:
        chunk = list(session.scalars(select(Subscriber).where(*conditions, Subscriber.id > after)
                                     .order_by(Subscriber.id).limit(EXPORT_CHUNK_ROWS)))
        if not chunk:
            return
        newsletters = newsletters_of(session, [s.id for s in chunk])
        yield "".join(_csv_line((
            s.email, _no_formula(s.name or ""), s.status.value, ";".join(s.topics),
            ";".join(slugs[n] for n in newsletters[s.id] if n in slugs), s.created_at.isoformat()))
            for s in chunk)
        after = chunk[-1].id
        session.expunge_all()  # keep memory flat however long the list


def export_lines(session: Session, f: ReaderFilter, fmt: str = "csv") -> Iterator[str]:
    """Every reader the filter matches, oldest first, with MOVING_COLUMNS: as CSV (topics
    and newsletters joined with ";", names defused for spreadsheets) or as a JSON array, one
    reader a line (lists as lists, names as written). EXPORT_CHUNK_ROWS readers at a time."""
    if fmt not in EXPORT_FORMATS:
        raise Invalid("format must be csv or json")
    if fmt == "csv":
        yield _csv_line(MOVING_COLUMNS)
    else:
        yield "["
    sep = "\n"
    for chunk in _moving_chunks(session, f):
        if fmt == "csv":
            yield "".join(_csv_line(
                _no_formula(v) if k == "name" else ";".join(v) if isinstance(v, list) else "" if v is None else v
                for k, v in reader.items()) for reader in chunk)
            continue
        parts = []
        for reader in chunk:
            parts.append(sep + json.dumps(reader, ensure_ascii=False))
            sep = ",\n"
        yield "".join(parts)
    if fmt == "json":
        yield "]\n" if sep == "\n" else "\n]\n"


def _moving_chunks(session: Session, f: ReaderFilter) -> Iterator[list[dict[str, Any]]]:
    conditions = _conditions(f)
    slugs: dict[int, str] = {i: slug for i, slug in session.execute(select(Newsletter.id, Newsletter.slug))}
    after = 0
    while True:
        chunk = list(session.scalars(select(Subscriber).where(*conditions, Subscriber.id > after)
                                     .order_by(Subscriber.id).limit(EXPORT_CHUNK_ROWS)))
        if not chunk:
            return
        ids = [s.id for s in chunk]
        newsletters = newsletters_of(session, ids)
        ips: dict[int, str | None] = {}
        for subscriber_id, ip in session.execute(
                select(ConsentEvent.subscriber_id, ConsentEvent.ip)
                .where(ConsentEvent.subscriber_id.in_(ids), ConsentEvent.kind == "subscribe")
                .order_by(ConsentEvent.id)):
            ips.setdefault(subscriber_id, ip)
        yield [{
            "email": s.email, "name": s.name or "", "status": s.status.value, "topics": s.topics,
            "newsletters": [slugs[n] for n in newsletters[s.id] if n in slugs],
            "created_at": s.created_at.isoformat(), "confirmed_at": _iso(s.confirmed_at),
            "unsubscribed_at": _iso(s.unsubscribed_at), "opt_in_ip": ips.get(s.id),
            "consent_source": s.consent_source,
        } for s in chunk]
        after = chunk[-1].id
        session.expunge_all()  # keep memory flat however long the list


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _csv_line(values: Iterable[Any]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(values)
    return out.getvalue()


def _no_formula(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_STARTS) else value
