"""Where a click goes: always from the stored story, never from the link.

- the story's address, with utm_source=digest, utm_medium=email and utm_campaign=<the
  newsletter's slug> when the newsletter has `utm_tags` on;
- the masthead (story 0): the publisher's site (DIGEST_SITE_URL);
- a story retracted since, or gone: the edition's archive page, which shows what is left;
- an edition that does not exist: None (the redirect answers 404).

Lookups are remembered per process for TARGET_CACHE_SECONDS, so the redirect reads the
database about once per edition and story in that time: a retraction reaches the redirect
within it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from digest.store import MASTHEAD, Edition, Newsletter, Story, StoryStatus

TARGET_CACHE_SECONDS = 30.0
TARGET_CACHE_ENTRIES = 10_000
UTM_SOURCE = "digest"


@dataclass(frozen=True)
class _EditionInfo:
    exists: bool
    campaign: str | None  # the newsletter's slug when it tags links


def with_utm(url: str, campaign: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if k not in ("utm_source", "utm_medium", "utm_campaign")]
    query += [("utm_source", UTM_SOURCE), ("utm_medium", "email"), ("utm_campaign", campaign)]
    return urlunsplit(parts._replace(query=urlencode(query)))


class ClickTargets:
    def __init__(self, factory: sessionmaker[Session], base_url: str, site_url: str) -> None:
        self.factory = factory
        self.base_url = base_url
        self.site_url = site_url
        self._editions: dict[int, tuple[float, _EditionInfo]] = {}
        self._stories: dict[int, tuple[float, str | None]] = {}

    def cached(self, edition_id: int, story_id: int) -> bool:
        """Whether target() can answer from memory, without the database."""
        return self._remembered(edition_id, story_id, time.monotonic()) is not None

    def target(self, edition_id: int, story_id: int) -> str | None:
        now = time.monotonic()
        found = self._remembered(edition_id, story_id, now) or self._load(edition_id, story_id, now)
        edition, story_url = found
        if not edition.exists:
            return None
        if story_url is None:
            return f"{self.base_url}/archive/{edition_id}"
        if edition.campaign and story_id != MASTHEAD:
            return with_utm(story_url, edition.campaign)
        return story_url

    def _remembered(self, edition_id: int, story_id: int, now: float) -> tuple[_EditionInfo, str | None] | None:
        edition = self._editions.get(edition_id)
        story = (now, self.site_url) if story_id == MASTHEAD else self._stories.get(story_id)
        if edition is None or story is None or now - min(edition[0], story[0]) > TARGET_CACHE_SECONDS:
            return None
        return edition[1], story[1]

    def _load(self, edition_id: int, story_id: int, now: float) -> tuple[_EditionInfo, str | None]:
        with self.factory() as session:
            row = session.execute(
                select(Edition.id, Newsletter.slug, Newsletter.utm_tags)
                .outerjoin(Newsletter, Newsletter.id == Edition.newsletter_id)
                .where(Edition.id == edition_id)).first()
            story = None
            if story_id != MASTHEAD:
                story = session.execute(select(Story.url, Story.status).where(Story.id == story_id)).first()
        edition = _EditionInfo(exists=row is not None, campaign=row.slug if row is not None and row.utm_tags else None)
        url = self.site_url if story_id == MASTHEAD else (
            story.url if story is not None and story.status != StoryStatus.RETRACTED else None)
        for cache in (self._editions, self._stories):
            if len(cache) > TARGET_CACHE_ENTRIES:
                cache.clear()
        self._editions[edition_id] = (now, edition)
        if story_id != MASTHEAD:
            self._stories[story_id] = (now, url)
        return edition, url
