"""Editors' work on stories and editions: search, feature, retract, pin, exclude, reorder,
override a headline or summary for one edition, write the editor's note, send a test.

Curation changes an edition only while it has not started sending: once planned, its
story list is frozen and what readers got is what the ledger says.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from digest.config import Settings
from digest.content import edition_view
from digest.mail import (
    HeaderInjection,
    MessageHeaders,
    Personal,
    Reader,
    Transport,
    build_message,
    check_header_value,
    reader_values,
    render_edition,
    shared_headers,
)
from digest.readers import normalise_email
from digest.store import Edition, EditionCuration, EditionStatus, Story, StoryStatus, utcnow

EDITABLE = (EditionStatus.DRAFT, EditionStatus.SCHEDULED)
NOTE_MAX_CHARS = 2000
SUMMARY_MAX_CHARS = 1000
TEST_SUBJECT_PREFIX = "[TEST] "


class CurationError(ValueError):
    pass


@dataclass(frozen=True)
class StoryFilter:
    q: str | None = None
    topic: str | None = None
    featured: bool | None = None
    status: str | None = None
    published_from: datetime | None = None
    published_to: datetime | None = None
    limit: int = 50
    offset: int = 0


def search_stories(session: Session, f: StoryFilter) -> tuple[list[Story], int]:
    """Stories matching the filter, newest first, and how many match in all."""
    query = select(Story)
    if f.q:
        like = f"%{f.q.strip().lower()}%"
        query = query.where(or_(func.lower(Story.title).like(like), func.lower(Story.summary).like(like),
                                func.lower(Story.url).like(like)))
    if f.featured is not None:
        query = query.where(Story.featured.is_(f.featured))
    if f.status:
        try:
            query = query.where(Story.status == StoryStatus(f.status))
        except ValueError:
            raise CurationError("status must be published or retracted") from None
    if f.published_from:
        query = query.where(Story.published_at >= f.published_from)
    if f.published_to:
        query = query.where(Story.published_at <= f.published_to)
    rows = list(session.scalars(query.order_by(Story.published_at.desc(), Story.id.desc())))
    if f.topic:
        rows = [s for s in rows if f.topic in (s.topics or [])]  # JSON lists: filtered here, portably
    return rows[f.offset: f.offset + max(1, min(f.limit, 500))], len(rows)


def get_story(session: Session, story_id: int) -> Story:
    story = session.get(Story, story_id)
    if story is None:
        raise CurationError(f"no story with id {story_id}")
    return story


def set_story_flags(session: Session, story_id: int, *, featured: bool | None = None,
                    pinned: bool | None = None, status: str | None = None) -> Story:
    story = get_story(session, story_id)
    if featured is not None:
        story.featured = featured
    if pinned is not None:
        story.pinned = pinned
    if status is not None:
        try:
            story.status = StoryStatus(status)
        except ValueError:
            raise CurationError("status must be published or retracted") from None
    return story


def editable_edition(session: Session, edition_id: int) -> Edition:
    edition = session.get(Edition, edition_id)
    if edition is None:
        raise CurationError(f"no edition with id {edition_id}")
    if edition.status not in EDITABLE:
        raise CurationError(f"edition {edition_id} is {edition.status.value}: its stories are frozen")
    return edition


def _row(session: Session, edition_id: int, story_id: int) -> EditionCuration:
    get_story(session, story_id)
    row = session.get(EditionCuration, (edition_id, story_id))
    if row is None:
        row = EditionCuration(edition_id=edition_id, story_id=story_id, action="edit")
        session.add(row)
    return row


def curate(session: Session, edition_id: int, story_id: int, action: str,
           position: int | None = None) -> None:
    """pin (with an optional position), exclude, or clear one story in one edition."""
    editable_edition(session, edition_id)
    if action == "clear":
        row = session.get(EditionCuration, (edition_id, story_id))
        if row is not None and (row.headline or row.summary):
            row.action, row.position = "edit", None  # keep the headline/summary override
        elif row is not None:
            session.execute(delete(EditionCuration).where(EditionCuration.edition_id == edition_id,
                                                          EditionCuration.story_id == story_id))
        return
    if action not in ("pin", "exclude"):
        raise CurationError("action must be pin, exclude or clear")
    row = _row(session, edition_id, story_id)
    row.action = action
    if action == "pin":
        if position is None:
            position = (session.scalar(select(func.max(EditionCuration.position)).where(
                EditionCuration.edition_id == edition_id, EditionCuration.action == "pin")) or 0) + 1
        row.position = position


def reorder(session: Session, edition_id: int, story_ids: list[int]) -> None:
    """Make exactly these stories the edition's pins, in this order."""
    editable_edition(session, edition_id)
    if len(set(story_ids)) != len(story_ids):
        raise CurationError("a story appears twice in the order")
    for row in session.scalars(select(EditionCuration).where(EditionCuration.edition_id == edition_id,
                                                             EditionCuration.action == "pin")):
        if row.story_id not in story_ids:
            row.action, row.position = "edit", None
    for position, story_id in enumerate(story_ids, start=1):
        row = _row(session, edition_id, story_id)
        row.action, row.position = "pin", position


def override(session: Session, edition_id: int, story_id: int, *, headline: str | None,
             summary: str | None) -> None:
    """What this edition shows for a story; the stored story is untouched. Empty clears."""
    editable_edition(session, edition_id)
    if headline:
        try:
            check_header_value(headline, "headline")
        except HeaderInjection as exc:
            raise CurationError(str(exc)) from None
        if len(headline) > 500:
            raise CurationError("headline is longer than 500 characters")
    if summary and len(summary) > SUMMARY_MAX_CHARS:
        raise CurationError(f"summary is longer than {SUMMARY_MAX_CHARS} characters")
    row = _row(session, edition_id, story_id)
    row.headline = " ".join(headline.split()) if headline else None
    row.summary = summary.strip() if summary else None


def set_note(session: Session, edition_id: int, note: str | None) -> None:
    edition = editable_edition(session, edition_id)
    if note and len(note) > NOTE_MAX_CHARS:
        raise CurationError(f"the note is longer than {NOTE_MAX_CHARS} characters")
    edition.note = note.strip() if note and note.strip() else None


def send_test(session: Session, edition_id: int, address: str, transport: Transport,
              settings: Settings) -> str:
    """One copy to `address`, subject prefixed [TEST]; no delivery row (it is not a send to
    a reader). Returns the Message-ID."""
    edition = session.get(Edition, edition_id)
    if edition is None:
        raise CurationError(f"no edition with id {edition_id}")
    to_address, _ = normalise_email(address)
    view = edition_view(session, edition)
    rendered = render_edition(view)
    reader = Reader(email=to_address, name=None, token="test-preview")
    values = reader_values(reader)
    body_html, body_text = rendered.personalise(values)
    shared = shared_headers(view, TEST_SUBJECT_PREFIX + rendered.subject, settings)
    message_id = f"<test.{edition_id}.{int(utcnow().timestamp() * 1000)}@{settings.sender_domain}>"
    message = build_message(
        MessageHeaders(sender=shared.sender, subject=shared.subject, list_id=shared.list_id,
                       feedback_id=shared.feedback_id, unsubscribe_mailto=shared.unsubscribe_mailto),
        Personal(to_name=None, to_address=to_address, message_id=message_id, date=utcnow(),
                 unsubscribe_url=values["unsubscribe_url"], unsubscribe_token=reader.token,
                 text=body_text, html=body_html),
    )
    with transport.connect() as connection:
        connection.send(settings.sender_address, to_address, message)
    return message_id
