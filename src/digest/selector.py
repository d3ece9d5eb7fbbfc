"""The featured-story selector: which stories an edition carries, and in what order.

`select_stories` is pure and deterministic (same candidates, same answer); `load_candidates`
is the one query that feeds it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from digest.store.models import Edition, EditionStatus, EditionStory, Story, StoryStatus

DEFAULT_WINDOW_HOURS = 48
DEFAULT_MAX_STORIES = 5
# Editions whose stories count as "already sent" for later editions.
SENT_EDITION_STATUSES = (EditionStatus.SENDING, EditionStatus.SENT, EditionStatus.PAUSED)


@dataclass(frozen=True)
class Candidate:
    id: int
    published_at: datetime
    topics: tuple[str, ...] = ()
    featured: bool = False
    pinned: bool = False
    retracted: bool = False


def select_stories(
    candidates: Iterable[Candidate],
    *,
    send_at: datetime,
    topics: Sequence[str] | None = None,
    max_stories: int = DEFAULT_MAX_STORIES,
    window_hours: int = DEFAULT_WINDOW_HOURS,
    already_sent: frozenset[int] = frozenset(),
) -> list[int]:
    """Story ids for an edition: pinned, then featured, then most recent; at most max_stories.

    Every story must be published by send_at, not retracted, not sent in an earlier edition
    and, when the edition has topics, share one of them. Pinned stories are an editor's
    explicit choice and ignore the recency window; the others must fall within
    `window_hours` before send_at. Ties break on id, so the answer never depends on the
    order candidates arrive in.
    """
    window_start = send_at - timedelta(hours=window_hours)
    wanted = set(topics) if topics else None

    def eligible(story: Candidate) -> bool:
        if story.retracted or story.id in already_sent or story.published_at > send_at:
            return False
        if wanted is not None and wanted.isdisjoint(story.topics):
            return False
        return story.pinned or story.published_at >= window_start

    def rank(story: Candidate) -> tuple[int, float, int]:
        tier = 0 if story.pinned else 1 if story.featured else 2
        return (tier, -story.published_at.timestamp(), -story.id)

    chosen = sorted(filter(eligible, candidates), key=rank)
    return [story.id for story in chosen[: max(0, max_stories)]]


def load_candidates(session: Session, send_at: datetime, window_hours: int) -> list[Candidate]:
    """Published stories that could qualify: pinned ones, and any within the window."""
    window_start = send_at - timedelta(hours=window_hours)
    rows = session.execute(
        select(
            Story.id, Story.published_at, Story.topics, Story.featured, Story.pinned, Story.status
        ).where(
            Story.status == StoryStatus.PUBLISHED,
            Story.published_at <= send_at,
            or_(Story.pinned.is_(True), Story.published_at >= window_start),
        )
    )
    return [
        Candidate(
            id=row.id,
            published_at=row.published_at,
            topics=tuple(row.topics or ()),
            featured=row.featured,
            pinned=row.pinned,
            retracted=row.status == StoryStatus.RETRACTED,
        )
        for row in rows
    ]


def stories_already_sent(session: Session, except_edition_id: int | None = None) -> frozenset[int]:
    query = (
        select(EditionStory.story_id)
        .join(Edition, Edition.id == EditionStory.edition_id)
        .where(Edition.status.in_(SENT_EDITION_STATUSES))
    )
    if except_edition_id is not None:
        query = query.where(Edition.id != except_edition_id)
    return frozenset(session.scalars(query))


def select_for_edition(session: Session, edition: Edition) -> list[int]:
    return select_stories(
        load_candidates(session, edition.send_at, edition.window_hours),
        send_at=edition.send_at,
        topics=edition.topics,
        max_stories=edition.max_stories,
        window_hours=edition.window_hours,
        already_sent=stories_already_sent(session, except_edition_id=edition.id),
    )
