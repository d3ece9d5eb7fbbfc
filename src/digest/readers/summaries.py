"""A reader's months of deliveries after retention compacted the rows
(digest.delivery.retention writes reader_delivery_summaries): what their history and their
data export show in place of the rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from digest.store import Delivery, DeliveryCompaction, Edition, ReaderDeliverySummary


@dataclass(frozen=True)
class MonthSummary:
    """A month of one reader's deliveries: the counts and each edition with what happened to it."""

    month: date
    sent: int
    bounced: int
    failed: int
    skipped: int
    editions: list[tuple[int, str, str]]  # (edition id, subject, status), by edition id

    def as_json(self) -> dict[str, Any]:
        return {"month": f"{self.month:%Y-%m}", "sent": self.sent, "bounced": self.bounced, "failed": self.failed,
                "skipped": self.skipped,
                "editions": [{"edition_id": e, "subject": subject, "status": status}
                             for e, subject, status in self.editions]}


def month_summaries(session: Session, subscriber_id: int) -> list[MonthSummary]:
    """The reader's compacted months, newest first."""
    summaries = list(session.scalars(select(ReaderDeliverySummary)
                                     .where(ReaderDeliverySummary.subscriber_id == subscriber_id)
                                     .order_by(ReaderDeliverySummary.month.desc())))
    ids = {int(pair[0]) for summary in summaries for pair in summary.editions}
    subjects: dict[int, str] = {row.id: row.subject for row in session.execute(
        select(Edition.id, Edition.subject).where(Edition.id.in_(ids)))} if ids else {}
    return [MonthSummary(s.month, s.sent, s.bounced, s.failed, s.skipped,
                         [(int(e), subjects.get(int(e), ""), str(status)) for e, status in s.editions])
            for s in summaries]


def live_rows(subscriber_id: int, session: Session) -> list[ColumnElement[bool]]:
    """The reader's delivery rows not yet compacted. A compacted month's rows may linger a
    moment (deleted in batches after the summary is written): the summary stands for them,
    so they are not listed twice."""
    where: list[ColumnElement[bool]] = [Delivery.subscriber_id == subscriber_id]
    if months := list(session.scalars(select(DeliveryCompaction.month))):
        where.append(Delivery.planned_month.not_in(months))
    return where
