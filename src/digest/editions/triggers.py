"""Story triggers: a newsletter sent when enough new stories have arrived (an alert).

A newsletter with `trigger_stories` = N gets an edition when at least N stories that
would qualify for it (published, not retracted, its topics, within its window, not sent
by it before) have arrived (`Story.created_at`) since its last edition, and at most one
such edition in `trigger_every_minutes` (M). The edition goes out `trigger_hold_minutes`
(K) after it is made, so an editor can curate or cancel it; it is released and planned
like every other edition (stories chosen at release, min_stories, the same guarantees).

"Since its last edition" starts at the latest of: when the newsletter was created, when
its last story-triggered edition was made (whatever became of it: a cancelled alert used
its stories up too), and the send time of its last cron edition that was released (sent,
sending, paused or skipped).

Not stacking: no edition is made while one is pending: an edition of the newsletter being
sent, one whose time has come and that is about to be released, or a triggered one in its
hold. The hold's draft (when the newsletter makes drafts) counts until its send time.

Racing beats: a triggered edition's `occurrence_at` is one microsecond after the start
of "since its last edition", so every process that sees the same last edition computes
the same value and `uq_edition_occurrence` with ON CONFLICT DO NOTHING keeps one edition.
A process that sees the edition another just made skips (it is pending). The value is a
microsecond off any cron occurrence (those fall on whole minutes).

`decide` is pure (the state in, a decision out); `trigger_editions` reads the state and
writes the edition.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from digest.editions.schedules import render_subject, schedule_in_words
from digest.editions.selector import Candidate, select_stories, stories_already_sent
from digest.editions.subjects import subject_problem
from digest.store import Edition, EditionStatus, NewEditions, Newsletter, Story, StoryStatus

log = logging.getLogger(__name__)
TRIGGER_STORIES_MAX = 1000
TRIGGER_EVERY_MAX_MINUTES = 7 * 24 * 60
TRIGGER_HOLD_MAX_MINUTES = 24 * 60
# A triggered edition's occurrence: this long after the start of "since its last edition".
OCCURRENCE_OFFSET = timedelta(microseconds=1)
# Editions whose send time is the start of "since the last edition" (they were released).
RELEASED = (EditionStatus.SENDING, EditionStatus.SENT, EditionStatus.PAUSED, EditionStatus.SKIPPED)


@dataclass(frozen=True)
class TriggerState:
    """What the decision needs to know about one newsletter at `now`."""

    trigger_stories: int
    every_minutes: int
    hold_minutes: int
    topics: Sequence[str] | None
    window_hours: int
    since: datetime  # the start of "since its last edition"
    last_triggered_at: datetime | None  # when its last triggered edition was made
    pending: bool  # an edition of it is being sent, due, or in its hold
    arrived: Sequence[Candidate]  # stories that arrived since `since`
    already_sent: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Fire:
    occurrence_at: datetime
    send_at: datetime
    story_ids: tuple[int, ...]  # the new qualifying stories that made it


@dataclass(frozen=True)
class Wait:
    reason: str  # pending, too_soon, too_few


def decide(state: TriggerState, now: datetime) -> Fire | Wait:
    """Make an edition now, or why not."""
    if state.pending:
        return Wait("pending")
    if state.last_triggered_at is not None and now < state.last_triggered_at + timedelta(minutes=state.every_minutes):
        return Wait("too_soon")
    qualifying = select_stories(state.arrived, send_at=now, topics=state.topics, window_hours=state.window_hours,
                                max_stories=len(state.arrived), already_sent=state.already_sent)
    if len(qualifying) < state.trigger_stories:
        return Wait("too_few")
    return Fire(occurrence_at=state.since + OCCURRENCE_OFFSET, send_at=now + timedelta(minutes=state.hold_minutes),
                story_ids=tuple(sorted(qualifying)))


def trigger_state(session: Session, newsletter: Newsletter, now: datetime) -> TriggerState:
    assert newsletter.trigger_stories is not None
    mine = Edition.newsletter_id == newsletter.id
    last_triggered_at = session.scalar(select(func.max(Edition.created_at)).where(
        mine, Edition.story_triggered.is_(True)))
    last_released = session.scalar(select(func.max(Edition.send_at)).where(
        mine, Edition.story_triggered.is_(False), Edition.status.in_(RELEASED), Edition.send_at <= now))
    since = max(t for t in (newsletter.created_at, last_triggered_at, last_released) if t is not None)
    pending = session.scalar(select(Edition.id).where(mine, or_(
        Edition.status == EditionStatus.SENDING,
        (Edition.status == EditionStatus.SCHEDULED) & (Edition.send_at <= now),
        Edition.story_triggered.is_(True) & Edition.status.in_((EditionStatus.SCHEDULED, EditionStatus.DRAFT))
        & (Edition.send_at > now))).limit(1)) is not None
    arrived: list[Candidate] = []
    if not pending:
        rows = session.execute(select(Story.id, Story.published_at, Story.topics, Story.featured, Story.pinned)
                               .where(Story.created_at > since, Story.created_at <= now,
                                      Story.status == StoryStatus.PUBLISHED))
        arrived = [Candidate(id=r.id, published_at=r.published_at, topics=tuple(r.topics or ()),
                             featured=r.featured, pinned=r.pinned) for r in rows]
    return TriggerState(
        trigger_stories=newsletter.trigger_stories, every_minutes=newsletter.trigger_every_minutes,
        hold_minutes=newsletter.trigger_hold_minutes, topics=newsletter.topics,
        window_hours=newsletter.window_hours, since=since, last_triggered_at=last_triggered_at, pending=pending,
        arrived=arrived,
        already_sent=stories_already_sent(session, newsletter_id=newsletter.id) if arrived else frozenset())


def trigger_editions(session: Session, now: datetime) -> int:
    """Make the edition of every active newsletter whose story trigger is met. Returns how
    many rows this call inserted (0 when another process made them)."""
    newsletters = session.scalars(select(Newsletter).where(
        Newsletter.active.is_(True), Newsletter.archived_at.is_(None), Newsletter.trigger_stories.is_not(None)))
    return sum(trigger_newsletter(session, newsletter, now) for newsletter in newsletters)


def trigger_newsletter(session: Session, newsletter: Newsletter, now: datetime) -> int:
    decision = decide(trigger_state(session, newsletter, now), now)
    return 0 if isinstance(decision, Wait) else make_edition(session, newsletter, decision, now)


def make_edition(session: Session, newsletter: Newsletter, decision: Fire, now: datetime) -> int:
    """Insert the edition `decision` asks for: 1, or 0 when another process made it."""
    if (problem := subject_problem(newsletter.subject_template)) is not None:
        log.warning("newsletter %s: alert not made: subject template: %s", newsletter.slug, problem)
        return 0
    status = EditionStatus.DRAFT if newsletter.new_editions == NewEditions.DRAFT else EditionStatus.SCHEDULED
    row = {
        "newsletter_id": newsletter.id, "occurrence_at": decision.occurrence_at, "story_triggered": True,
        "send_at": decision.send_at, "local_time": None, "local_date": None, "local_zone": None,
        "subject": render_subject(newsletter.subject_template, newsletter=newsletter.name, when=decision.send_at,
                                  zone=newsletter.timezone),
        "topics": newsletter.topics, "max_stories": newsletter.max_stories,
        "window_hours": newsletter.window_hours, "status": status, "planned_count": 0, "created_at": now,
    }
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(Edition).values([row]).on_conflict_do_nothing(
        index_elements=["newsletter_id", "occurrence_at"])
    created = session.execute(statement).rowcount or 0
    if created:
        log.info("newsletter %s: %d new stories: edition made, sent at %s", newsletter.slug,
                 len(decision.story_ids), decision.send_at.isoformat())
    return created


def trigger_in_words(stories: int, every_minutes: int, hold_minutes: int = 0) -> str:
    """"When 3 new stories have arrived, at most every 60 minutes": a story trigger as an editor reads it."""
    words = (f"When {stories} new {'story has' if stories == 1 else 'stories have'} arrived, "
             f"at most every {_minutes(every_minutes)}")
    return words + (f", held {_minutes(hold_minutes)} for editors" if hold_minutes else "")


def _minutes(count: int) -> str:
    return f"{count} minute{'s' if count != 1 else ''}"


def sends_in_words(newsletter: Newsletter) -> str:
    """When a newsletter goes, in words: its schedule, its story trigger, or both."""
    parts = [schedule_in_words(newsletter.cron, newsletter.timezone)] if newsletter.cron else []
    if newsletter.trigger_stories:
        words = trigger_in_words(newsletter.trigger_stories, newsletter.trigger_every_minutes,
                                 newsletter.trigger_hold_minutes)
        parts.append(words[0].lower() + words[1:] if parts else words)
    return "; and ".join(parts) or "Never: no schedule and no story trigger"
