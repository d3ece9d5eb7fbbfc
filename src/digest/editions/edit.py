"""Changing an edition before it goes: its subject, send time, story limit and window, the
newsletter a one-off goes to, and (with them, for the API) the editor's note.

Allowed while the edition is a draft or scheduled; once it has started sending it is
frozen (`EditionFrozen`, a 409, like curation). A send time that has passed means "now":
a scheduled edition moved there goes out at once (the caller asks for a release), a draft
as soon as it is scheduled. Stored as now rather than as the past time, so the release
step never takes it for an edition missed while the workers were down.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sqlalchemy.orm import Session

from digest.editions.create import (
    InvalidEdition,
    check_max_stories,
    check_window_hours,
    clean_subject,
    find_newsletter,
    get_edition,
)
from digest.editions.curation import EditionFrozen, set_note
from digest.editions.lifecycle import EDITABLE, change_while_editable
from digest.store import Edition, EditionStatus


class Keep(enum.Enum):
    KEEP = "keep"


KEEP: Final = Keep.KEEP  # "leave it as it is", for the fields where None means "none"


@dataclass(frozen=True)
class EditionChanges:
    """What to change; a field left None (KEEP where None has a meaning) stays as it is."""

    subject: str | None = None
    send_at: datetime | None = None
    max_stories: int | None = None
    window_hours: int | None = None
    newsletter: int | str | None | Keep = KEEP  # an id or slug; None: no newsletter (every active reader)
    note: str | None | Keep = KEEP  # None or empty: no note

    def given(self) -> bool:
        return (any(v is not None for v in (self.subject, self.send_at, self.max_stories, self.window_hours))
                or self.newsletter is not KEEP or self.note is not KEEP)


@dataclass(frozen=True)
class EditionEdit:
    """What an edit did: each field it changed as (was, now), JSON-able (times in ISO 8601,
    the newsletter by id); and whether the edition is now scheduled and due, so that its
    release should be asked for at once."""

    changed: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    due: bool = False


def _frozen(edition: Edition) -> EditionFrozen:
    return EditionFrozen(f"Edition {edition.id} is {edition.status.value}: it can no longer be changed.")


def edit_edition(session: Session, edition_id: int, changes: EditionChanges, now: datetime) -> EditionEdit:
    """Apply `changes`; every field is checked before anything is written, and the bad ones
    are reported together (InvalidEdition.fields). NotFound for the edition or newsletter,
    EditionFrozen once it has started sending."""
    edition = get_edition(session, edition_id)
    if edition.status not in EDITABLE:
        raise _frozen(edition)
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}

    def check(name: str, value: Any, test: Any) -> None:
        try:
            values[name] = test(value)
        except InvalidEdition as exc:
            errors.update(exc.fields or {name: exc.message})

    if changes.subject is not None:
        check("subject", changes.subject, clean_subject)
    if changes.send_at is not None and changes.send_at != edition.send_at:
        if edition.local_time:
            errors["send_at"] = (f"this edition goes out at {edition.local_time} in each reader's own zone: "
                                 "its time follows its newsletter's schedule")
        else:
            values["send_at"] = max(changes.send_at, now)
    if changes.max_stories is not None:
        check("max_stories", changes.max_stories, check_max_stories)
    if changes.window_hours is not None:
        check("window_hours", changes.window_hours, check_window_hours)
    if changes.newsletter is not KEEP:
        if edition.occurrence_at is not None:
            errors["newsletter"] = "a newsletter's scheduled edition stays with its newsletter"
        else:
            values["newsletter_id"] = (find_newsletter(session, changes.newsletter).id
                                       if changes.newsletter is not None else None)
    if errors:
        raise InvalidEdition("; ".join(errors.values()), fields=errors)

    changed = {name: (getattr(edition, name), value) for name, value in values.items()
               if getattr(edition, name) != value}
    status = edition.status
    if changed and not change_while_editable(session, edition_id, {name: new for name, (_, new) in changed.items()}):
        session.refresh(edition)
        raise _frozen(edition)
    session.expire(edition)
    if changes.note is not KEEP:
        was = get_edition(session, edition_id).note
        set_note(session, edition_id, changes.note)
        session.flush()
        if edition.note != was:
            changed["note"] = (was, edition.note)
    due = "send_at" in changed and status == EditionStatus.SCHEDULED and changed["send_at"][1] <= now
    return EditionEdit({name: (_json(was), _json(new)) for name, (was, new) in changed.items()}, due)


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value
