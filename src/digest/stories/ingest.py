"""Fetch a source, parse it and upsert its stories: the side-effecting half of ingest."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.config import get_settings
from digest.infra import fetch
from digest.store import Story
from digest.stories.article import parse_article_page
from digest.stories.formats import parse_json_source, parse_rss_atom, parse_sitemap
from digest.stories.parse import (
    ParseError,
    StoryIn,
    detect_format,
    parse_article,
    slugify,
)

SOURCE_MAX_BYTES = 20 * 1024 * 1024
SAMPLE_FEED = "sample_feed.json"
SAMPLE_ARTICLE = "sample_article.txt"


@dataclass
class IngestResult:
    added: int = 0
    updated: int = 0  # already known (by URL, or by the id a feed gave them)
    changed: int = 0  # of those, how many now read differently
    ids: dict[str, int] = field(default_factory=dict)  # each story's URL -> its id

    @property
    def total(self) -> int:
        return self.added + self.updated


def load_source(source: str) -> bytes:
    """The bytes of a local path, a package sample (sample:NAME) or an http(s) URL."""
    return _load(source)[0]


def _load(source: str) -> tuple[bytes, str]:
    """The source's bytes and where they came from: for a URL, the address after redirects."""
    if source.startswith("sample:"):
        return (resources.files("digest") / "data" / source.removeprefix("sample:")).read_bytes(), source
    if source.startswith(("http://", "https://")):
        fetched = fetch(source, max_bytes=SOURCE_MAX_BYTES)  # FetchError: one line for the asker
        return fetched.body, fetched.url
    path = Path(source)
    try:
        if path.stat().st_size > SOURCE_MAX_BYTES:
            raise ParseError(f"{source}: larger than {SOURCE_MAX_BYTES // 2**20} MB")
        data = path.read_bytes()
    except IsADirectoryError:
        raise ParseError(f"{source}: is a folder, not a file") from None
    except OSError as exc:
        raise ParseError(f"{source}: cannot read: {exc.strerror}") from None
    if len(data) > SOURCE_MAX_BYTES:
        raise ParseError(f"{source}: larger than {SOURCE_MAX_BYTES // 2**20} MB")
    return data, source


def article_url(story_title: str, published_year_month: str) -> str:
    """Where a plain-text article lives on the publisher's site when no URL is given."""
    return f"{get_settings().public_site_url}/{published_year_month}/{slugify(story_title)}"


def parse_source(data: bytes, *, url: str | None = None, origin: str = "") -> list[StoryIn]:
    """The stories in a source's bytes. `url`: the story's address, for an article (else a
    page's canonical URL, or the `origin` it was fetched from, or for plain text a place
    under the publisher's site)."""
    kind = detect_format(data)
    if kind == "json":
        return parse_json_source(data)  # digest's own list or a JSON Feed
    if kind == "feed":
        return parse_rss_atom(data)
    if kind == "sitemap":
        return parse_sitemap(data)
    if kind == "html":
        fetched_from = origin if origin.startswith(("http://", "https://")) else None
        story = parse_article_page(data, fetched_from, trusted_hosts=_publisher_hosts())
        return [replace(story, url=url) if url else story]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ParseError("not UTF-8 text, JSON, RSS or Atom") from None
    if url is None and origin.startswith(("http://", "https://")):
        url = origin
    story = parse_article(text, url or "https://placeholder.invalid/")
    if url is None:
        story.url = article_url(story.title, story.published_at.strftime("%Y/%m"))
    return [story]


def parse_feed_source(data: bytes, origin: str = "") -> list[StoryIn]:
    """The stories of a polled feed's bytes: RSS, Atom, JSON Feed, a news sitemap, digest's
    JSON list, or a plain-text article (title line, date line, paragraphs: one story, at
    `origin`). An HTML page where a feed was expected is a ParseError: a broken feed URL
    (a home page, a login wall), not an article to ingest every few minutes."""
    if detect_format(data) == "html":
        raise ParseError("not a feed: the address answers with an HTML page")
    return parse_source(data, origin=origin)


def _publisher_hosts() -> frozenset[str]:
    """The publisher's own hosts: a page served elsewhere (a CMS preview, a mirror) may name
    its story's address there."""
    hosts = {urlsplit(get_settings().public_site_url).hostname}
    return frozenset(host for host in hosts if host)


STORED_FIELDS = ("title", "summary", "body", "image_url", "image_width", "image_height", "author", "published_at",
                 "topics")


def upsert_stories(session: Session, stories: list[StoryIn], *, known: Mapping[str, int] | None = None) -> IngestResult:
    """Insert new stories and update known ones by URL; never duplicates, never un-retracts.

    `known` maps an incoming URL to the story it already is (a polled feed recognises an
    item by its guid): that story takes the new URL when no other story holds it. An
    update changes what the story says, never whether it was sent: sends are by story id."""
    result = IngestResult()
    by_url = {story.url: story for story in stories}  # last one wins within a source
    existing = {
        row.url: row
        for row in session.scalars(select(Story).where(Story.url.in_(list(by_url))))
    }
    rows: dict[str, Story] = {}
    for url, incoming in by_url.items():
        row = existing.get(url)
        if row is None and known and url in known:
            row = session.get(Story, known[url])
            if row is not None:
                row.url = url  # the item moved; the old address is nobody else's story
        if row is None:
            row = Story(url=url, featured=bool(incoming.featured), pinned=False)
            session.add(row)
            result.added += 1
        else:
            result.updated += 1
            if any(getattr(row, name) != getattr(incoming, name) for name in STORED_FIELDS):
                result.changed += 1
            if incoming.featured is not None:
                row.featured = incoming.featured
        for name in STORED_FIELDS:  # only what differs: an unchanged story keeps its updated_at
            if row.id is None or getattr(row, name) != getattr(incoming, name):
                setattr(row, name, getattr(incoming, name))
        rows[url] = row
    session.flush()
    result.ids = {url: row.id for url, row in rows.items()}
    return result


def rebase_dates(stories: list[StoryIn], newest: datetime) -> list[StoryIn]:
    """The same stories, moved in time so the latest is published at `newest`, their spacing
    kept: the bundled samples (May 2023) as if published today, for the demo."""
    if not stories:
        return stories
    shift = newest - max(story.published_at for story in stories)
    return [replace(story, published_at=story.published_at + shift) for story in stories]


def ingest_source(session: Session, source: str, *, url: str | None = None,
                  newest: datetime | None = None) -> IngestResult:
    """Add or update the stories of a path, URL or `sample:NAME`, by URL; with `newest`,
    their dates moved so the latest is then (see `rebase_dates`)."""
    data, origin = _load(source)
    stories = parse_source(data, url=url, origin=origin)
    return upsert_stories(session, rebase_dates(stories, newest) if newest is not None else stories)
