"""The story library as editors see it: search, and the site-wide flags (featured, pinned,
retracted). The only writer of those flags; an edition's own picks live in
digest.editions.create.curation and never change the stored story."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from digest.errors import Invalid, NotFound
from digest.store import Story, StoryStatus


@dataclass(frozen=True)
class StoryFilter:
    q: str | None = None
    topic: str | None = None
    featured: bool | None = None
    status: str | None = None
    published_from: datetime | None = None
    published_to: datetime | None = None
    limit: int = 50
    offset: int = 0


def search_stories(session: Session, f: StoryFilter) -> tuple[list[Story], int]:
    """Stories matching the filter, newest first, and how many match in all."""
    query = select(Story)
    if f.q:
        # autoescape: a % or _ typed in the box means itself, not a LIKE wildcard
        needle = f.q.strip().lower()
        query = query.where(or_(*(func.lower(column).contains(needle, autoescape=True)
                                  for column in (Story.title, Story.summary, Story.url))))
    if f.featured is not None:
        query = query.where(Story.featured.is_(f.featured))
    if f.status:
        try:
            query = query.where(Story.status == StoryStatus(f.status))
        except ValueError:
            raise Invalid("status must be published or retracted") from None
    if f.published_from:
        query = query.where(Story.published_at >= f.published_from)
    if f.published_to:
        query = query.where(Story.published_at <= f.published_to)
    rows = list(session.scalars(query.order_by(Story.published_at.desc(), Story.id.desc())))
    if f.topic:
        rows = [s for s in rows if f.topic in (s.topics or [])]  # JSON lists: filtered here, portably
    return rows[f.offset: f.offset + max(1, min(f.limit, 500))], len(rows)


def get_story(session: Session, story_id: int) -> Story:
    story = session.get(Story, story_id)
    if story is None:
        raise NotFound(f"no story with id {story_id}", code="story_not_found")
    return story


def set_story_flags(session: Session, story_id: int, *, featured: bool | None = None,
                    pinned: bool | None = None, status: str | None = None) -> Story:
    story = get_story(session, story_id)
    if featured is not None:
        story.featured = featured
    if pinned is not None:
        story.pinned = pinned
    if status is not None:
        try:
            story.status = StoryStatus(status)
        except ValueError:
            raise Invalid("status must be published or retracted") from None
    return story
