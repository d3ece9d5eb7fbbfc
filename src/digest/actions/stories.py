"""Actions on stories: add one, ingest a feed or article by URL, upload a file, and set the
site-wide flags (featured, pinned, retracted)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from digest.actions.base import Actor, Deps, audited
from digest.actions.shapes import story_json
from digest.store import Story
from digest.stories import IngestResult, StoryIn, ingest_source, set_story_flags, upsert_stories


def add_story(deps: Deps, actor: Actor, story: StoryIn) -> tuple[IngestResult, int]:
    """Add or update one story by URL; (what changed, its id)."""
    with audited(deps, actor, "story.add", story.url) as (session, _row):
        result = upsert_stories(session, [story])
        story_id = session.scalar(select(Story.id).where(Story.url == story.url))
        assert story_id is not None
    return result, story_id


def ingest(deps: Deps, actor: Actor, source: str, *, url: str | None = None) -> IngestResult:
    """Fetch a feed, JSON list or article (a URL, or for the command line a path) and upsert
    its stories by URL."""
    with audited(deps, actor, "stories.ingest", source) as (session, row):
        result = ingest_source(session, source, url=url)
        row.update(added=result.added, updated=result.updated)
    return result


def upload(deps: Deps, actor: Actor, stories: list[StoryIn]) -> IngestResult:
    """Stories parsed from an uploaded file, upserted by URL."""
    with audited(deps, actor, "stories.upload", f"{len(stories)} stories") as (session, row):
        result = upsert_stories(session, stories)
        row.update(added=result.added, updated=result.updated)
    return result


def flag(deps: Deps, actor: Actor, story_id: int, *, featured: bool | None = None, pinned: bool | None = None,
         status: str | None = None) -> dict[str, Any]:
    """Feature, pin, retract or restore a story everywhere; returns its JSON."""
    with audited(deps, actor, "story.update", f"story:{story_id}") as (session, row):
        story = set_story_flags(session, story_id, featured=featured, pinned=pinned, status=status)
        row.update(**{k: v for k, v in {"featured": featured, "pinned": pinned, "status": status}.items()
                      if v is not None})
        return story_json(story)
