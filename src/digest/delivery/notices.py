"""One-off messages to one reader: the confirmation request and the welcome.

Each is a Notice row first (queued by digest.readers), then a task sends it: claimed with a
conditional UPDATE so that a task run twice sends once, rendered from
templates/email/<kind>/. The only writer of `notices.status` after the row is queued,
bounce reports included.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.editions import reader_brand
from digest.infra import make_confirm_token
from digest.mail import (
    MessageHeaders,
    Personal,
    SendError,
    Transport,
    build_message,
    inline_css,
    message_id_for,
    render_template,
)
from digest.store import (
    Edition,
    EditionStatus,
    ErrorCode,
    Notice,
    NoticeStatus,
    Subscriber,
    SubscriberStatus,
    ts,
    utcnow,
)

NOTICE_KINDS = ("confirm", "welcome")
NOTICE_MAX_ATTEMPTS = 5
# The old default delivery lease: ten SMTP timeouts of 30 s (see notice_lease_seconds).
NOTICE_LEASE_MIN_SECONDS = 300

_CLAIM = text(
    "UPDATE notices SET lease_until = :lease, attempts = attempts + 1 "
    "WHERE id = :id AND status = 'queued' AND (lease_until IS NULL OR lease_until < :now) "
    "RETURNING subscriber_id, kind, attempts"
).bindparams(ts("now"), ts("lease"))


def next_edition_time(session: Session) -> str | None:
    when = session.scalar(
        select(Edition.send_at).where(Edition.status == EditionStatus.SCHEDULED, Edition.send_at > utcnow())
        .order_by(Edition.send_at).limit(1)
    )
    return f"{when:%A %-d %B at %H:%M} UTC" if when else None


def typed_name(subscriber: Subscriber, kind: str) -> str | None:
    """The name a reader typed, where a notice may show it. Never in the confirmation: until
    the address's owner confirms, the name is anyone's text, and a greeting or To display name
    would let a stranger mail any address words of their choosing from our domain."""
    return None if kind == "confirm" else subscriber.name


def notice_context(session: Session, subscriber: Subscriber, settings: Settings,
                   kind: str = "confirm") -> dict[str, object]:
    base = settings.base_url
    name = typed_name(subscriber, kind)
    brand = reader_brand(session, subscriber.id)
    return {
        "reader": {
            "greeting": f"Hi {name}," if name else "Hello,",
            "email": subscriber.email,
            "unsubscribe_url": f"{base}/unsubscribe/{subscriber.token}",
            "preferences_url": f"{base}/preferences/{subscriber.token}",
        },
        "confirm_url": f"{base}/confirm/{make_confirm_token(settings.secret_key, subscriber.id, subscriber.token)}",
        "confirm_days": settings.confirm_token_max_age_days,
        "topics": subscriber.topics,
        "next_edition": next_edition_time(session),
        "sender_name": settings.sender_name,
        "postal_address": settings.postal_address,
        "site_url": settings.public_site_url,
        "archive_url": f"{base}/archive",
        "brand": brand.style(),
        "reply_to": brand.reply_to or "",
    }


def send_notice(factory: sessionmaker[Session], notice_id: int, transport: Transport,
                settings: Settings) -> str:
    """Send one notice at most once; returns its final or current status."""
    now = utcnow()
    with factory.begin() as session:
        lease = now + timedelta(seconds=notice_lease_seconds(settings.lease_seconds))
        claimed = session.execute(_CLAIM, {"id": notice_id, "now": now, "lease": lease}).first()
        if claimed is None:
            notice = session.get(Notice, notice_id)
            return notice.status.value if notice else "missing"
        subscriber = session.get_one(Subscriber, claimed.subscriber_id)
        # A reader who left (or was erased) since the request gets nothing more.
        wanted = {"confirm": SubscriberStatus.PENDING, "welcome": SubscriberStatus.ACTIVE}[claimed.kind]
        if subscriber.status != wanted or subscriber.erased_at is not None:
            session.execute(update(Notice).where(Notice.id == notice_id).values(
                status=NoticeStatus.FAILED, last_error=f"reader is {subscriber.status.value}",
                error_code=ErrorCode.READER_LEFT, lease_until=None))
            return NoticeStatus.FAILED.value
        context = notice_context(session, subscriber, settings, claimed.kind)
    subject, body_html, body_text = render_template(claimed.kind, context)
    message_id = message_id_for(0, notice_id, settings.sender_domain, settings.secret_key).replace(
        "<digest.0.", "<notice.", 1)
    reader = context["reader"]
    assert isinstance(reader, dict)
    message = build_message(
        MessageHeaders(sender=settings.sender, subject=subject, list_id=settings.list_id,
                       feedback_id=f"{claimed.kind}:digest:notice:{settings.feedback_id_sender}",
                       unsubscribe_mailto=settings.list_unsubscribe_mailto, reply_to=str(context["reply_to"])),
        Personal(to_name=typed_name(subscriber, claimed.kind), to_address=subscriber.email, message_id=message_id,
                 date=utcnow(), unsubscribe_url=reader["unsubscribe_url"],
                 unsubscribe_token=subscriber.token, text=body_text, html=inline_css(body_html)),
    )
    try:
        with transport.connect() as connection:
            connection.send(settings.sender_address, subscriber.email, message)
    except SendError as exc:
        final = exc.permanent or claimed.attempts >= NOTICE_MAX_ATTEMPTS
        with factory.begin() as session:
            session.execute(update(Notice).where(Notice.id == notice_id).values(
                status=NoticeStatus.FAILED if final else NoticeStatus.QUEUED,
                last_error=str(exc)[:1000], lease_until=None,
                error_code=ErrorCode.HARD_BOUNCE if exc.permanent else ErrorCode.TRANSIENT))
        if final:
            return NoticeStatus.FAILED.value
        raise
    with factory.begin() as session:
        session.execute(update(Notice).where(Notice.id == notice_id).values(
            status=NoticeStatus.SENT, sent_at=utcnow(), message_id=message_id, lease_until=None, error_code=None))
    return NoticeStatus.SENT.value


def notice_lease_seconds(lease_seconds: float) -> float:
    """A notice's lease: one message, sent with no heartbeat (unlike a batch, lease.py), so
    the lease must outlast a whole SMTP conversation to a slow server (each step may take
    DIGEST_SMTP_TIMEOUT_SECONDS); never less than NOTICE_LEASE_MIN_SECONDS. A confirmation
    delayed a few minutes by a crash is fine; one sent twice is not."""
    return max(lease_seconds, NOTICE_LEASE_MIN_SECONDS)


def stale_notice_ids(session: Session, now: datetime, lease_seconds: float) -> list[int]:
    """Notices nobody holds that have waited longer than a notice's lease: their task was lost."""
    cutoff = now - timedelta(seconds=notice_lease_seconds(lease_seconds))
    return list(
        session.scalars(
            select(Notice.id).where(
                Notice.status == NoticeStatus.QUEUED,
                Notice.created_at < cutoff,
                (Notice.lease_until.is_(None)) | (Notice.lease_until < now),
            ).limit(1000)
        )
    )


def fail_sent(session: Session, notice_id: int, error: str) -> bool:
    """A hard-bounce report for a notice we recorded sent: now failed. True if changed."""
    return session.execute(
        update(Notice).where(Notice.id == notice_id, Notice.status == NoticeStatus.SENT)
        .values(status=NoticeStatus.FAILED, last_error=error[:1000], error_code=ErrorCode.HARD_BOUNCE)
        .execution_options(synchronize_session=False)).rowcount == 1


def note_soft_bounce(session: Session, notice_id: int, error: str) -> bool:
    """A soft-bounce report for a sent notice, counted once per notice."""
    return session.execute(
        update(Notice)
        .where(Notice.id == notice_id, Notice.status == NoticeStatus.SENT,
               or_(Notice.error_code.is_(None), Notice.error_code != ErrorCode.SOFT_BOUNCE))
        .values(last_error=error[:1000], error_code=ErrorCode.SOFT_BOUNCE)
        .execution_options(synchronize_session=False)).rowcount == 1
