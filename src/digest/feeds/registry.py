"""The feeds a publisher registered: add, list, change, pause, resume, remove. The one
writer of a feed's settings and of whether it is polled (`active`, `paused_reason`);
digest.feeds.poll writes how its polls went."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import case, delete, func, select
from sqlalchemy.orm import Session

from digest.errors import Conflict, Invalid, NotFound
from digest.feeds.rules import DEFAULT_EVERY_MINUTES, EVERY_MINUTES_MAX, EVERY_MINUTES_MIN
from digest.store import Feed, FeedItem, utcnow

URL_MAX_CHARS = 2048


class FeedError(Invalid):
    """A feed's settings that cannot be used; `fields` names each bad one."""

    default_code = "invalid_feed"

    def __init__(self, message: str, *, fields: dict[str, str] | None = None, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.fields = fields or {}


class FeedNotFound(NotFound):
    default_code = "feed_not_found"


class FeedExists(Conflict):
    default_code = "feed_exists"


@dataclass(frozen=True)
class FeedSettings:
    """What an editor sets on a feed; None leaves a field as it is (on add: its default)."""

    every_minutes: int | None = None
    topics: str | Iterable[str] | None = None
    category_topics: dict[str, str] | None = None
    featured: bool | None = None
    featured_categories: str | Iterable[str] | None = None


def check_url(raw: Any) -> str:
    """A feed's address: a whole http(s) URL with a host, no whitespace. Whether it may be
    fetched (not a private address) is the fetcher's to say, at every poll."""
    url = str(raw or "").strip()
    parts = urlsplit(url) if url else None
    if (parts is None or parts.scheme.lower() not in ("http", "https") or not parts.netloc
            or any(ch.isspace() or ord(ch) < 32 for ch in url)):
        raise FeedError(f"url: not an http(s) URL: {url[:80]!r}", fields={"url": "Give the feed's whole http(s) address."})
    if len(url) > URL_MAX_CHARS:
        raise FeedError(f"url: longer than {URL_MAX_CHARS} characters", fields={"url": "Too long."})
    return url


def _words(raw: str | Iterable[str] | None) -> list[str]:
    items = raw.replace(";", ",").split(",") if isinstance(raw, str) else list(raw or [])
    return list(dict.fromkeys(str(item).strip().lower() for item in items if str(item).strip()))


def check_feed(url: str | None, settings: FeedSettings, allowed_topics: list[str]) -> dict[str, Any]:
    """A feed's address (unless None) and settings, checked all at once without storing
    anything: FeedError names every bad field. The checked values by field name."""
    return _checked(settings, allowed_topics, url)


def _checked(settings: FeedSettings, allowed_topics: list[str], url: str | None = None) -> dict[str, Any]:
    """The settings given (and the address, unless None), checked all at once: FeedError
    names every bad field."""
    values: dict[str, Any] = {}
    bad: dict[str, str] = {}
    url_message = ""
    if url is not None:
        try:
            values["url"] = check_url(url)
        except FeedError as exc:
            bad.update(exc.fields)
            url_message = exc.message
    if settings.every_minutes is not None:
        if not EVERY_MINUTES_MIN <= settings.every_minutes <= EVERY_MINUTES_MAX:
            bad["every_minutes"] = f"Between {EVERY_MINUTES_MIN} and {EVERY_MINUTES_MAX} minutes."
        values["every_minutes"] = settings.every_minutes
    if settings.topics is not None:
        topics = _words(settings.topics)
        if unknown := [t for t in topics if t not in allowed_topics]:
            bad["topics"] = f"Unknown topic(s) {', '.join(unknown)}; known: {', '.join(allowed_topics)}."
        values["topics"] = topics
    if settings.category_topics is not None:
        mapping = {str(k).strip().lower(): str(v).strip().lower() for k, v in settings.category_topics.items()
                   if str(k).strip()}
        if unknown := sorted({t for t in mapping.values() if t not in allowed_topics}):
            bad["category_topics"] = f"Unknown topic(s) {', '.join(unknown)}; known: {', '.join(allowed_topics)}."
        values["category_topics"] = mapping
    if settings.featured is not None:
        values["featured"] = bool(settings.featured)
    if settings.featured_categories is not None:
        values["featured_categories"] = _words(settings.featured_categories)
    if bad:
        raise FeedError("; ".join([url_message] * bool(url_message)
                                  + [f"{name}: {why}" for name, why in bad.items() if name != "url"]), fields=bad)
    return values


def add_feed(session: Session, url: str, settings: FeedSettings, allowed_topics: list[str]) -> Feed:
    """A new feed, due at once (its first poll is the caller's to ask for)."""
    values = _checked(settings, allowed_topics, url)
    address = values.pop("url")
    if session.scalar(select(Feed.id).where(Feed.url == address)) is not None:
        raise FeedExists(f"the feed {address} is already registered")
    feed = Feed(url=address, every_minutes=values.get("every_minutes", DEFAULT_EVERY_MINUTES),
                topics=values.get("topics", []), category_topics=values.get("category_topics", {}),
                featured=values.get("featured", False), featured_categories=values.get("featured_categories", []),
                active=True, failures=0, next_poll_at=utcnow())
    session.add(feed)
    session.flush()
    return feed


def get_feed(session: Session, feed_id: int) -> Feed:
    feed = session.get(Feed, feed_id)
    if feed is None:
        raise FeedNotFound(f"no feed with id {feed_id}")
    return feed


def edit_feed(session: Session, feed_id: int, settings: FeedSettings, allowed_topics: list[str],
              url: str | None = None) -> dict[str, tuple[Any, Any]]:
    """Change a feed's settings; {field: (was, now)} for each that changed. A new interval
    applies from the next poll."""
    feed = get_feed(session, feed_id)
    values = _checked(settings, allowed_topics, url)
    address = values.pop("url", None)
    if address is not None and address != feed.url:
        if session.scalar(select(Feed.id).where(Feed.url == address, Feed.id != feed.id)) is not None:
            raise FeedExists(f"the feed {address} is already registered")
        values["url"] = address
        values["etag"], values["last_modified"] = None, None  # validators belong to the old address
    changed = {}
    for name, value in values.items():
        if getattr(feed, name) != value:
            changed[name] = (getattr(feed, name), value)
            setattr(feed, name, value)
    return {k: v for k, v in changed.items() if k not in ("etag", "last_modified")}


def set_active(session: Session, feed_id: int, active: bool, now: datetime, reason: str | None = None) -> bool:
    """Pause (with the reason when the feed stopped itself) or resume; False when it already
    was so. A resumed feed is due at once and its failure count starts again."""
    feed = get_feed(session, feed_id)
    if feed.active == active and (active or feed.paused_reason == reason):
        return False
    feed.active = active
    feed.paused_reason = None if active else reason
    if active:
        feed.failures = 0
        feed.next_poll_at = now
    return True


def remove_feed(session: Session, feed_id: int) -> Feed:
    """Forget a feed and its items' ids; its stories stay (editions may carry them)."""
    feed = get_feed(session, feed_id)
    session.execute(delete(FeedItem).where(FeedItem.feed_id == feed.id))
    session.delete(feed)
    session.flush()
    return feed


def list_feeds(session: Session) -> list[tuple[Feed, int]]:
    """Every feed with how many stories it brought, those needing a look first: paused by
    themselves, then failing, then the rest by address."""
    counts = dict(session.execute(select(FeedItem.feed_id, func.count()).group_by(FeedItem.feed_id)).all())
    order = case((Feed.paused_reason.is_not(None), 0), (Feed.failures > 0, 1), else_=2)
    feeds = session.scalars(select(Feed).order_by(order, Feed.url)).all()
    return [(feed, counts.get(feed.id, 0)) for feed in feeds]


def new_in_last_poll(session: Session) -> dict[int, int]:
    """How many items each feed's last poll saw for the first time, by feed id (feeds whose
    last poll brought none are missing). A poll stamps its new items' `first_seen_at` and
    the feed's `last_fetched_at` with the same instant."""
    rows = session.execute(
        select(FeedItem.feed_id, func.count()).join(Feed, Feed.id == FeedItem.feed_id)
        .where(FeedItem.first_seen_at == Feed.last_fetched_at).group_by(FeedItem.feed_id)).all()
    return {feed_id: n for feed_id, n in rows}


def feed_state(feed: Feed) -> str:
    """`stopped` (it paused itself: `paused_reason` says why), `paused` (by staff),
    `failing` (polled, but its last poll failed), or `active`."""
    if not feed.active:
        return "stopped" if feed.paused_reason else "paused"
    return "failing" if feed.failures else "active"
