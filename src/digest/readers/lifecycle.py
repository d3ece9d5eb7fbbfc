"""A reader's life: subscribe, confirm, change preferences, leave, be forgotten.

Every change of consent writes a ConsentEvent (who, when, how, to which text). Callers
pass a Session and commit; anything to enqueue (confirmation, welcome) is returned as
notice ids so the caller sends it after the commit.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from prometheus_client import Counter
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from digest.zones import UnknownZone, load_zone
from digest.infra import announce_after_commit
from digest.readers.addresses import clean_name, clean_topics, new_token, normalise_email
from digest.readers.click_history import click_history_of, forget_click_history, set_click_history
from digest.readers.consent import RequestContext, consent_values, record
from digest.readers.subscriptions import active_newsletters, set_subscriptions
from digest.readers.suppression import LIFTED_BY_CONSENT, lift_for_consent, suppress, suppression_reason
from digest.readers.summaries import live_rows, month_summaries
from digest.store import (
    ConsentEvent,
    Delivery,
    Frequency,
    Notice,
    Subscriber,
    SubscriberStatus,
    SubscriberTopic,
    utcnow,
)

PAUSE_MAX_WEEKS = 52
# Counted where it happens; digest.observe adds it to /metrics.
UNSUBSCRIBES = Counter("digest_unsubscribes", "Readers who left, by channel", ["channel"])


def queue_notice(session: Session, subscriber: Subscriber, kind: str) -> int:
    notice = Notice(subscriber_id=subscriber.id, kind=kind)
    session.add(notice)
    session.flush()
    return notice.id


def find_by_token(session: Session, token: str) -> Subscriber | None:
    if not token or len(token) > 64:
        return None
    return session.scalar(select(Subscriber).where(Subscriber.token == token))


def request_subscription(
    session: Session,
    email: str,
    *,
    name: str | None,
    topics: list[str],
    allowed_topics: list[str],
    ctx: RequestContext,
    newsletter_ids: list[int] | None = None,
) -> tuple[Subscriber | None, bool]:
    """Record a sign-up request: (reader or None, whether to send a confirmation).

    The caller answers the same way whatever happens here, so the form never reveals who
    is subscribed. Suppressed addresses are ignored, except where the block was the
    person's own choice (erased, unsubscribed elsewhere: LIFTED_BY_CONSENT), which a new
    confirmed consent ends; active readers are left as they are; pending and departed
    readers get a (new) confirmation request.
    """
    address, key = normalise_email(email)
    clean = clean_name(name)
    chosen = clean_topics(topics, allowed_topics)
    reason = suppression_reason(session, key)
    if reason is not None and reason not in LIFTED_BY_CONSENT:
        return None, False
    subscriber = session.scalar(select(Subscriber).where(Subscriber.email_key == key))
    if subscriber is not None and subscriber.status in (SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED):
        return None, False
    if subscriber is not None and subscriber.status == SubscriberStatus.ACTIVE:
        return subscriber, False
    if subscriber is None:
        subscriber = Subscriber(email=address, email_key=key, token=new_token(),
                                status=SubscriberStatus.PENDING)
        session.add(subscriber)
    subscriber.status = SubscriberStatus.PENDING
    subscriber.name = clean
    subscriber.consent_source = ctx.form or ctx.channel
    subscriber.topic_rows = [SubscriberTopic(topic=t) for t in chosen]
    session.flush()
    if newsletter_ids is None:
        newsletter_ids = [n.id for n in active_newsletters(session)]
    set_subscriptions(session, subscriber, newsletter_ids)
    record(session, subscriber, "subscribe", ctx, with_text=True,
           detail={"topics": chosen, "newsletters": sorted(newsletter_ids)})
    return subscriber, True


def confirm(session: Session, subscriber: Subscriber, ctx: RequestContext) -> bool:
    """pending → active. True if this call activated the reader (then send a welcome)."""
    now = utcnow()
    result = session.execute(
        update(Subscriber)
        .where(Subscriber.id == subscriber.id, Subscriber.status == SubscriberStatus.PENDING)
        .values(status=SubscriberStatus.ACTIVE, confirmed_at=now, unsubscribed_at=None,
                unsubscribe_channel=None)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    session.refresh(subscriber)
    lifted = lift_for_consent(session, subscriber.email_key)
    record(session, subscriber, "confirm", ctx, with_text=True, detail={"lifted_block": True} if lifted else None)
    return True


def unsubscribe(session: Session, subscriber: Subscriber, ctx: RequestContext) -> bool:
    """Leave at once; idempotent. True if this call changed anything.

    Deliveries already queued are not touched here: the send loop re-checks the reader's
    status before sending, so the ledger stays truthful about what was actually sent.
    """
    if _leave(session, Subscriber.id == subscriber.id, ctx) is None:
        return False
    session.refresh(subscriber)
    return True


def unsubscribe_by_token(session: Session, token: str, ctx: RequestContext) -> str | None:
    """The unsubscribe link and one-click POST: leave, idempotently, and return the reader's
    address; None when the token is unknown or its reader was erased.

    Two statements when the reader leaves (the conditional UPDATE … RETURNING and the
    consent event), one when they had already left: no ORM load of the reader or their
    topics, since a mailbox provider may send these by the hundred a second."""
    if not token or len(token) > 64:
        return None
    left = _leave(session, Subscriber.token == token, ctx)
    if left is not None:
        return left.email
    return session.scalar(select(Subscriber.email).where(Subscriber.token == token, Subscriber.erased_at.is_(None)))


def _leave(session: Session, which: Any, ctx: RequestContext) -> Any:
    """(id, email) of the reader `which` picks if this call made them leave, else None."""
    left = session.execute(
        update(Subscriber)
        .where(which, Subscriber.erased_at.is_(None),
               Subscriber.status.in_([SubscriberStatus.ACTIVE, SubscriberStatus.PENDING]))
        .values(status=SubscriberStatus.UNSUBSCRIBED, unsubscribed_at=utcnow(), unsubscribe_channel=ctx.channel)
        .returning(Subscriber.id, Subscriber.email)
        .execution_options(synchronize_session=False)
    ).first()
    if left is None:
        return None
    session.execute(insert(ConsentEvent).values(**consent_values(left.id, "unsubscribe", ctx)))
    UNSUBSCRIBES.labels(ctx.channel).inc()
    announce_after_commit(session, left.id)  # running send loops skip them at once
    return left


def update_preferences(
    session: Session,
    subscriber: Subscriber,
    *,
    name: str | None,
    topics: list[str],
    frequency: str,
    pause_weeks: int,
    allowed_topics: list[str],
    ctx: RequestContext,
    newsletter_ids: list[int] | None = None,
    timezone: str | None = None,
    click_history_ids: list[int] | None = None,
) -> None:
    """`click_history_ids`: the newsletters whose click history the reader wants (each
    offered one not among them is a no, and deletes its history); None: not asked."""
    if timezone:
        try:
            load_zone(timezone)
        except UnknownZone as exc:
            raise ValueError(str(exc)) from None
    try:
        chosen_frequency = Frequency(frequency)
    except ValueError:
        raise ValueError("frequency must be 'every' or 'weekly'") from None
    if not 0 <= pause_weeks <= PAUSE_MAX_WEEKS:
        raise ValueError(f"pause must be between 0 and {PAUSE_MAX_WEEKS} weeks")
    subscriber.name = clean_name(name)
    subscriber.topic_rows = [SubscriberTopic(topic=t) for t in clean_topics(topics, allowed_topics)]
    subscriber.frequency = chosen_frequency
    subscriber.timezone = timezone or None
    if pause_weeks:
        subscriber.paused_until = utcnow() + timedelta(weeks=pause_weeks)
    if newsletter_ids is not None:
        # Per newsletter, by the reader's token: leaving one never touches the others.
        set_subscriptions(session, subscriber, newsletter_ids)
    session.flush()
    record(session, subscriber, "preferences", ctx, detail={
        "topics": subscriber.topics, "frequency": chosen_frequency.value, "pause_weeks": pause_weeks,
        "newsletters": sorted(newsletter_ids) if newsletter_ids is not None else None,
    })
    if click_history_ids is not None:
        set_click_history(session, subscriber, click_history_ids, ctx)


def resume(session: Session, subscriber: Subscriber, ctx: RequestContext) -> None:
    subscriber.paused_until = None
    record(session, subscriber, "preferences", ctx, detail={"resumed": True})


def export_data(session: Session, subscriber: Subscriber) -> dict[str, Any]:
    """Everything we hold about a reader, as JSON-able data."""

    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    consents = session.scalars(
        select(ConsentEvent).where(ConsentEvent.subscriber_id == subscriber.id).order_by(ConsentEvent.id)
    )
    sent = session.execute(
        select(Delivery.edition_id, Delivery.status, Delivery.sent_at, Delivery.message_id)
        .where(*live_rows(subscriber.id, session)).order_by(Delivery.id)
    )
    # Months older than the retention: each edition from the month's summary, oldest first
    # like the rows (no time or Message-ID: those went with the rows).
    compacted = month_summaries(session, subscriber.id)[::-1]
    notices = session.scalars(select(Notice).where(Notice.subscriber_id == subscriber.id).order_by(Notice.id))
    return {
        "profile": {
            "email": subscriber.email, "name": subscriber.name, "status": subscriber.status.value,
            "topics": subscriber.topics, "frequency": subscriber.frequency.value,
            "timezone": subscriber.timezone, "paused_until": iso(subscriber.paused_until), "created_at": iso(subscriber.created_at),
            "confirmed_at": iso(subscriber.confirmed_at), "unsubscribed_at": iso(subscriber.unsubscribed_at),
            "unsubscribe_channel": subscriber.unsubscribe_channel, "consent_source": subscriber.consent_source,
        },
        "consent_records": [
            {"at": iso(c.at), "kind": c.kind, "channel": c.channel, "form": c.form,
             "consent_text": c.consent_text, "consent_version": c.consent_version,
             "ip": c.ip, "user_agent": c.user_agent, "detail": c.detail}
            for c in consents
        ],
        "deliveries": [
            {"edition_id": edition_id, "status": status, "month": f"{month.month:%Y-%m}", "compacted": True}
            for month in compacted for edition_id, _subject, status in month.editions
        ] + [
            {"edition_id": edition_id, "status": status, "sent_at": iso(sent_at), "message_id": message_id}
            for edition_id, status, sent_at, message_id in sent
        ],
        "delivery_months": [month.as_json() for month in compacted],
        "notices": [
            {"kind": n.kind, "status": n.status.value, "sent_at": iso(n.sent_at)} for n in notices
        ],
        # Only where the reader said yes to it, in a newsletter that offers it; else empty.
        "click_history": click_history_of(session, subscriber.id),
    }


def erase(session: Session, subscriber: Subscriber, ctx: RequestContext) -> None:
    """Forget the reader: personal data gone, a hash of the address kept as suppression."""
    suppress(session, subscriber.email_key, "erased")
    now = utcnow()
    placeholder = f"erased-{subscriber.id}@erased.invalid"
    subscriber.email = placeholder
    subscriber.email_key = placeholder
    subscriber.name = None
    subscriber.token = new_token()  # old links stop working
    subscriber.status = SubscriberStatus.UNSUBSCRIBED
    subscriber.unsubscribed_at = subscriber.unsubscribed_at or now
    subscriber.unsubscribe_channel = subscriber.unsubscribe_channel or ctx.channel
    subscriber.erased_at = now
    subscriber.topic_rows = []
    announce_after_commit(session, subscriber.id)
    session.execute(
        update(ConsentEvent).where(ConsentEvent.subscriber_id == subscriber.id)
        .values(ip=None, user_agent=None).execution_options(synchronize_session=False)
    )
    session.execute(delete(Notice).where(Notice.subscriber_id == subscriber.id))
    forget_click_history(session, subscriber.id)
    session.flush()
    record(session, subscriber, "erase", RequestContext(channel=ctx.channel))
