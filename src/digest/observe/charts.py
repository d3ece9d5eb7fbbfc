"""The numbers behind the charts on /ops and the editor pages: time series from the ledger.

Each series is counted in the database, grouped into buckets of whole minutes or days
(one grouped query per chart, on indexed columns), and returned as a `Chart`: the bucket
starts and one list of counts per line. The pages draw it with uPlot and print the same
numbers as a table, so a screen reader gets what the picture shows.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Integer, cast, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from digest.observe.health import delivery_counts
from digest.store import (
    ConsentEvent,
    Delivery,
    DeliveryStatus,
    Edition,
    EditionStatus,
    NewsletterSubscription,
)

SEND_RATE_MINUTES = 60
READER_DAYS = 30
REACH_EDITIONS = 20
# Consent events as the readers chart names them (the kinds readers.consent records).
READER_EVENTS = {"subscribe": "sign-ups", "confirm": "confirmations", "unsubscribe": "unsubscribes",
                 "bounce": "bounces", "complaint": "complaints"}


@dataclass
class Chart:
    """Buckets (their starts, UTC) and a line of counts per label, ready for a page."""

    title: str
    unit: str  # "minute", "day", "edition", "story" or "hour": what one x step is
    x: list[datetime]
    lines: dict[str, list[int]] | dict[str, list[float]] = field(default_factory=dict)
    x_labels: list[str] | None = None  # for categorical x (editions, stories, hours): their names
    bars: bool = False  # drawn as bars (counts per category), not lines

    @property
    def empty(self) -> bool:
        return not any(any(values) for values in self.lines.values())

    def rows(self) -> list[tuple[str, list[int] | list[float]]]:
        """The table a screen reader gets: one row a bucket, with something in it."""
        labels = self.x_labels or [self._label(at) for at in self.x]
        return [(label, [values[i] for values in self.lines.values()])
                for i, label in enumerate(labels) if any(values[i] for values in self.lines.values())]

    def _label(self, at: datetime) -> str:
        return f"{at:%H:%M}" if self.unit == "minute" else f"{at:%-d %b}"

    def as_json(self) -> dict[str, Any]:
        return {"title": self.title, "unit": self.unit, "x": [int(at.timestamp()) for at in self.x],
                "labels": self.x_labels, "lines": self.lines, "bars": self.bars}


def _epoch_bucket(session: Session, column: Any, seconds: int) -> ColumnElement[int]:
    """The column's time as a whole number of `seconds`-long buckets since 1970, on either
    database (PostgreSQL's extract, SQLite's strftime): grouping on it happens in SQL."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.floor(func.extract("epoch", column) / seconds), Integer)
    return cast(cast(func.strftime("%s", column), Integer) / seconds, Integer)


def _buckets(start: datetime, count: int, seconds: int) -> list[datetime]:
    first = int(start.timestamp()) // seconds
    return [datetime.fromtimestamp((first + i) * seconds, UTC) for i in range(count)]


def _fill(x: list[datetime], seconds: int, labels: list[str],
          counted: dict[tuple[int, str], int]) -> dict[str, list[int]]:
    first = int(x[0].timestamp()) // seconds
    lines = {label: [0] * len(x) for label in labels}
    for (bucket, label), count in counted.items():
        i = bucket - first
        if 0 <= i < len(x) and label in lines:
            lines[label][i] += count
    return lines


DELIVERY_LINES = {DeliveryStatus.SENT: "sent", DeliveryStatus.FAILED: "failed", DeliveryStatus.BOUNCED: "bounced"}


def _delivery_minutes(session: Session, edition_ids: list[int], start: datetime, end: datetime) -> Chart:
    minutes = max(1, int((end - start).total_seconds() // 60) + 1)
    x = _buckets(start, minutes, 60)
    counted: dict[tuple[int, str], int] = defaultdict(int)
    if edition_ids:
        bucket = _epoch_bucket(session, Delivery.attempted_at, 60)
        # attempted_at is when each row last went to the SMTP server: the sent time of a sent
        # message, the last try of a failed one, the send of one that bounced later.
        for b, status, count in session.execute(
                select(bucket, Delivery.status, func.count())
                .where(Delivery.edition_id.in_(edition_ids), Delivery.attempted_at >= x[0],
                       Delivery.status.in_(list(DELIVERY_LINES)))
                .group_by(bucket, Delivery.status)):
            counted[(int(b), DELIVERY_LINES[DeliveryStatus(status)])] += count
    return Chart("Messages per minute", "minute", x, _fill(x, 60, list(DELIVERY_LINES.values()), counted))


def send_rate(session: Session, edition_ids: list[int], now: datetime,
              minutes: int = SEND_RATE_MINUTES) -> Chart:
    """Messages per minute over the last hour (sent, failed, bounced) of these editions
    (the ones ops watch: what sent in the last hour is among them)."""
    return _delivery_minutes(session, edition_ids, now - timedelta(minutes=minutes - 1), now)


def edition_deliveries(session: Session, edition: Edition, now: datetime) -> Chart | None:
    """One edition's deliveries per minute from its start to its end (or now), at most a
    day of minutes; None before it starts."""
    if edition.started_at is None:
        return None
    end = edition.finished_at or now
    start = max(edition.started_at, end - timedelta(days=1))
    chart = _delivery_minutes(session, [edition.id], start, end)
    chart.title = "Deliveries per minute"
    return chart


def readers_by_day(session: Session, newsletter_id: int | None, now: datetime, days: int = READER_DAYS) -> Chart:
    """Per day over the last `days`: sign-ups, confirmations, unsubscribes, bounces and
    complaints of the readers of one newsletter (all readers when None)."""
    x = _buckets(now - timedelta(days=days - 1), days, 86400)
    bucket = _epoch_bucket(session, ConsentEvent.at, 86400)
    query = (select(bucket, ConsentEvent.kind, func.count())
             .where(ConsentEvent.at >= x[0], ConsentEvent.kind.in_(list(READER_EVENTS)))
             .group_by(bucket, ConsentEvent.kind))
    if newsletter_id is not None:
        query = query.join(NewsletterSubscription,
                           (NewsletterSubscription.subscriber_id == ConsentEvent.subscriber_id)
                           & (NewsletterSubscription.newsletter_id == newsletter_id))
    counted: dict[tuple[int, str], int] = defaultdict(int)
    for b, kind, count in session.execute(query):
        counted[(int(b), READER_EVENTS[kind])] += count
    return Chart("Readers per day", "day", x, _fill(x, 86400, list(READER_EVENTS.values()), counted))


def newsletter_reach(session: Session, newsletter_id: int, limit: int = REACH_EDITIONS) -> Chart:
    """The reach of a newsletter's last `limit` sent editions, oldest first: how many
    readers each was sent to, and how many failed or bounced."""
    editions = list(session.execute(
        select(Edition.id, Edition.subject, Edition.send_at)
        .where(Edition.newsletter_id == newsletter_id,
               Edition.status.in_([EditionStatus.SENT, EditionStatus.SENDING, EditionStatus.CANCELLED]))
        .order_by(Edition.send_at.desc(), Edition.id.desc()).limit(limit)))[::-1]
    ids = [e.id for e in editions]
    counts = delivery_counts(session, ids)  # sent editions from their tallies
    lines = {label: [counts[i][status.value] for i in ids] for status, label in DELIVERY_LINES.items()}
    return Chart("Readers reached per edition", "edition", [e.send_at for e in editions], lines,
                 x_labels=[f"{e.send_at:%-d %b} · {e.subject}" for e in editions])
