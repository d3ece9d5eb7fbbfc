"""Retention: delivery rows older than DIGEST_DELIVERY_RETENTION_DAYS become summaries, then go.

A month of deliveries (planned_month: the month its edition was planned in, shared by all of
an edition's rows) is the unit. Once every edition planned in it finished more than the
retention ago and none is still moving (sending, paused, or a queued row), the month is
compacted, in one transaction:

- each of its editions gets its tally (digest.editions.tallies) if it has none yet: the
  archive, the editor pages, /ops and /metrics read a finished edition from it;
- each reader who had a row in it gets one reader_delivery_summaries row for the month: counts
  by status and every edition with its status, which the reader's history and data export
  show in place of the rows;
- delivery_compactions records the month (its primary key makes a second or concurrent run
  find the month done and write nothing).

Then its rows are removed: on PostgreSQL the month's partition is dropped (a catalogue
change, whatever the number of rows); on SQLite (and for stray rows in PostgreSQL's default
partition) deleted in batches of RETENTION_BATCH_ROWS, each its own short transaction, so
the send path is never blocked for long. The same run creates the partitions of this month
and the next MONTHS_AHEAD.

What goes with the rows: per-message detail (Message-ID, error text, the stories each copy
carried). A bounce or complaint naming a compacted message finds no row and is answered
`unknown-message` (counted, logged, no change): see docs/capacity.md for why 90 days make
that rare. beat runs this hourly (digest.compact_deliveries); `digest deliveries compact` runs
the same function.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Date, bindparam, delete, func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from digest.delivery import ledger
from digest.editions import tallies
from digest.store import (
    DeliveryCompaction,
    DeliveryStatus,
    Edition,
    EditionStatus,
    EditionTally,
    ReaderDeliverySummary,
    UTCDateTime,
    month_of,
    partitions,
)

RETENTION_BATCH_ROWS = 5_000
MONTHS_AHEAD = 2
# Dropping a partition waits for an ACCESS EXCLUSIVE lock on deliveries: never queue the
# send path behind it for long; the next run tries again.
DROP_LOCK_TIMEOUT_MS = 5_000
MOVING = (EditionStatus.SENDING, EditionStatus.PAUSED)
# Editions that may own delivery rows (a draft or a scheduled one has none yet).
RELEASED = (EditionStatus.SENDING, EditionStatus.PAUSED, EditionStatus.SENT, EditionStatus.CANCELLED,
            EditionStatus.SKIPPED)

log = logging.getLogger(__name__)

# One reader's month: counts by status and [edition id, status] pairs by edition id.
_STATUS_SUMS = ", ".join(f"sum(CASE WHEN status = '{s.value}' THEN 1 ELSE 0 END)" for s in (
    DeliveryStatus.SENT, DeliveryStatus.BOUNCED, DeliveryStatus.FAILED, DeliveryStatus.SKIPPED))
_SUMMARISE = {
    "postgresql": "json_agg(json_build_array(edition_id, status) ORDER BY edition_id)",
    "sqlite": "json_group_array(json_array(edition_id, status))",  # rows come ordered: see below
}


def _summarise_sql(dialect: str) -> Any:
    source = ("SELECT subscriber_id, edition_id, status FROM deliveries "
              "WHERE planned_month = :month AND edition_id IN :editions")
    if dialect == "sqlite":  # json_group_array keeps the order rows arrive in
        source += " ORDER BY subscriber_id, edition_id"
    return text(
        "INSERT INTO reader_delivery_summaries (subscriber_id, month, sent, bounced, failed, skipped, editions) "
        f"SELECT subscriber_id, :month, {_STATUS_SUMS}, {_SUMMARISE[dialect]} "
        f"FROM ({source}) d GROUP BY subscriber_id"
    ).bindparams(bindparam("month", type_=Date()), bindparam("editions", expanding=True))


@dataclass
class CompactionReport:
    """What one run did; `held` names the months old enough but kept, and why."""

    cutoff: datetime
    partitions_created: list[date] = field(default_factory=list)
    compacted: list[date] = field(default_factory=list)  # summaries written by this run
    removed: list[date] = field(default_factory=list)  # rows gone by this run
    partitions_dropped: list[date] = field(default_factory=list)
    rows_deleted: int = 0  # by batched DELETE
    delete_batches: int = 0
    summarise_seconds: float = 0.0  # tallies and reader summaries
    remove_seconds: float = 0.0  # partitions dropped and batches deleted
    held: dict[date, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "cutoff": self.cutoff.isoformat(),
            "partitions_created": [m.isoformat() for m in self.partitions_created],
            "compacted": [m.isoformat() for m in self.compacted],
            "removed": [m.isoformat() for m in self.removed],
            "partitions_dropped": [m.isoformat() for m in self.partitions_dropped],
            "rows_deleted": self.rows_deleted, "delete_batches": self.delete_batches,
            "summarise_seconds": round(self.summarise_seconds, 3), "remove_seconds": round(self.remove_seconds, 3),
            "held": {m.isoformat(): why for m, why in self.held.items()},
        }


@dataclass(frozen=True)
class _Month:
    month: date
    edition_ids: list[int]
    moving: list[int]  # editions of the month still sending or paused, or with queued rows
    last_finished: datetime | None


def _months(session: Session, before: date) -> list[_Month]:
    """The months before `before` whose editions may own rows, with those editions."""
    rows = session.execute(
        select(Edition.id, Edition.status, Edition.started_at, Edition.send_at, Edition.created_at,
               Edition.finished_at)
        .where(Edition.status.in_(RELEASED))).all()
    by_month: dict[date, list[Any]] = {}
    for row in rows:
        # The month planning stamped on the rows: the release's (started_at); the migration
        # filled older rows the same way.
        month = month_of(row.started_at or row.send_at or row.created_at)
        if month < before:
            by_month.setdefault(month, []).append(row)
    done = set(session.scalars(select(DeliveryCompaction.month).where(DeliveryCompaction.removed_at.is_not(None))))
    months = []
    for month in sorted(set(by_month) - done):
        editions = by_month[month]
        ids = [e.id for e in editions]
        queued = set(session.scalars(text(
            "SELECT DISTINCT edition_id FROM deliveries WHERE status = 'queued' AND edition_id IN :ids"
        ).bindparams(bindparam("ids", expanding=True)), {"ids": ids}))
        moving = sorted({e.id for e in editions if e.status in MOVING} | queued)
        finished = [e.finished_at for e in editions if e.finished_at is not None]
        months.append(_Month(month, ids, moving, max(finished) if finished else None))
    return months


def compact_deliveries(factory: sessionmaker[Session], now: datetime, retention_days: int, *,
                       batch_rows: int = RETENTION_BATCH_ROWS) -> CompactionReport:
    """Create the partitions ahead, compact every month old enough, remove compacted rows.
    Safe to run twice and concurrently: a month is summarised once (delivery_compactions'
    key), partition DDL is serialised by an advisory lock, deletes are idempotent."""
    cutoff = now - timedelta(days=retention_days)
    report = CompactionReport(cutoff)
    ahead = [month_of(now)]
    for _ in range(MONTHS_AHEAD):
        ahead.append(partitions.next_month(ahead[-1]))
    with factory.begin() as session:
        report.partitions_created = partitions.ensure_month_partitions(session.connection(), ahead)
        # A month can go once its last day is older than the retention (then each of its
        # rows is); its editions must also have finished before the cutoff.
        months = _months(session, month_of(cutoff))
    for month in months:
        if partitions.next_month(month.month) > cutoff.date():
            continue
        if month.moving:
            report.held[month.month] = f"editions still sending: {', '.join(map(str, month.moving))}"
            continue
        if month.last_finished is not None and month.last_finished > cutoff:
            report.held[month.month] = f"an edition finished {month.last_finished:%Y-%m-%d}, within the retention"
            continue
        started = time.perf_counter()
        if _compact_month(factory, month, now):
            report.compacted.append(month.month)
        summarised = time.perf_counter()
        _remove_month(factory, month, now, batch_rows, report)
        report.summarise_seconds += summarised - started
        report.remove_seconds += time.perf_counter() - summarised
    if report.compacted or report.removed or report.held:
        log.info("deliveries compacted: %s", report.as_json(), extra=report.as_json())
    return report


def _compact_month(factory: sessionmaker[Session], month: _Month, now: datetime) -> bool:
    """Tallies and reader summaries for the month, once: False if it was compacted already."""
    with factory.begin() as session:
        dialect = session.get_bind().dialect.name
        claimed = session.execute(
            text("INSERT INTO delivery_compactions (month, editions, rows, compacted_at) "
                 "VALUES (:month, :editions, 0, :now) ON CONFLICT (month) DO NOTHING")
            .bindparams(bindparam("month", type_=Date()), bindparam("now", type_=UTCDateTime())),
            {"month": month.month, "editions": len(month.edition_ids), "now": now}).rowcount
        if not claimed:
            return False
        tallied = set(session.scalars(select(EditionTally.edition_id)
                                      .where(EditionTally.edition_id.in_(month.edition_ids))))
        for edition_id in sorted(set(month.edition_ids) - tallied):
            tallies.write(session, edition_id, now)  # a cancelled or skipped edition's counts too
        session.execute(_summarise_sql(dialect), {"month": month.month, "editions": month.edition_ids})
        rows = session.scalar(select(func.coalesce(func.sum(
            EditionTally.sent + EditionTally.failed + EditionTally.bounced + EditionTally.skipped + EditionTally.queued
        ), 0)).where(EditionTally.edition_id.in_(month.edition_ids)))
        session.execute(update(DeliveryCompaction).where(DeliveryCompaction.month == month.month)
                        .values(rows=rows or 0))
    return True


def _remove_month(factory: sessionmaker[Session], month: _Month, now: datetime, batch_rows: int,
                  report: CompactionReport) -> None:
    """Drop the month's partition, delete what is left of it in batches, mark it removed."""
    with factory.begin() as session:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text(f"SET LOCAL lock_timeout = {DROP_LOCK_TIMEOUT_MS}"))
        if partitions.drop_month_partition(session.connection(), month.month):
            report.partitions_dropped.append(month.month)
    while True:  # SQLite's rows, or a PostgreSQL month that landed in the default partition
        with factory.begin() as session:
            deleted = ledger.delete_compacted(session, month.month, month.edition_ids, batch_rows)
        if not deleted:
            break
        report.rows_deleted += deleted
        report.delete_batches += 1
    with factory.begin() as session:
        removed = session.execute(update(DeliveryCompaction)
                                  .where(DeliveryCompaction.month == month.month,
                                         DeliveryCompaction.removed_at.is_(None))
                                  .values(removed_at=now)).rowcount
    if removed:
        report.removed.append(month.month)


def compacted_months(session: Session) -> set[date]:
    """Months whose summaries exist: their rows (if any are left) are shown from the summary."""
    return set(session.scalars(select(DeliveryCompaction.month)))


def forget_reader(session: Session, subscriber_id: int) -> None:
    """An erased reader's summaries go with their other traces (they name the editions the
    reader received)."""
    session.execute(delete(ReaderDeliverySummary).where(ReaderDeliverySummary.subscriber_id == subscriber_id))
