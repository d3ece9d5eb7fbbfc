"""Feeds beyond RSS and Atom — JSON Feed 1.0/1.1 and Google News sitemaps — and the rules
every feed's items share, RSS and Atom included.

A feed is many items from one place, and one bad item (no title, a link that is not
http(s), a date that cannot be read or cannot be true) is skipped, not the feed: `keep_items`
applies the shared rules. It keeps the first of each guid and of each URL (feeds list newest
first), at most FEED_ITEMS_MAX items, each at its `canonical_url` (not the image's), and
refuses the feed with the first reason only when no item is left.

Pure: no database, no network (the sitemap parser loads no DTD and expands no entity).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
import io
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import feedparser
from lxml import etree

from digest.infra import load_json
from digest.stories.parse import (
    ParseError,
    StoryIn,
    _check_title,
    _check_url,
    _guid,
    detect_format,
    html_to_text,
    normalise_topics,
    one_line,
    parse_datetime,
    parse_feed,
    parse_json,
    summarise,
)
from digest.stories.urls import canonical_url

log = logging.getLogger(__name__)

FEED_ITEMS_MAX = 1000  # the first ones: feeds list newest first
OLDEST_PUBLISHED_AT = datetime(1990, 1, 1, tzinfo=UTC)  # before: an epoch or a typo, not news
FUTURE_SKEW_MAX_DAYS = 2  # a wrong time zone or a clock ahead; beyond it, a date that cannot be true
CATEGORIES_MAX = 50
CATEGORY_MAX_CHARS = 100
AUTHOR_MAX_CHARS = 200
SKIPPED_REASONS_LOGGED = 3

JSON_FEED_VERSION_PREFIX = "https://jsonfeed.org/version/"
SITEMAP_NEWS_NS = "http://www.google.com/schemas/sitemap-news/0.9"
SITEMAP_IMAGE_NS = "http://www.google.com/schemas/sitemap-image/1.1"

Item = TypeVar("Item")


def keep_items(items: Iterable[Item], story: Callable[[Item], StoryIn], what: str) -> list[StoryIn]:
    """The stories of a feed's items, by the rules every feed shares (see the module's
    docstring); `story` makes one, raising ParseError for an item to skip. `what` names the
    feed in the refusal ("the JSON Feed has no usable item (item 1: title: missing)")."""
    now = datetime.now(UTC)
    stories: list[StoryIn] = []
    seen: set[str] = set()
    skipped: list[str] = []
    for index, item in enumerate(items, start=1):
        try:
            made = story(item)
            made = replace(made, url=canonical_url(made.url))
            _check_published_at(made.published_at, now)
        except ParseError as exc:
            skipped.append(f"item {index}: {exc}")
            continue
        keys = {f"url:{made.url}"} | ({f"guid:{made.guid}"} if made.guid else set())
        if keys & seen:
            skipped.append(f"item {index}: repeats an earlier item's guid or URL")
            continue
        seen |= keys
        stories.append(made)
        if len(stories) == FEED_ITEMS_MAX:
            break
    if skipped:
        log.info("%s: skipped %d item(s): %s", what, len(skipped), "; ".join(skipped[:SKIPPED_REASONS_LOGGED]))
    if not stories:
        raise ParseError(f"{what} has no usable item{f' ({skipped[0]})' if skipped else ''}")
    return stories


def _check_published_at(when: datetime, now: datetime) -> None:
    if when < OLDEST_PUBLISHED_AT:
        raise ParseError(f"published_at: before {OLDEST_PUBLISHED_AT.year}: {when.isoformat()}")
    if when > now + timedelta(days=FUTURE_SKEW_MAX_DAYS):
        raise ParseError(f"published_at: more than {FUTURE_SKEW_MAX_DAYS} days ahead: {when.isoformat()}")


def _published_at(value: Any) -> datetime:
    """A feed item's date; an item that gives none is dated now, as parse_feed dates one."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return datetime.now(UTC)
    return parse_datetime(value)


def _categories(tags: list[str]) -> tuple[list[str], list[str], bool | None]:
    """(categories, topics, featured) from a feed item's tags, as parse_feed reads them."""
    topics = normalise_topics(tags)
    categories = [one_line(tag)[:CATEGORY_MAX_CHARS] for tag in tags if one_line(tag)][:CATEGORIES_MAX]
    return categories, [t for t in topics if t != "featured"], True if "featured" in topics else None


