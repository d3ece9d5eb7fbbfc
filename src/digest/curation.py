"""Editors' work on stories and editions: search, feature, retract, pin, exclude, reorder,
override a headline or summary for one edition, write the editor's note, send a test.

Curation changes an edition only while it has not started sending: once planned, its
story list is frozen and what readers got is what the ledger says.
"""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from digest.config import Settings
from digest.content import edition_view
from digest.errors import Invalid
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
from digest.store import Edition, EditionCuration, EditionStatus, utcnow
from digest.stories import get_story

EDITABLE = (EditionStatus.DRAFT, EditionStatus.SCHEDULED)
NOTE_MAX_CHARS = 2000
SUMMARY_MAX_CHARS = 1000
TEST_SUBJECT_PREFIX = "[TEST] "


class CurationError(Invalid):
    pass


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
