"""Per-reader content: an edition's frozen candidates, minus what each reader already got.

Planning freezes the edition's stories plus a few spares. At send time, per batch:
- a story retracted since planning is pulled (and the edition records it);
- each reader gets the first `max_stories` candidates they have not received before, in
  any edition of any newsletter (their delivery rows keep the story ids they got). Only
  deliveries sent since the oldest candidate entered the database can hold one, so only
  those are read (an index on reader and sent time): the cost follows the candidates'
  age, a day or two, not the length of the reader's history;
- readers with the same list share one rendering: most share the edition's primary list,
  so premailer still runs about once per edition per worker.
Two queries per batch, whatever its size.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Date, cast, func, select, update
from sqlalchemy.orm import Session

from digest.store import Delivery, DeliveryStatus, EditionStory, Story, StoryStatus

# Spare stories frozen beyond max_stories, to fill in for ones a reader already had.
SPARE_STORIES = 5
# How far back a reader's history is read for dedupe, at most.
HISTORY_DAYS = 180

def live_candidates(session: Session, edition_id: int, now: datetime) -> list[int]:
    """The edition's frozen stories in order, after pulling any retracted since planning."""
    rows = list(session.execute(
        select(EditionStory.story_id, EditionStory.pulled_at, Story.status)
        .join(Story, Story.id == EditionStory.story_id)
        .where(EditionStory.edition_id == edition_id)
        .order_by(EditionStory.position)))
    newly_pulled = [r.story_id for r in rows if r.pulled_at is None and r.status == StoryStatus.RETRACTED]
    if newly_pulled:
        session.execute(
            update(EditionStory)
            .where(EditionStory.edition_id == edition_id, EditionStory.story_id.in_(newly_pulled),
                   EditionStory.pulled_at.is_(None))
            .values(pulled_at=now, pulled_reason="retracted after planning")
            .execution_options(synchronize_session=False))
    return [r.story_id for r in rows if r.pulled_at is None and r.status != StoryStatus.RETRACTED]


def reader_history(session: Session, edition_id: int, subscriber_ids: list[int],
                   now: datetime, candidates: list[int] | None = None) -> dict[int, set[int]]:
    """Per reader, the stories they were sent before: those among `candidates` when given
    (all the send path needs to choose), read only from deliveries sent since the oldest
    candidate entered the database (none before could carry one); without candidates,
    everything of the last HISTORY_DAYS. One statement."""
    if not subscriber_ids or candidates == []:
        return {}
    query = (select(Delivery.subscriber_id, Delivery.story_ids)
             .where(Delivery.subscriber_id.in_(subscriber_ids), Delivery.sent_at > now - timedelta(days=HISTORY_DAYS),
                    Delivery.status == DeliveryStatus.SENT, Delivery.edition_id != edition_id,
                    Delivery.story_ids.is_not(None)))
    if candidates:
        oldest = select(func.min(Story.created_at)).where(Story.id.in_(candidates)).scalar_subquery()
        query = query.where(Delivery.sent_at >= oldest)
        if session.get_bind().dialect.name == "postgresql":
            # A copy carries stories of its edition, frozen when the edition was planned: a
            # row planned before the oldest candidate existed cannot hold one. Said by month
            # (with a day's margin for clocks), PostgreSQL skips the older months' partitions
            # instead of probing each one's reader index for every reader of the batch.
            first_month = cast(func.date_trunc("month", func.timezone("UTC", oldest) - timedelta(days=1)), Date)
            query = query.where(Delivery.planned_month >= first_month)
    wanted = set(candidates) if candidates else None
    history: dict[int, set[int]] = {}
    for subscriber_id, story_ids in session.execute(query):
        got = set(story_ids or ())
        history.setdefault(subscriber_id, set()).update(got & wanted if wanted is not None else got)
    return history


def choose(candidates: list[int], seen: set[int], max_stories: int) -> tuple[int, ...]:
    return tuple([story_id for story_id in candidates if story_id not in seen][:max_stories])
