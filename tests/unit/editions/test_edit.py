"""Changing an edition before it goes, and a one-off's newsletter: what changes, what a past
time means, what is refused (all fields at once), and that a frozen edition stays as it was."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from digest.editions import (
    KEEP,
    EditionChanges,
    EditionFrozen,
    EditionNotFound,
    InvalidEdition,
    NewsletterNotFound,
    create_edition,
    create_newsletter,
    edit_edition,
    get_edition,
    lifecycle,
    parse_send_at,
)
from digest.store.models import Edition, EditionStatus
from tests.support.samples import TOPICS

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=3)


def one_off(session: Session, *, draft: bool = True, send_at: datetime = LATER, **options: object) -> Edition:
    values: dict[str, object] = {"subject": "Morning", "send_at": send_at, "topics": None, "allowed_topics": TOPICS,
                                 "max_stories": 5, "window_hours": 48, "draft": draft}
    return create_edition(session, **{**values, **options})  # type: ignore[arg-type]


def newsletter(session: Session, slug: str = "morning") -> int:
    return create_newsletter(session, slug=slug, name=slug.title(), cron="0 7 * * *", timezone="Europe/Kyiv",
                             allowed_topics=TOPICS).id


def reread(session: Session, edition_id: int) -> Edition:
    session.expire_all()
    return get_edition(session, edition_id)


# ------------------------------------------------------------------ what changes


def test_each_field_given_changes_and_is_reported_with_what_it_replaced(session: Session) -> None:
    edition = one_off(session)
    moved = parse_send_at("2026-12-01T07:00", "Europe/Kyiv", NOW)

    done = edit_edition(session, edition.id, EditionChanges(subject="  Evening   briefing ", send_at=moved,
                                                            max_stories=3, window_hours=72), NOW)

    assert done.changed == {"subject": ("Morning", "Evening briefing"),
                            "send_at": (LATER.isoformat(), "2026-12-01T05:00:00+00:00"),
                            "max_stories": (5, 3), "window_hours": (48, 72)}
    assert not done.due
    row = reread(session, edition.id)
    assert (row.subject, row.send_at, row.max_stories, row.window_hours) == ("Evening briefing", moved, 3, 72)
    assert row.status == EditionStatus.DRAFT


def test_values_as_they_are_change_nothing(session: Session) -> None:
    edition = one_off(session)

    done = edit_edition(session, edition.id, EditionChanges(subject="Morning", send_at=LATER, max_stories=5), NOW)

    assert done.changed == {} and not done.due
    assert not EditionChanges().given() and EditionChanges(newsletter=None).given()


def test_a_scheduled_edition_moved_into_the_past_goes_out_now(session: Session) -> None:
    edition = one_off(session, draft=False)

    done = edit_edition(session, edition.id, EditionChanges(send_at=datetime(2020, 1, 1, tzinfo=UTC)), NOW)

    # Stored as now, not 2020: the release step would skip an edition that late as missed.
    assert done.changed == {"send_at": (LATER.isoformat(), NOW.isoformat())}
    assert done.due
    assert reread(session, edition.id).send_at == NOW


def test_a_draft_moved_into_the_past_waits_for_scheduling(session: Session) -> None:
    edition = one_off(session)

    done = edit_edition(session, edition.id, EditionChanges(send_at=NOW - timedelta(hours=1)), NOW)

    assert done.changed["send_at"][1] == NOW.isoformat() and not done.due


def test_a_scheduled_edition_moved_later_is_not_due(session: Session) -> None:
    edition = one_off(session, draft=False, send_at=NOW - timedelta(minutes=1))

    done = edit_edition(session, edition.id, EditionChanges(send_at=LATER), NOW)

    assert not done.due and reread(session, edition.id).send_at == LATER


def test_the_note_goes_with_the_other_fields(session: Session) -> None:
    edition = one_off(session)

    done = edit_edition(session, edition.id, EditionChanges(subject="Evening", note="  Read this. "), NOW)
    again = edit_edition(session, edition.id, EditionChanges(note="Read this."), NOW)
    cleared = edit_edition(session, edition.id, EditionChanges(note=None), NOW)

    assert set(done.changed) == {"subject", "note"} and done.changed["note"] == (None, "Read this.")
    assert again.changed == {}
    assert cleared.changed == {"note": ("Read this.", None)}
    assert reread(session, edition.id).note is None


# ------------------------------------------------------------------ a one-off's newsletter


def test_a_one_off_is_made_for_a_newsletter_by_id_or_slug(session: Session) -> None:
    morning = newsletter(session)

    by_id = one_off(session, newsletter=morning)
    by_slug = one_off(session, newsletter="morning")
    everyone = one_off(session)

    assert by_id.newsletter_id == by_slug.newsletter_id == morning
    assert everyone.newsletter_id is None


def test_an_unknown_newsletter_is_not_found_and_nothing_is_made(session: Session) -> None:
    with pytest.raises(NewsletterNotFound, match="no newsletter 'evening'"):
        one_off(session, newsletter="evening")
    with pytest.raises(NewsletterNotFound, match="no newsletter 404"):
        one_off(session, newsletter=404)
    assert session.query(Edition).count() == 0


def test_a_one_off_changes_newsletter_and_back(session: Session) -> None:
    morning = newsletter(session)
    edition = one_off(session)

    to_morning = edit_edition(session, edition.id, EditionChanges(newsletter="morning"), NOW)
    kept = edit_edition(session, edition.id, EditionChanges(subject="Other", newsletter=KEEP), NOW)
    back = edit_edition(session, edition.id, EditionChanges(newsletter=None), NOW)

    assert to_morning.changed == {"newsletter_id": (None, morning)}
    assert set(kept.changed) == {"subject"}
    assert back.changed == {"newsletter_id": (morning, None)}
    with pytest.raises(NewsletterNotFound):
        edit_edition(session, edition.id, EditionChanges(subject="Unchanged", newsletter="evening"), NOW)
    assert reread(session, edition.id).subject == "Other"


def test_a_newsletters_own_edition_keeps_its_newsletter_and_local_time(session: Session) -> None:
    morning = newsletter(session)
    edition = one_off(session, newsletter=morning)
    edition.occurrence_at, edition.local_time = LATER, "07:00"
    session.flush()

    with pytest.raises(InvalidEdition) as refused:
        edit_edition(session, edition.id, EditionChanges(newsletter=None, send_at=NOW + timedelta(days=9)), NOW)

    assert set(refused.value.fields) == {"newsletter", "send_at"}
    assert "stays with its newsletter" in refused.value.fields["newsletter"]
    assert "in each reader's own zone" in refused.value.fields["send_at"]
    assert edit_edition(session, edition.id, EditionChanges(subject="Kept"), NOW).changed


# ------------------------------------------------------------------ refused


def test_every_bad_field_is_named_and_nothing_changes(session: Session) -> None:
    edition = one_off(session)

    with pytest.raises(InvalidEdition) as refused:
        edit_edition(session, edition.id, EditionChanges(subject="Hi\r\nBcc: x@example.com", max_stories=0,
                                                         window_hours=0, send_at=NOW), NOW)

    assert set(refused.value.fields) == {"subject", "max_stories", "window_hours"}
    assert "max stories must be between 1 and 50" in str(refused.value)
    row = reread(session, edition.id)
    assert (row.subject, row.max_stories, row.window_hours, row.send_at) == ("Morning", 5, 48, LATER)


@pytest.mark.parametrize("status", [EditionStatus.SENDING, EditionStatus.PAUSED, EditionStatus.SENT,
                                    EditionStatus.CANCELLED, EditionStatus.SKIPPED])
def test_an_edition_that_has_started_sending_is_frozen(session: Session, status: EditionStatus) -> None:
    edition = one_off(session)
    edition.status = status
    session.flush()

    with pytest.raises(EditionFrozen, match=f"is {status.value}: it can no longer be changed"):
        edit_edition(session, edition.id, EditionChanges(subject="Too late"), NOW)

    assert reread(session, edition.id).subject == "Morning"


def test_an_edition_claimed_between_the_check_and_the_write_is_not_changed(session: Session) -> None:
    edition = one_off(session, draft=False, send_at=NOW)
    # The release's claim wins the row first; the edit's conditional write then finds nothing.
    assert lifecycle.claim(session, edition.id, NOW)
    assert not lifecycle.change_while_editable(session, edition.id, {"subject": "Too late"})
    assert reread(session, edition.id).subject == "Morning"


def test_an_unknown_edition_is_not_found(session: Session) -> None:
    with pytest.raises(EditionNotFound):
        edit_edition(session, 404, EditionChanges(subject="Nobody"), NOW)


@pytest.mark.parametrize(("at", "tz", "field"), [("soon", None, "send_at"), ("2026-12-01T07:00", "Mars/Base", "tz"),
                                                 ("2026-12-01T07:00+02:00", "UTC", "tz")])
def test_a_bad_send_time_names_its_field(at: str, tz: str | None, field: str) -> None:
    with pytest.raises(InvalidEdition) as refused:
        parse_send_at(at, tz, NOW)
    assert list(refused.value.fields) == [field]