def _image_url(*candidates: Any) -> str | None:
    """The first candidate that passes the URL check: an image is optional, so a bad one is
    left out, not the story."""
    for candidate in filter(None, candidates):
        try:
            return _check_url(candidate, "image_url")
        except ParseError:
            continue
    return None


# ---------------------------------------------------------------- RSS / Atom


def parse_rss_atom(data: bytes) -> list[StoryIn]:
    """An RSS or Atom feed (`parse.parse_feed`) under the rules every feed's items share."""
    return keep_items(parse_feed(data), _as_is, "the feed")


def _as_is(story: StoryIn) -> StoryIn:
    return story


# ---------------------------------------------------------------- JSON Feed


def parse_json_source(data: bytes) -> list[StoryIn]:
    """A JSON source: a JSON Feed (told by its `version`) or digest's own list of stories,
    which stays strict (an editor's upload: a bad item is named and refused, not skipped)."""
    document = _load(data)
    if _is_json_feed(document):
        return _json_feed_stories(document)
    return parse_json(data)


def parse_json_feed(data: bytes) -> list[StoryIn]:
    """A JSON Feed, version 1.1 or 1.0 (https://jsonfeed.org/version/1.1)."""
    document = _load(data)
    if not _is_json_feed(document):
        raise ParseError(f"not a JSON Feed: no \"version\" starting {JSON_FEED_VERSION_PREFIX}")
    return _json_feed_stories(document)


def _load(data: bytes) -> Any:
    try:
        return load_json(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ParseError(f"not valid JSON: {exc}") from None


def _is_json_feed(document: Any) -> bool:
    return (isinstance(document, dict) and isinstance(document.get("version"), str)
            and document["version"].startswith(JSON_FEED_VERSION_PREFIX))


def _json_feed_stories(feed: Mapping[str, Any]) -> list[StoryIn]:
    items = feed.get("items")
    if not isinstance(items, list):
        raise ParseError("the JSON Feed's items: must be a list")
    feed_author = _json_feed_author(feed)
    return keep_items(items, lambda item: _json_feed_story(item, feed_author), "the JSON Feed")


def _json_feed_story(item: Any, feed_author: str | None) -> StoryIn:
    if not isinstance(item, dict):
        raise ParseError("not an object")
    content_html = _string(item.get("content_html"))
    body = _string(item.get("content_text")).strip() or (html_to_text(content_html) if content_html else "")
    tags = [tag for tag in item.get("tags") or [] if isinstance(tag, str)] if isinstance(item.get("tags"), list) else []
    categories, topics, featured = _categories(tags)
    return StoryIn(
        # external_url: a link post's subject, when the item has no page of its own
        url=_check_url(item.get("url") or item.get("external_url")),
        title=_check_title(_string(item.get("title"))),
        published_at=_published_at(item.get("date_published") or item.get("date_modified")),
        summary=summarise(_string(item.get("summary")) or body),
        body=body,
        image_url=_image_url(item.get("image"), item.get("banner_image")),
        author=_json_feed_author(item) or feed_author,
        topics=topics,
        featured=featured,
        guid=_guid(item.get("id")) if isinstance(item.get("id"), str | int) else None,
        categories=categories,
    )


def _json_feed_author(holder: Mapping[str, Any]) -> str | None:
    """`authors[0].name` (1.1), else `author.name` (1.0), of an item or of the feed."""
    authors = holder.get("authors")
    first = authors[0] if isinstance(authors, list) and authors else holder.get("author")
    name = one_line(_string(first.get("name"))) if isinstance(first, dict) else ""
    return name[:AUTHOR_MAX_CHARS] or None


def _string(value: Any) -> str:
    return value if isinstance(value, str) else ""


# ---------------------------------------------------------------- Google News sitemap


def parse_sitemap(data: bytes) -> list[StoryIn]:
    """A Google News sitemap: a `<urlset>` whose `<url>`s carry `<news:news>` (title,
    publication date, keywords) and perhaps `<image:image>`. A plain sitemap (pages, no
    news) or a sitemap index (a list of sitemaps) is refused with a ParseError saying so."""
    root = _xml_root(data)
    name = etree.QName(root).localname
    if name == "sitemapindex":
        raise ParseError("a sitemap index (a list of sitemaps), not a news sitemap: give one of its sitemaps")
    if name != "urlset":
        raise ParseError(f"not a sitemap: the root element is <{name}>, not <urlset>")
    entries = [url for url in root if _localname(url) == "url"]
    if not any(url.find(f"{{{SITEMAP_NEWS_NS}}}news") is not None for url in entries):
        raise ParseError("a sitemap without news: entries (a plain sitemap lists pages, not stories)")
    return keep_items(entries, _sitemap_story, "the news sitemap")


def _xml_root(data: bytes) -> Any:
    # No DTD loaded, no entity expanded (no billion laughs, no file:// or http:// entity),
    # no network, libxml2's size and depth limits kept.
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                             remove_comments=True, remove_pis=True)
    try:
        root = etree.fromstring(data.removeprefix(b"\xef\xbb\xbf").lstrip(), parser)
    except etree.XMLSyntaxError as exc:
        raise ParseError(f"not a readable sitemap: {exc}") from None
    if root is None:
        raise ParseError("not a readable sitemap: empty")
    dtd = root.getroottree().docinfo.internalDTD
    if dtd is not None and any(True for _ in dtd.iterentities()):
        # Not expanded (above), but a sitemap has no use for its own entities: only a trick would.
        raise ParseError("a sitemap with a DOCTYPE declaring its own entities: refused")
    return root


