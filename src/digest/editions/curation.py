"""Editors' work on stories and editions: search, feature, retract, pin, exclude, reorder,
override a headline or summary for one edition, write the editor's note, send a test.

Curation changes an edition only while it has not started sending: once planned, its
story list is frozen and what readers got is what the ledger says.
"""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from digest.editions.create import get_edition
from digest.editions.lifecycle import EDITABLE
from digest.errors import Conflict, Invalid
from digest.mail import (
    HeaderInjection,
    check_header_value,
)
from digest.store import Edition, EditionCuration
from digest.stories import get_story

NOTE_MAX_CHARS = 2000
SUMMARY_MAX_CHARS = 1000


class CurationError(Invalid):
    """A pin, order, headline, summary or note that cannot be used."""


class EditionFrozen(Conflict):
    """The edition has started sending: what readers get is what the ledger says."""


def editable_edition(session: Session, edition_id: int) -> Edition:
    edition = get_edition(session, edition_id)
    if edition.status not in EDITABLE:
        raise EditionFrozen(f"Edition {edition_id} is {edition.status.value}: its stories are frozen.")
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
