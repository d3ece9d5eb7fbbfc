"""Newsletters sent by their stories: an edition when N new qualifying stories have arrived
since the last one, at most every M minutes, held K minutes, never stacked, one per race."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.editions import (
    Candidate,
    NewsletterChanges,
    NewsletterError,
    TriggerState,
    change_state,
    create_newsletter,
    decide,
    edit_newsletter,
    lifecycle,
    schedule_editions,
    sends_in_words,
    trigger_editions,
)
from digest.editions.triggers import Fire, Wait, make_edition, trigger_state
from digest.store import Edition, EditionStatus, EditionStory, Newsletter, Story, StoryStatus
from tests.support.samples import TOPICS

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SINCE = NOW - timedelta(hours=2)


def state(arrived: list[Candidate], **overrides: object) -> TriggerState:
    values: dict[str, object] = {
        "trigger_stories": 2, "every_minutes": 60, "hold_minutes": 0, "topics": None, "window_hours": 48,
        "since": SINCE, "last_triggered_at": None, "pending": False, "arrived": arrived}
    values.update(overrides)
    return TriggerState(**values)  # type: ignore[arg-type]


def story(story_id: int, minutes_ago: int = 5, topics: tuple[str, ...] = ("world",)) -> Candidate:
    return Candidate(id=story_id, published_at=NOW - timedelta(minutes=minutes_ago), topics=topics)


# ------------------------------------------------------------------ the decision, pure


def test_n_new_stories_make_an_edition_and_fewer_do_not() -> None:
    assert decide(state([story(1)]), NOW) == Wait("too_few")
    decision = decide(state([story(1), story(2)]), NOW)
    assert decision == Fire(occurrence_at=SINCE + timedelta(microseconds=1), send_at=NOW, story_ids=(1, 2))


def test_the_hold_puts_the_send_k_minutes_later() -> None:
    decision = decide(state([story(1), story(2)], hold_minutes=15), NOW)
    assert isinstance(decision, Fire) and decision.send_at == NOW + timedelta(minutes=15)


def test_no_more_often_than_every_m_minutes() -> None:
    stories = [story(1), story(2)]
    assert decide(state(stories, last_triggered_at=NOW - timedelta(minutes=59)), NOW) == Wait("too_soon")
    assert isinstance(decide(state(stories, last_triggered_at=NOW - timedelta(minutes=60)), NOW), Fire)


def test_a_pending_edition_is_not_stacked_on() -> None:
    assert decide(state([story(1), story(2), story(3)], pending=True), NOW) == Wait("pending")


def test_only_stories_that_would_qualify_count() -> None:
    stories = [story(1, topics=("sports",)), story(2, topics=("world",)), story(3, minutes_ago=60 * 49),
               story(4, minutes_ago=-10), story(5), Candidate(id=6, published_at=NOW, retracted=True)]
    assert decide(state(stories, topics=["world"], already_sent=frozenset({5})), NOW) == Wait("too_few")
    decision = decide(state(stories, topics=["world", "sports"]), NOW)
    assert isinstance(decision, Fire) and decision.story_ids == (1, 2, 5)


def test_the_occurrence_depends_only_on_the_last_edition() -> None:
    early, late = decide(state([story(1), story(2)]), NOW), decide(state([story(1), story(2), story(3)]),
                                                                   NOW + timedelta(seconds=3))
    assert isinstance(early, Fire) and isinstance(late, Fire)
    assert early.occurrence_at == late.occurrence_at


# ------------------------------------------------------------------ with the database


def alerts(session: Session, **options: object) -> Newsletter:
    values: dict[str, object] = {"cron": None, "trigger_stories": 2, "trigger_every_minutes": 30}
    values.update(options)
    newsletter = create_newsletter(session, slug="alerts", name="Alerts", timezone="UTC",
                                   allowed_topics=TOPICS, **values)  # type: ignore[arg-type]
    newsletter.created_at = NOW - timedelta(hours=1)
    session.flush()
    return newsletter


def arrive(session: Session, key: str, at: datetime, topics: list[str] | None = None,
           status: StoryStatus = StoryStatus.PUBLISHED) -> Story:
    row = Story(url=f"https://news.example.com/{key}", title=key, published_at=at - timedelta(minutes=1),
                topics=topics or ["world"], status=status, created_at=at, updated_at=at)
    session.add(row)
    session.flush()
    return row


def made(session: Session, newsletter: Newsletter) -> list[Edition]:
    session.expire_all()
    return list(session.scalars(select(Edition).where(Edition.newsletter_id == newsletter.id)
                                .order_by(Edition.created_at)))


def test_two_new_stories_make_one_scheduled_edition_and_calling_again_makes_no_other(session: Session) -> None:
    newsletter = alerts(session, trigger_hold_minutes=10)
    arrive(session, "one", NOW - timedelta(minutes=3))
    assert trigger_editions(session, NOW) == 0
    arrive(session, "two", NOW - timedelta(minutes=1))
    assert trigger_editions(session, NOW) == 1
    assert trigger_editions(session, NOW) == 0  # a second beat: pending now
    [edition] = made(session, newsletter)
    assert edition.story_triggered and edition.status == EditionStatus.SCHEDULED
    assert edition.send_at == NOW + timedelta(minutes=10)
    assert edition.subject == "Alerts: Wednesday 25 November 2026"
    assert edition.occurrence_at == newsletter.created_at + timedelta(microseconds=1)


def test_two_racing_beats_that_both_decided_make_one_edition(session: Session) -> None:
    """Both read the state before either wrote (a story arriving in between): the same
    occurrence, so ON CONFLICT keeps one edition."""
    newsletter = alerts(session)
    arrive(session, "one", NOW - timedelta(minutes=3))
    arrive(session, "two", NOW - timedelta(minutes=2))
    first = decide(trigger_state(session, newsletter, NOW), NOW)
    arrive(session, "three", NOW - timedelta(seconds=30))
    second = decide(trigger_state(session, newsletter, NOW), NOW + timedelta(milliseconds=300))
    assert isinstance(first, Fire) and isinstance(second, Fire)
    assert make_edition(session, newsletter, first, NOW) == 1
    assert make_edition(session, newsletter, second, NOW + timedelta(milliseconds=300)) == 0
    assert len(made(session, newsletter)) == 1


def test_after_an_alert_only_stories_arriving_later_count_and_not_within_m_minutes(session: Session) -> None:
    newsletter = alerts(session)
    arrive(session, "one", NOW - timedelta(minutes=3))
    arrive(session, "two", NOW - timedelta(minutes=2))
    assert trigger_editions(session, NOW) == 1
    [first] = made(session, newsletter)
    lifecycle.transition(session, first.id, "cancel", now=NOW)  # an editor looked: not worth it
    later = NOW + timedelta(minutes=10)
    arrive(session, "three", later - timedelta(minutes=1))
    assert trigger_editions(session, later) == 0  # one new story: N is 2
    arrive(session, "four", later)
    assert trigger_editions(session, later) == 0  # two, but 10 minutes after the last: M is 30
    assert trigger_editions(session, NOW + timedelta(minutes=30)) == 1
    assert len(made(session, newsletter)) == 2


def test_an_edition_being_sent_is_not_stacked_on_and_its_stories_are_not_counted_again(session: Session) -> None:
    newsletter = alerts(session, trigger_every_minutes=1)
    one, two = arrive(session, "one", NOW - timedelta(minutes=3)), arrive(session, "two", NOW - timedelta(minutes=2))
    assert trigger_editions(session, NOW) == 1
    [edition] = made(session, newsletter)
    session.add_all([EditionStory(edition_id=edition.id, story_id=one.id, position=0),
                     EditionStory(edition_id=edition.id, story_id=two.id, position=1)])
    edition.status = EditionStatus.SENDING
    session.flush()
    later = NOW + timedelta(minutes=5)
    arrive(session, "three", later - timedelta(minutes=1))
    arrive(session, "four", later - timedelta(minutes=1))
    assert trigger_editions(session, later) == 0  # still sending
    edition.status = EditionStatus.SENT
    session.flush()
    assert trigger_editions(session, later) == 1
    assert trigger_editions(session, later + timedelta(minutes=5)) == 0  # nothing new since


def test_topics_and_retracted_stories(session: Session) -> None:
    newsletter = alerts(session, topics=["world"])
    arrive(session, "sport", NOW - timedelta(minutes=3), topics=["sports"])
    arrive(session, "gone", NOW - timedelta(minutes=3), status=StoryStatus.RETRACTED)
    arrive(session, "world", NOW - timedelta(minutes=2))
    assert trigger_editions(session, NOW) == 0
    arrive(session, "both", NOW - timedelta(minutes=1), topics=["sports", "world"])
    assert trigger_editions(session, NOW) == 1
    assert len(made(session, newsletter)) == 1


def test_paused_and_archived_newsletters_are_not_triggered(session: Session) -> None:
    newsletter = alerts(session)
    arrive(session, "one", NOW - timedelta(minutes=3))
    arrive(session, "two", NOW - timedelta(minutes=2))
    change_state(session, newsletter.id, "pause", NOW)
    assert trigger_editions(session, NOW) == 0
    change_state(session, newsletter.id, "archive", NOW)
    assert trigger_editions(session, NOW) == 0
    change_state(session, newsletter.id, "restore", NOW)
    change_state(session, newsletter.id, "resume", NOW)
    assert trigger_editions(session, NOW) == 1


def test_drafts_when_the_newsletter_makes_drafts(session: Session) -> None:
    newsletter = alerts(session, new_editions="draft", trigger_hold_minutes=5)
    arrive(session, "one", NOW - timedelta(minutes=3))
    arrive(session, "two", NOW - timedelta(minutes=2))
    assert trigger_editions(session, NOW) == 1
    [edition] = made(session, newsletter)
    assert edition.status == EditionStatus.DRAFT


def test_a_cron_newsletter_with_a_trigger_counts_from_its_last_sent_edition(session: Session) -> None:
    newsletter = alerts(session, cron="0 * * * *")  # hourly, and on 2 new stories
    newsletter.scheduled_until = NOW
    schedule_editions(session, NOW)
    upcoming = made(session, newsletter)
    assert upcoming and all(e.send_at > NOW for e in upcoming)  # 48 hours of them: not pending
    arrive(session, "one", NOW - timedelta(minutes=50))
    arrive(session, "two", NOW - timedelta(minutes=40))
    sent = Edition(newsletter_id=newsletter.id, occurrence_at=NOW - timedelta(minutes=30),
                   send_at=NOW - timedelta(minutes=30), subject="Hourly", status=EditionStatus.SENT)
    session.add(sent)
    session.flush()
    assert trigger_editions(session, NOW) == 0  # both arrived before the hourly edition went
    arrive(session, "three", NOW - timedelta(minutes=20))
    arrive(session, "four", NOW - timedelta(minutes=10))
    assert trigger_editions(session, NOW) == 1


def test_a_newsletter_needs_a_cron_or_a_trigger_and_a_trigger_only_one_makes_no_cron_editions(
        session: Session) -> None:
    with pytest.raises(NewsletterError) as raised:
        create_newsletter(session, slug="never", name="Never", cron=None, timezone="UTC", allowed_topics=TOPICS,
                          trigger_stories=0, trigger_every_minutes=0, trigger_hold_minutes=-1)
    assert set(raised.value.fields) == {"trigger_every_minutes", "trigger_hold_minutes", "cron"}
    newsletter = alerts(session)
    assert schedule_editions(session, NOW) == 0
    assert sends_in_words(newsletter) == "When 2 new stories have arrived, at most every 30 minutes"
    with pytest.raises(NewsletterError) as cleared:
        edit_newsletter(session, newsletter.id, NewsletterChanges(trigger_stories=None), TOPICS, NOW)
    assert set(cleared.value.fields) == {"cron"}
    edit_newsletter(session, newsletter.id, NewsletterChanges(cron="0 7 * * *", trigger_stories=0), TOPICS, NOW)
    assert newsletter.trigger_stories is None and sends_in_words(newsletter) == "At 07:00, every day, UTC"
    assert len(made(session, newsletter)) == 2
    edit_newsletter(session, newsletter.id, NewsletterChanges(cron=None, trigger_stories=3, trigger_hold_minutes=5),
                    TOPICS, NOW)
    assert {e.status for e in made(session, newsletter)} == {EditionStatus.CANCELLED}  # its cron editions
    assert sends_in_words(newsletter) == ("When 3 new stories have arrived, at most every 30 minutes, "
                                          "held 5 minutes for editors")


def test_a_change_reaches_an_alert_in_its_hold_and_a_new_schedule_leaves_it_be(session: Session) -> None:
    newsletter = alerts(session, cron="0 7 * * *", trigger_hold_minutes=30)
    arrive(session, "one", NOW - timedelta(minutes=3))
    arrive(session, "two", NOW - timedelta(minutes=2))
    assert trigger_editions(session, NOW) == 1
    edit_newsletter(session, newsletter.id, NewsletterChanges(
        subject_template="{{ newsletter }} now", max_stories=2, cron="0 9 * * *"), TOPICS, NOW + timedelta(minutes=1))
    [alert] = [e for e in made(session, newsletter) if e.story_triggered]
    assert (alert.subject, alert.max_stories, alert.status) == ("Alerts now", 2, EditionStatus.SCHEDULED)
    assert alert.send_at == NOW + timedelta(minutes=30)