def _localname(element: Any) -> str:
    return etree.QName(element).localname if isinstance(element.tag, str) else ""


def _child_text(parent: Any, tag: str) -> str:
    found = parent.find(tag)
    return (found.text or "").strip() if found is not None else ""


def _sitemap_story(url: Any) -> StoryIn:
    loc = next(((child.text or "").strip() for child in url if _localname(child) == "loc"), "")
    news = url.find(f"{{{SITEMAP_NEWS_NS}}}news")
    if news is None:
        raise ParseError("no news:news")
    keywords = [one_line(k) for k in _child_text(news, f"{{{SITEMAP_NEWS_NS}}}keywords").split(",") if k.strip()]
    categories, topics, featured = _categories(keywords)
    address = _check_url(loc, "loc")
    image = url.find(f"{{{SITEMAP_IMAGE_NS}}}image/{{{SITEMAP_IMAGE_NS}}}loc")
    return StoryIn(
        url=address,
        title=_check_title(_child_text(news, f"{{{SITEMAP_NEWS_NS}}}title")),
        published_at=_published_at(_child_text(news, f"{{{SITEMAP_NEWS_NS}}}publication_date")),
        image_url=_image_url((image.text or "").strip() if image is not None else None),
        topics=topics,
        featured=featured,
        guid=canonical_url(address),  # the page is the item: its address is its id
        categories=categories,
    )


# ---------------------------------------------------------------- WebSub discovery


@dataclass(frozen=True)
class FeedHub:
    """Where a feed pushes its updates: a WebSub hub, and the topic (the feed's own URL as
    the hub knows it) to subscribe to."""

    hub: str
    topic: str


def feed_hub(data: bytes, fetched_from: str) -> FeedHub | None:
    """The hub a feed advertises (`<link rel="hub">`, `<atom:link rel="hub">` in RSS, a JSON
    Feed's `hubs` of type WebSub) and its topic (`rel="self"` / `feed_url`, else the URL it
    was fetched from); None when it names no http(s) hub."""
    if b"hub" not in data:  # most feeds: no second parse
        return None
    kind = detect_format(data)
    hub, topic = None, None
    if kind == "json":
        try:
            document = _load(data)
        except ParseError:
            return None
        if isinstance(document, dict):
            hubs = document.get("hubs") if isinstance(document.get("hubs"), list) else []
            hub = next((str(h.get("url")) for h in hubs
                        if isinstance(h, dict) and str(h.get("type", "")).lower() == "websub" and h.get("url")), None)
            topic = document.get("feed_url") if isinstance(document.get("feed_url"), str) else None
    elif kind == "feed":
        try:
            parsed = feedparser.parse(io.BytesIO(data))
        except Exception:  # noqa: BLE001 - hostile bytes: no hub, the poll reports the parse
            return None
        links = parsed.feed.get("links", []) if hasattr(parsed, "feed") else []
        hub = next((link.get("href") for link in links if link.get("rel") == "hub" and link.get("href")), None)
        topic = next((link.get("href") for link in links if link.get("rel") == "self" and link.get("href")), None)
    if not hub:
        return None
    try:
        return FeedHub(_check_url(hub, "hub"), _check_url(topic or fetched_from, "topic"))
    except ParseError:
        return None
