"""Editions: create and schedule them, count their deliveries, preview one for a reader."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.content import edition_view
from digest.mail import HeaderInjection, Reader, check_header_value, reader_values, render_edition
from digest.readers import clean_topics, normalise_email
from digest.selector import select_for_edition
from digest.store import Delivery, DeliveryStatus, Edition, EditionStatus, Subscriber, utcnow
from digest.variants import SPARE_STORIES, choose, live_candidates, reader_history

SUBJECT_MAX_CHARS = 300
MAX_STORIES_LIMIT = 50
# A century: the selector subtracts the window from now, and datetime stops at year 1.
WINDOW_MAX_HOURS = 24 * 365 * 100


class EditionError(ValueError):
    """Bad edition input or an unknown edition; the message says which."""


def parse_send_at(at: str | None, tz: str | None, now: datetime) -> datetime:
    """An aware UTC datetime from ISO 8601 text; naive times are read in `tz` (default UTC)."""
    try:
        zone = ZoneInfo(tz) if tz else UTC
    except (ZoneInfoNotFoundError, ValueError):
        raise EditionError(f"unknown time zone {tz!r} (use an IANA name such as Europe/Kyiv)") from None
    if at is None:
        return now
    try:
        when = datetime.fromisoformat(at.strip())
    except ValueError:
        raise EditionError(f"send time {at!r} is not an ISO 8601 date-time (e.g. 2026-12-01T07:00)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=zone)
    elif tz:
        raise EditionError("give either a UTC offset in the send time or a time zone, not both")
    try:
        return when.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59-14:00 is after the last datetime in UTC
        raise EditionError(f"send time {at!r} is out of range") from None


def clean_subject(subject: str) -> str:
    try:
        check_header_value(subject, "subject")
    except HeaderInjection as exc:
        raise EditionError(str(exc)) from None
    text = " ".join(subject.split())
    if not text:
        raise EditionError("subject must not be empty")
    if len(text) > SUBJECT_MAX_CHARS:
        raise EditionError(f"subject is longer than {SUBJECT_MAX_CHARS} characters")
    return text


def create_edition(
    session: Session,
    *,
    subject: str,
    send_at: datetime,
    topics: str | None,
    allowed_topics: list[str],
    max_stories: int,
    window_hours: int,
    draft: bool = False,
) -> Edition:
    if not 1 <= max_stories <= MAX_STORIES_LIMIT:
        raise EditionError(f"max stories must be between 1 and {MAX_STORIES_LIMIT}")
    if window_hours < 1:
        raise EditionError("the story window must be at least one hour")
    if window_hours > WINDOW_MAX_HOURS:
        raise EditionError(f"the story window must be at most {WINDOW_MAX_HOURS} hours")
    try:
        chosen = clean_topics(topics, allowed_topics) if topics else None
    except ValueError as exc:
        raise EditionError(str(exc)) from None
    edition = Edition(
        subject=clean_subject(subject),
        send_at=send_at,
        topics=chosen or None,
        max_stories=max_stories,
        window_hours=window_hours,
        status=EditionStatus.DRAFT if draft else EditionStatus.SCHEDULED,
    )
    session.add(edition)
    session.flush()
    return edition


def get_edition(session: Session, edition_id: int) -> Edition:
    edition = session.get(Edition, edition_id)
    if edition is None:
        raise EditionError(f"no edition with id {edition_id}")
    return edition


@dataclass
class EditionCounts:
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

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def edition_counts(session: Session, edition_ids: list[int] | None = None) -> list[EditionCounts]:
    """Per edition: planned, sent, failed, bounced, skipped, pending (still queued)."""
    query = select(Edition).order_by(Edition.send_at.desc(), Edition.id.desc())
    if edition_ids is not None:
        query = query.where(Edition.id.in_(edition_ids))
    editions = list(session.scalars(query))
    counts_query = (
        select(Delivery.edition_id, Delivery.status, func.count())
        .where(Delivery.edition_id.in_([e.id for e in editions]))
        .group_by(Delivery.edition_id, Delivery.status)
    )
    by_edition: dict[int, dict[str, int]] = {}
    for edition_id, status, count in session.execute(counts_query):
        by_edition.setdefault(edition_id, {})[DeliveryStatus(status).value] = count
    result = []
    for edition in editions:
        counts = by_edition.get(edition.id, {})
        result.append(
            EditionCounts(
                id=edition.id,
                subject=edition.subject,
                status=edition.status.value,
                send_at=edition.send_at.isoformat(),
                started_at=edition.started_at.isoformat() if edition.started_at else None,
                finished_at=edition.finished_at.isoformat() if edition.finished_at else None,
                status_reason=edition.status_reason,
                planned=sum(counts.values()),
                sent=counts.get("sent", 0),
                failed=counts.get("failed", 0),
                bounced=counts.get("bounced", 0),
                skipped=counts.get("skipped", 0),
                pending=counts.get("queued", 0),
            )
        )
    return result


PREVIEW_READER = Reader(email="reader@example.com", name="Sample Reader", token="preview-token")


def preview_edition(session: Session, edition_id: int, email: str | None = None) -> tuple[str, str, str]:
    """(subject, html, text) exactly as a reader would get it; before planning, with the
    stories the selector would choose now. For a chosen reader, the stories they already
    received elsewhere are replaced by the spares, as the send loop will do."""
    edition = get_edition(session, edition_id)
    reader = PREVIEW_READER
    story_ids = None
    if email:
        _, key = normalise_email(email)
        subscriber = session.scalar(select(Subscriber).where(Subscriber.email_key == key))
        if subscriber is None:
            raise EditionError(f"no subscriber with address {email}")
        reader = Reader(email=subscriber.email, name=subscriber.name, token=subscriber.token)
        candidates = (live_candidates(session, edition.id, utcnow()) if edition.story_rows
                      else select_for_edition(session, edition, spare=SPARE_STORIES))
        seen = reader_history(session, edition.id, [subscriber.id], utcnow()).get(subscriber.id, set())
        story_ids = list(choose(candidates, seen, edition.max_stories))
    view = edition_view(session, edition, story_ids)
    rendered = render_edition(view)
    body_html, body_text = rendered.personalise(reader_values(reader))
    return rendered.subject, body_html, body_text


def list_editions(session: Session) -> list[Edition]:
    return list(session.scalars(select(Edition).order_by(Edition.send_at.desc(), Edition.id.desc())))

