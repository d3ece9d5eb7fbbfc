"""Editions: create one (a one-off; newsletters make theirs in digest.editions.schedules),
find and list them; the checks an edition's subject, send time and limits must pass."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.zones import UnknownZone, load_zone
from digest.errors import Conflict, DigestError, Invalid, NotFound
from digest.mail import HeaderInjection, check_header_value
from digest.readers import clean_topics
from digest.store import Delivery, DeliveryStatus, Edition, EditionCuration, EditionStatus, Newsletter

SUBJECT_MAX_CHARS = 300
MAX_STORIES_LIMIT = 50
# A century: the selector subtracts the window from now, and datetime stops at year 1.
WINDOW_MAX_HOURS = 24 * 365 * 100


class EditionError(DigestError):
    """Anything wrong with an edition asked for: `InvalidEdition` or `EditionNotFound`."""


class InvalidEdition(EditionError, Invalid):
    """Edition input that cannot be used: a bad send time, zone, subject or limit.

    `fields` names the input each message is about (`subject`, `send_at`, `tz`,
    `max_stories`, `window_hours`, `topics`, `newsletter`), so a form can show it at the
    field; the message holds them all."""

    def __init__(self, message: str, *, field: str | None = None, fields: dict[str, str] | None = None,
                 code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.fields = dict(fields) if fields else ({field: message} if field else {})


class EditionNotFound(EditionError, NotFound):
    """No edition (or, for a preview, no reader) by that id or address."""

    default_code = "edition_not_found"


class NewsletterNotFound(EditionError, NotFound):
    """No newsletter by that id or slug (for a one-off edition)."""

    default_code = "newsletter_not_found"


def parse_send_at(at: str | None, tz: str | None, now: datetime) -> datetime:
    """An aware UTC datetime from ISO 8601 text; naive times are read in `tz` (default UTC)."""
    try:
        zone = load_zone(tz) if tz else UTC
    except UnknownZone as exc:
        raise InvalidEdition(str(exc), field="tz") from None
    if at is None:
        return now
    try:
        when = datetime.fromisoformat(at.strip())
    except ValueError:
        raise InvalidEdition(f"send time {at!r} is not an ISO 8601 date-time (e.g. 2026-12-01T07:00)",
                             field="send_at") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=zone)
    elif tz:
        raise InvalidEdition("give either a UTC offset in the send time or a time zone, not both", field="tz")
    try:
        return when.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59-14:00 is after the last datetime in UTC
        raise InvalidEdition(f"send time {at!r} is out of range", field="send_at") from None


def clean_subject(subject: str) -> str:
    try:
        check_header_value(subject, "subject")
    except HeaderInjection as exc:
        raise InvalidEdition(str(exc), field="subject") from None
    text = " ".join(subject.split())
    if not text:
        raise InvalidEdition("subject must not be empty", field="subject")
    if len(text) > SUBJECT_MAX_CHARS:
        raise InvalidEdition(f"subject is longer than {SUBJECT_MAX_CHARS} characters", field="subject")
    return text


def check_max_stories(max_stories: int) -> int:
    if not 1 <= max_stories <= MAX_STORIES_LIMIT:
        raise InvalidEdition(f"max stories must be between 1 and {MAX_STORIES_LIMIT}", field="max_stories")
    return max_stories


def check_window_hours(window_hours: int) -> int:
    if window_hours < 1:
        raise InvalidEdition("the story window must be at least one hour", field="window_hours")
    if window_hours > WINDOW_MAX_HOURS:
        raise InvalidEdition(f"the story window must be at most {WINDOW_MAX_HOURS} hours", field="window_hours")
    return window_hours


def find_newsletter(session: Session, ref: int | str) -> Newsletter:
    """The newsletter a one-off edition goes to: by id (int) or slug (str)."""
    where = Newsletter.id == ref if isinstance(ref, int) else Newsletter.slug == ref
    newsletter = session.scalar(select(Newsletter).where(where))
    if newsletter is None:
        raise NewsletterNotFound(f"no newsletter {ref!r}")
    return newsletter


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
    newsletter: int | str | None = None,
) -> Edition:
    """A one-off edition. With `newsletter` (an id or slug) it goes to that newsletter's
    readers and takes its format (sender name, fewest stories); without, to every active
    reader."""
    check_max_stories(max_stories)
    check_window_hours(window_hours)
    try:
        chosen = clean_topics(topics, allowed_topics) if topics else None
    except Invalid as exc:
        raise InvalidEdition(str(exc), field="topics") from None
    subject = clean_subject(subject)
    newsletter_id = find_newsletter(session, newsletter).id if newsletter is not None else None
    edition = Edition(
        newsletter_id=newsletter_id,
        subject=subject,
        send_at=send_at,
        topics=chosen or None,
        max_stories=max_stories,
        window_hours=window_hours,
        status=EditionStatus.DRAFT if draft else EditionStatus.SCHEDULED,
    )
    session.add(edition)
    session.flush()
    return edition


class AlreadySent(Conflict):
    """A copy of an edition some readers already have would reach them twice."""

    default_code = "edition_already_sent"


def duplicate_edition(session: Session, source: Edition) -> Edition:
    """A new draft made from `source` (say, one cancelled by mistake): its newsletter,
    subject, send time (passed: scheduling the copy sends it at once), local delivery,
    topics, limits, the editor's note and every pin, exclusion, order and rewrite. Never
    of an edition that reached a reader: they would get it twice; for that one,
    send-missing finishes the original instead (AlreadySent, a Conflict)."""
    reached = session.scalar(select(func.count()).select_from(Delivery).where(
        Delivery.edition_id == source.id, Delivery.status.in_([DeliveryStatus.SENT, DeliveryStatus.BOUNCED])))
    if reached:
        raise AlreadySent(f"edition {source.id} reached {reached} reader{'s' if reached != 1 else ''}: a copy would "
                          f"reach them twice; send it to the missing readers instead")
    copy = Edition(newsletter_id=source.newsletter_id, subject=source.subject, send_at=source.send_at,
                   local_time=source.local_time, local_date=source.local_date, local_zone=source.local_zone,
                   topics=list(source.topics) if source.topics else None, max_stories=source.max_stories,
                   window_hours=source.window_hours, note=source.note, status=EditionStatus.DRAFT)
    session.add(copy)
    session.flush()
    for row in session.scalars(select(EditionCuration).where(EditionCuration.edition_id == source.id)):
        session.add(EditionCuration(edition_id=copy.id, story_id=row.story_id, action=row.action,
                                    position=row.position, headline=row.headline, summary=row.summary))
    session.flush()
    return copy


def get_edition(session: Session, edition_id: int) -> Edition:
    edition = session.get(Edition, edition_id)
    if edition is None:
        raise EditionNotFound(f"no edition with id {edition_id}")
    return edition


def list_editions(session: Session) -> list[Edition]:
    return list(session.scalars(select(Edition).order_by(Edition.send_at.desc(), Edition.id.desc())))

