"""A newsletter changed, paused, resumed, archived and restored: each bad field reported at
once, and every change reaching the editions already made that have not started (a new
schedule re-times or cancels them; a subject an editor wrote by hand stays)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from digest import readers
from digest.editions import (
    KEEP,
    NewsletterArchived,
    NewsletterChanges,
    NewsletterError,
    SlugTaken,
    change_state,
    create_newsletter,
    edit_newsletter,
    lifecycle,
    newsletter_state,
    schedule_editions,
)
from digest.store import Edition, EditionStatus, Newsletter, StatusCode
from tests.support.samples import TOPICS

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # a Wednesday; 14:00 in Kyiv


def daily(session: Session, cron: str = "0 7 * * *", **options: object) -> Newsletter:
    newsletter = create_newsletter(session, slug="morning", name="Morning", cron=cron, timezone="Europe/Kyiv",
                                   allowed_topics=TOPICS, **options)  # type: ignore[arg-type]
    newsletter.created_at = NOW - timedelta(hours=1)
    schedule_editions(session, NOW)  # beat: tomorrow's and the next day's 07:00
    return newsletter


def editions(session: Session, newsletter: Newsletter) -> list[Edition]:
    session.expire_all()
    return list(session.scalars(select(Edition).where(Edition.newsletter_id == newsletter.id)
                                .order_by(Edition.occurrence_at, Edition.id)))


def kyiv(edition: Edition) -> str:
    return f"{edition.send_at.astimezone(__import__('zoneinfo').ZoneInfo('Europe/Kyiv')):%a %H:%M}"


# ------------------------------------------------------------------ checks


def test_every_bad_field_is_reported_at_once_by_its_name(session: Session) -> None:
    with pytest.raises(NewsletterError) as raised:
        create_newsletter(session, slug="Bad Slug", name=" ", cron="0 7 * *", timezone="Mars/Olympus",
                          allowed_topics=TOPICS, min_stories=0, window_hours=0, subject_template="{{ nope }}",
                          new_editions="sometimes")
    assert set(raised.value.fields) == {"slug", "name", "cron", "timezone", "min_stories", "window_hours",
                                        "subject_template", "new_editions"}
    assert session.scalars(select(Newsletter)).all() == []


def test_fewest_above_most_is_reported_at_fewest_and_a_taken_slug_is_a_conflict(session: Session) -> None:
    daily(session)
    with pytest.raises(NewsletterError) as raised:
        edit_newsletter(session, "morning", NewsletterChanges(min_stories=9), TOPICS, NOW)
    assert set(raised.value.fields) == {"min_stories"}
    with pytest.raises(SlugTaken) as taken:
        create_newsletter(session, slug="morning", name="Again", cron="0 8 * * *", timezone="UTC",
                          allowed_topics=TOPICS)
    assert taken.value.fields == {"slug": "this short name is taken"}


def test_the_date_no_longer_repeats_the_weekday(session: Session) -> None:
    newsletter = daily(session, subject_template="{{ newsletter }}: {{ weekday }}, {{ date }}")
    assert [e.subject for e in editions(session, newsletter)] == [
        "Morning: Thursday, 26 November 2026", "Morning: Friday, 27 November 2026"]


# ------------------------------------------------------------------ changes reach upcoming editions


def test_a_new_subject_and_limits_reach_upcoming_editions_but_not_a_subject_written_by_hand(
        session: Session) -> None:
    newsletter = daily(session)
    first, second = editions(session, newsletter)
    lifecycle.change_while_editable(session, second.id, {"subject": "Our special Friday", "max_stories": 8})

    changed = edit_newsletter(session, newsletter.id, NewsletterChanges(
        subject_template="{{ weekday }} with {{ newsletter }}", max_stories=3, topics=["politics"]), TOPICS, NOW)

    assert changed == {"subject_template": ("{{ newsletter }}: {{ weekday }} {{ date }}",
                                            "{{ weekday }} with {{ newsletter }}"),
                       "max_stories": (5, 3), "topics": (None, ["politics"])}
    first, second = editions(session, newsletter)
    assert (first.subject, first.max_stories, first.topics) == ("Thursday with Morning", 3, ["politics"])
    assert (second.subject, second.max_stories, second.topics) == ("Our special Friday", 8, ["politics"])


def test_a_new_schedule_cancels_what_it_no_longer_has_and_makes_its_own(session: Session) -> None:
    newsletter = daily(session)
    assert [kyiv(e) for e in editions(session, newsletter)] == ["Thu 07:00", "Fri 07:00"]

    edit_newsletter(session, newsletter.id, NewsletterChanges(cron="0 7 * * 5"), TOPICS, NOW)  # Fridays only

    by_status = {(kyiv(e), e.status, e.status_code) for e in editions(session, newsletter)}
    assert by_status == {("Thu 07:00", EditionStatus.CANCELLED, StatusCode.SCHEDULE_CHANGED),
                         ("Fri 07:00", EditionStatus.SCHEDULED, None)}

    edit_newsletter(session, newsletter.id, NewsletterChanges(cron="30 8 * * *"), TOPICS, NOW)
    live = [kyiv(e) for e in editions(session, newsletter) if e.status == EditionStatus.SCHEDULED]
    assert live == ["Thu 08:30", "Fri 08:30"]


def test_nothing_changed_writes_nothing(session: Session) -> None:
    newsletter = daily(session)
    assert edit_newsletter(session, newsletter.id, NewsletterChanges(name="Morning", sender_name=KEEP), TOPICS,
                           NOW) == {}


# ------------------------------------------------------------------ pause, resume, archive, restore


def test_pause_holds_upcoming_editions_and_resume_sends_them_but_not_what_it_slept_through(
        session: Session) -> None:
    newsletter = daily(session)
    first, second = editions(session, newsletter)
    lifecycle.transition(session, second.id, "unschedule", now=NOW)  # an editor's own draft

    assert change_state(session, newsletter.id, "pause", NOW) == (True, 1)
    assert change_state(session, newsletter.id, "pause", NOW) == (False, 0)
    first, second = editions(session, newsletter)
    assert (first.status, first.status_code) == (EditionStatus.DRAFT, StatusCode.NEWSLETTER_PAUSED)
    assert newsletter_state(newsletter) == "paused"
    assert schedule_editions(session, NOW + timedelta(days=5)) == 0  # beat makes nothing while paused

    later = NOW + timedelta(hours=6)  # Thursday's edition is still to come
    changed, moved = change_state(session, newsletter.id, "resume", later)
    assert changed and moved == 1
    first, second = editions(session, newsletter)
    assert (first.status, first.status_code, first.status_reason) == (EditionStatus.SCHEDULED, None, None)
    assert second.status == EditionStatus.DRAFT  # the editor's draft stays theirs

    change_state(session, newsletter.id, "pause", later)
    weeks_later = NOW + timedelta(days=20)
    change_state(session, newsletter.id, "resume", weeks_later)
    made = [e for e in editions(session, newsletter) if e.occurrence_at and e.occurrence_at > NOW + timedelta(days=3)]
    assert made and min(e.occurrence_at for e in made if e.occurrence_at) > weeks_later


def test_archive_cancels_what_has_not_started_and_restore_brings_it_back_paused(session: Session) -> None:
    newsletter = daily(session)
    assert change_state(session, newsletter.id, "archive", NOW) == (True, 2)
    assert {(e.status, e.status_code) for e in editions(session, newsletter)} == {
        (EditionStatus.CANCELLED, StatusCode.NEWSLETTER_ARCHIVED)}
    with pytest.raises(NewsletterArchived):
        edit_newsletter(session, newsletter.id, NewsletterChanges(name="Renamed"), TOPICS, NOW)
    with pytest.raises(NewsletterArchived):
        change_state(session, newsletter.id, "resume", NOW)

    assert change_state(session, newsletter.id, "restore", NOW) == (True, 0)
    assert newsletter_state(newsletter) == "paused"


def test_a_newsletter_can_make_drafts_for_an_editor_to_schedule(session: Session) -> None:
    newsletter = daily(session, new_editions="draft")
    assert {e.status for e in editions(session, newsletter)} == {EditionStatus.DRAFT}


def test_readers_may_choose_a_paused_newsletter_and_keep_an_archived_one_they_take(session: Session) -> None:
    paused, archived = daily(session), create_newsletter(session, slug="old", name="Old", cron="0 9 * * 1",
                                                         timezone="UTC", allowed_topics=TOPICS)
    reader = readers.add_subscriber(session, "ann@example.org", allowed_topics=TOPICS, confirmed=True,
                                    consent_source="test")
    assert readers.subscribed_ids(session, reader.id) == {paused.id, archived.id}
    change_state(session, paused.id, "pause", NOW)
    change_state(session, archived.id, "archive", NOW)
    assert [n.slug for n in readers.active_newsletters(session)] == ["morning"]

    readers.set_subscriptions(session, reader, [paused.id])  # a preferences form offers only "morning"
    assert readers.subscribed_ids(session, reader.id) == {paused.id, archived.id}
    readers.set_subscriptions(session, reader, [])
    assert readers.subscribed_ids(session, reader.id) == {archived.id}
    with pytest.raises(readers.InvalidReader):
        readers.set_subscriptions(session, reader, [archived.id])  # not offered, so not taken anew
