"""What staff change for a reader, on the reader's behalf (a reader who phoned or wrote):
their topics and newsletters, a fresh confirmation email. Leaving and erasure are
`lifecycle`'s `unsubscribe` and `erase`, called with the channel `admin`.

Nothing here makes a reader active: only the reader's own confirmation does (consent is
theirs to give), so staff can never bring back a reader who left. Every change writes a
consent event with the caller's channel; the staff member is named in the audit row
written in the same transaction (digest.actions), not in the reader's own records.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.errors import Conflict
from digest.readers.addresses import clean_topics
from digest.readers.consent import RequestContext, record
from digest.readers.lifecycle import queue_notice
from digest.readers.subscriptions import set_subscriptions, subscribed_ids
from digest.store import Notice, NoticeStatus, Subscriber, SubscriberStatus, SubscriberTopic, utcnow

# A second press within this time sends no second confirmation.
CONFIRM_RESEND_COOLDOWN_SECONDS = 60


class ReaderErased(Conflict):
    """The reader asked to be forgotten: nothing of theirs is left to change."""

    default_code = "reader_erased"


class NotPending(Conflict):
    """Only a reader who has not confirmed yet can be sent a confirmation."""

    default_code = "not_pending"


def require_present(subscriber: Subscriber) -> None:
    if subscriber.erased_at is not None:
        raise ReaderErased(f"reader {subscriber.id} was erased; there is nothing left to change")


def change_topics(session: Session, subscriber: Subscriber, topics: Iterable[str], *, allowed_topics: list[str],
                  ctx: RequestContext) -> bool:
    """Exactly these topics (none: every topic). True if they changed; unknown topics are
    InvalidReader."""
    require_present(subscriber)
    chosen = clean_topics(list(topics), allowed_topics)
    was = subscriber.topics
    if chosen == was:
        return False
    subscriber.topic_rows = [SubscriberTopic(topic=t) for t in chosen]
    session.flush()
    record(session, subscriber, "preferences", ctx, detail={"topics": chosen, "topics_were": was})
    return True


def change_newsletters(session: Session, subscriber: Subscriber, newsletter_ids: Iterable[int], *,
                       ctx: RequestContext) -> bool:
    """Exactly these newsletters (unknown ids are InvalidReader). True if they changed."""
    require_present(subscriber)
    wanted = sorted(set(newsletter_ids))
    was = sorted(subscribed_ids(session, subscriber.id))
    if wanted == was:
        return False
    set_subscriptions(session, subscriber, wanted)
    record(session, subscriber, "preferences", ctx, detail={"newsletters": wanted, "newsletters_were": was})
    return True


def resend_confirmation(session: Session, subscriber: Subscriber, now: datetime | None = None) -> int | None:
    """Queue a fresh confirmation email for a pending reader; its notice id (the caller
    enqueues it after commit), or None when one was queued in the last
    CONFIRM_RESEND_COOLDOWN_SECONDS and did not fail. NotPending for anyone else: a reader who left comes
    back only by signing up again."""
    require_present(subscriber)
    if subscriber.status != SubscriberStatus.PENDING:
        raise NotPending(f"{subscriber.email} is {subscriber.status.value}: only a pending reader can be sent "
                         "a confirmation")
    since = (now or utcnow()) - timedelta(seconds=CONFIRM_RESEND_COOLDOWN_SECONDS)
    # A confirmation that failed (a bounce, retries run out) does not hold the next one back.
    recent = session.scalar(select(Notice.id).where(Notice.subscriber_id == subscriber.id, Notice.kind == "confirm",
                                                    Notice.created_at >= since,
                                                    Notice.status != NoticeStatus.FAILED).limit(1))
    if recent is not None:
        return None
    return queue_notice(session, subscriber, "confirm")


def last_confirmation_failed(session: Session, subscriber_id: int) -> bool:
    """The reader's latest confirmation could not be sent (bounced, or retries ran out): a
    new request should not wait out the sign-up form's cooldown for a mail that never came."""
    status = session.scalar(select(Notice.status).where(Notice.subscriber_id == subscriber_id, Notice.kind == "confirm")
                            .order_by(Notice.id.desc()).limit(1))
    return status == NoticeStatus.FAILED
