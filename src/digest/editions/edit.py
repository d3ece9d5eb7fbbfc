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

from digest.editions import ab
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
from digest.store import AbTest, Edition, EditionStatus


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
    # A subject test: its second subject (None or empty: no test), its share and wait.
    ab_subject: str | None | Keep = KEEP
    ab_share: int | None = None
    ab_wait: int | None = None

    def given(self) -> bool:
        return (any(v is not None for v in (self.subject, self.send_at, self.max_stories, self.window_hours,
                                            self.ab_share, self.ab_wait))
                or self.newsletter is not KEEP or self.note is not KEEP or self.ab_subject is not KEEP)


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
    test = ab.get_ab(session, edition_id)
    plan = _ab_plan(changes, test, values.get("subject", edition.subject), errors)
    if errors:
        # A refused subject test is the API's 422, like any rule refusing a value.
        refused = ab.InvalidAbTest if any(name.startswith("ab_") for name in errors) else InvalidEdition
        raise refused("; ".join(errors.values()), fields=errors)

    changed = {name: (getattr(edition, name), value) for name, value in values.items()
               if getattr(edition, name) != value}
    status = edition.status
    was_ab = _ab_json(test)
    ab_changed = plan is not KEEP and _ab_json(plan) != was_ab
    # A test alone changes no edition column: the same conditional UPDATE (of the subject to
    # itself) then takes the edition's row, so the release either sees the test or the edit
    # finds the edition sending and changes nothing.
    writes = {name: new for name, (_, new) in changed.items()} or ({"subject": edition.subject} if ab_changed else {})
    if writes and not change_while_editable(session, edition_id, writes):
        session.refresh(edition)
        raise _frozen(edition)
    if ab_changed:
        ab.set_ab(session, edition_id, plan)  # type: ignore[arg-type]
        changed["ab"] = (was_ab, _ab_json(plan))  # type: ignore[arg-type]
    session.expire(edition)
    if changes.note is not KEEP:
        was = get_edition(session, edition_id).note
        set_note(session, edition_id, changes.note)
        session.flush()
        if edition.note != was:
            changed["note"] = (was, edition.note)
    due = "send_at" in changed and status == EditionStatus.SCHEDULED and changed["send_at"][1] <= now
    return EditionEdit({name: (_json(was), _json(new)) for name, (was, new) in changed.items()}, due)


def _ab_plan(changes: EditionChanges, test: AbTest | None, subject: str, errors: dict[str, str]) -> ab.AbPlan | None | Keep:
    """The test after `changes` (KEEP: unchanged): each field given replaces the test's,
    the others stay; an empty second subject drops the test. Bad fields go to `errors`."""
    if changes.ab_subject is KEEP and changes.ab_share is None and changes.ab_wait is None:
        if test is not None and " ".join(subject.split()) == test.alternative:
            errors["subject"] = "the subject must differ from the test's second subject"
        return KEEP
    alternative = (test.alternative if test else None) if changes.ab_subject is KEEP else (changes.ab_subject or None)
    if alternative is None and changes.ab_subject is not KEEP:
        return None  # dropped: share and wait go with it
    share = changes.ab_share if changes.ab_share is not None else (test.share if test else None)
    wait = changes.ab_wait if changes.ab_wait is not None else (test.wait_minutes if test else None)
    try:
        return ab.check_ab(subject, alternative, share, wait)
    except InvalidEdition as exc:
        errors.update(exc.fields or {"ab_subject": exc.message})
        return KEEP


def _ab_json(test: AbTest | ab.AbPlan | None) -> dict[str, Any] | None:
    if test is None:
        return None
    return {"subject": test.alternative, "share": test.share, "wait_minutes": test.wait_minutes}


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value
