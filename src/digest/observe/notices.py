"""Mail to readers that failed: confirmations and welcomes that could not be sent (a hard
bounce, retries run out, or a reader gone before it left), newest first, for the ops
page. A confirmation to a reader still pending can be sent again from there."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.store import Notice, NoticeStatus, Subscriber, SubscriberStatus

FAILED_NOTICES_SHOWN = 20
FAILED_NOTICES_DAYS = 7


@dataclass(frozen=True)
class FailedNotice:
    id: int
    reader_id: int
    email: str
    kind: str  # confirm, welcome
    error: str
    at: datetime
    can_resend: bool  # a confirmation to a reader still pending, and no newer one queued or sent

    def as_json(self) -> dict[str, object]:
        return {"id": self.id, "reader_id": self.reader_id, "kind": self.kind, "error": self.error,
                "at": self.at.isoformat(), "can_resend": self.can_resend}


def failed_notices(session: Session, now: datetime, limit: int = FAILED_NOTICES_SHOWN) -> list[FailedNotice]:
    """The last week's failed notices of readers who are not erased, newest first."""
    rows = session.execute(
        select(Notice.id, Notice.kind, Notice.last_error, Notice.created_at, Subscriber.id, Subscriber.email,
               Subscriber.status)
        .join(Subscriber, Subscriber.id == Notice.subscriber_id)
        .where(Notice.status == NoticeStatus.FAILED, Notice.created_at >= now - timedelta(days=FAILED_NOTICES_DAYS),
               Subscriber.erased_at.is_(None))
        .order_by(Notice.id.desc()).limit(limit)).all()
    newest_confirm = dict(session.execute(
        select(Notice.subscriber_id, Notice.id).where(
            Notice.kind == "confirm", Notice.subscriber_id.in_({row[4] for row in rows}))
        .order_by(Notice.id)).all()) if rows else {}
    return [FailedNotice(notice_id, reader_id, email, kind, (error or "")[:300], at,
                         kind == "confirm" and status == SubscriberStatus.PENDING
                         and newest_confirm.get(reader_id) == notice_id)
            for notice_id, kind, error, at, reader_id, email, status in rows]
