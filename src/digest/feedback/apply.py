"""Bounces and complaints, applied: a FeedbackEvent finds the message it is about and
changes that message's reader.

Which message a report is about, in order of trust:
1. its original Message-ID, when that has our form — `<digest.EDITION.DELIVERY.HMAC@…>`
   for a delivery, `<notice.NOTICE.HMAC@…>` for a confirmation or welcome — and equals
   the one stored on that row. An id of our form that matches no row is a forgery or a
   mangled report: nothing changes, whatever the recipient says.
2. otherwise the recipient address the report names, matched to a reader who was sent a
   delivery (or notice) of ours in the last RECIPIENT_MATCH_MAX_AGE_DAYS.
Never the From header, which anyone can forge (as for mailto: unsubscribes, digest.feedback.mailto).

Effects, each idempotent (the same report twice changes nothing more):
- hard bounce: the delivery `bounced` (a notice `failed`), the reader `bounced`, the
  address on the suppression list;
- soft bounce: counted once per delivery on subscribers.soft_bounces (the delivery's
  last_error marks it counted); the DIGEST_SOFT_BOUNCE_LIMIT-th makes it a hard bounce;
- complaint: the reader `complained`, the address suppressed, a `complaint` consent event.
Callers pass a Session and commit.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from prometheus_client import Counter
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from digest.delivery import ledger, notices
from digest.feedback.maildir import process_maildir
from digest.feedback.reports import REPORT_MAX_BYTES, FeedbackEvent, events_from_message
from digest.readers import (
    InvalidReader,
    RequestContext,
    bounce_readers,
    complain,
    count_soft_bounce,
    normalise_email,
    record,
)
from digest.store import (
    Delivery,
    DeliveryStatus,
    Notice,
    NoticeStatus,
    Subscriber,
    utcnow,
)

log = logging.getLogger(__name__)

RECIPIENT_MATCH_MAX_AGE_DAYS = 30
DELIVERY_MESSAGE_ID_RE = re.compile(r"<digest\.(\d{1,18})\.(\d{1,18})\.[0-9a-f]{16}@[^<>\s]+>", re.IGNORECASE)
NOTICE_MESSAGE_ID_RE = re.compile(r"<notice\.(\d{1,18})\.[0-9a-f]{16}@[^<>\s]+>", re.IGNORECASE)

FEEDBACK = Counter("digest_feedback_events", "Bounce and complaint reports by source, kind and outcome",
                   ["source", "kind", "outcome"])


@dataclass(frozen=True)
class Applied:
    # bounced, soft-bounce, suppressed (soft limit reached), complained, already,
    # unknown-message, no-match, erased, no-report
    outcome: str
    subscriber_id: int | None = None


@dataclass(frozen=True)
class _Sent:
    """The row of ours a report is about."""

    model: type[Delivery | Notice]
    row_id: int
    subscriber_id: int


# ------------------------------------------------------------------ finding the message


def _by_message_id(session: Session, message_id: str) -> _Sent | None:
    if found := DELIVERY_MESSAGE_ID_RE.fullmatch(message_id):
        delivery = session.get(Delivery, int(found.group(2)))
        if delivery is not None and delivery.edition_id == int(found.group(1)) and _same(delivery.message_id,
                                                                                          message_id):
            return _Sent(Delivery, delivery.id, delivery.subscriber_id)
    elif found := NOTICE_MESSAGE_ID_RE.fullmatch(message_id):
        notice = session.get(Notice, int(found.group(1)))
        if notice is not None and _same(notice.message_id, message_id):
            return _Sent(Notice, notice.id, notice.subscriber_id)
    return None


def _same(stored: str | None, reported: str) -> bool:
    return stored is not None and hmac.compare_digest(stored.lower().encode(), reported.lower().encode())


def _email_key(address: str) -> str:
    try:
        return normalise_email(address)[1]
    except InvalidReader:
        return address.strip().lower()


def _by_recipient(session: Session, address: str, now: datetime) -> _Sent | None:
    subscriber_id = session.scalar(select(Subscriber.id).where(Subscriber.email_key == _email_key(address)))
    if subscriber_id is None:
        return None
    since = now - timedelta(days=RECIPIENT_MATCH_MAX_AGE_DAYS)
    delivery_id = session.scalar(
        select(Delivery.id)
        .where(Delivery.subscriber_id == subscriber_id,
               Delivery.status.in_([DeliveryStatus.SENT, DeliveryStatus.BOUNCED]),
               or_(Delivery.attempted_at >= since, Delivery.sent_at >= since))
        .order_by(Delivery.id.desc()).limit(1))
    if delivery_id is not None:
        return _Sent(Delivery, delivery_id, subscriber_id)
    notice_id = session.scalar(
        select(Notice.id)
        .where(Notice.subscriber_id == subscriber_id, Notice.sent_at >= since,
               Notice.status.in_([NoticeStatus.SENT, NoticeStatus.FAILED]))
        .order_by(Notice.id.desc()).limit(1))
    return _Sent(Notice, notice_id, subscriber_id) if notice_id is not None else None


MAILED_SOURCES = ("dsn", "arf")


def find_sent(session: Session, event: FeedbackEvent, now: datetime) -> tuple[_Sent | None, str]:
    """(the row the event is about, or None with the reason: unknown-message, no-match)."""
    if event.message_id and (DELIVERY_MESSAGE_ID_RE.fullmatch(event.message_id)
                             or NOTICE_MESSAGE_ID_RE.fullmatch(event.message_id)):
        sent = _by_message_id(session, event.message_id)
        return sent, "unknown-message"
    # Without our Message-ID only a signed provider webhook may name the reader by address:
    # anyone can mail a report to the bounce mailbox naming someone else.
    if event.recipient and event.source not in MAILED_SOURCES:
        return _by_recipient(session, event.recipient, now), "no-match"
    return None, "no-match"


# ------------------------------------------------------------------ applying


def apply_event(session: Session, event: FeedbackEvent, *, soft_bounce_limit: int,
                now: datetime | None = None) -> Applied:
    now = now or utcnow()
    sent, why = find_sent(session, event, now)
    if sent is None:
        applied = Applied(why)
    else:
        subscriber = session.get_one(Subscriber, sent.subscriber_id)
        if subscriber.erased_at is not None:
            applied = Applied("erased", subscriber.id)  # the address is gone and suppressed already
        elif event.kind == "complaint":
            applied = Applied(_complaint(session, subscriber, sent, event), subscriber.id)
        elif event.kind == "hard":
            applied = Applied(_hard_bounce(session, subscriber, sent, event), subscriber.id)
        else:
            applied = Applied(_soft_bounce(session, subscriber, sent, event, soft_bounce_limit), subscriber.id)
    FEEDBACK.labels(event.source, event.kind, applied.outcome).inc()
    log.info("feedback %s from %s: %s", event.kind, event.source, applied.outcome,
             extra={"subscriber_id": applied.subscriber_id, "outcome": applied.outcome, "status": event.status,
                    "delivery_id": sent.row_id if sent is not None and sent.model is Delivery else None})
    return applied


def apply_events(session: Session, events: Iterable[FeedbackEvent], *, soft_bounce_limit: int) -> list[Applied]:
    now = utcnow()
    return [apply_event(session, event, soft_bounce_limit=soft_bounce_limit, now=now) for event in events]


def _describe(prefix: str, event: FeedbackEvent) -> str:
    detail = " ".join(part for part in (event.status, event.diagnostic) if part)
    return f"{prefix} ({event.source}){': ' + detail if detail else ''}"[:1000]


def _hard_bounce(session: Session, subscriber: Subscriber, sent: _Sent, event: FeedbackEvent) -> str:
    error = _describe("hard bounce", event)
    marked = (ledger.bounce_sent(session, sent.row_id, error) if sent.model is Delivery
              else notices.fail_sent(session, sent.row_id, error))
    left = bounce_readers(session, [subscriber.id])
    return "bounced" if marked or left else "already"


def _soft_bounce(session: Session, subscriber: Subscriber, sent: _Sent, event: FeedbackEvent, limit: int) -> str:
    # One count per message: a `delayed` then a `failed 4.4.7` for the same copy is one.
    error = _describe("soft bounce", event)
    counted = (ledger.note_soft_bounce(session, sent.row_id, error) if sent.model is Delivery
               else notices.note_soft_bounce(session, sent.row_id, error))
    if not counted:
        return "already"
    return "suppressed" if count_soft_bounce(session, subscriber.id, limit) else "soft-bounce"


def _complaint(session: Session, subscriber: Subscriber, sent: _Sent, event: FeedbackEvent) -> str:
    changed, suppressed = complain(session, subscriber.id)
    if changed:
        session.refresh(subscriber)
        record(session, subscriber, "complaint", RequestContext(channel=event.source), detail={
            "feedback_type": event.feedback_type, "message_id": event.message_id,
            "delivery_id" if sent.model is Delivery else "notice_id": sent.row_id})
    return "complained" if changed or suppressed else "already"


# ------------------------------------------------------------------ mailed reports


def apply_report(session: Session, raw: bytes, *, soft_bounce_limit: int) -> list[Applied]:
    events = events_from_message(raw)
    if not events:
        return [Applied("no-report")]
    return apply_events(session, events, soft_bounce_limit=soft_bounce_limit)


def process_bounce_maildir(factory: sessionmaker[Session], folder: Path, *,
                           soft_bounce_limit: int) -> list[Applied]:
    """Every report in the maildir's new/ (DIGEST_BOUNCE_MAILDIR), applied."""
    return [applied for results in process_maildir(
        factory, folder, lambda session, raw: apply_report(session, raw, soft_bounce_limit=soft_bounce_limit),
        REPORT_MAX_BYTES) for applied in results]
