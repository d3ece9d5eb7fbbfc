"""Polling one feed: claim it, fetch it (conditionally), file its items as stories, and
record how it went. The one writer of a feed's poll state (validators, last_*, failures,
next_poll_at, the claim) and of feed_items.

A poll is safe to run twice and from two places at once: the claim (`polling_until`, set
by one conditional UPDATE) lets only one poller hold a feed, and a claim left by a crashed
poller lapses after CLAIM_SECONDS. Items are upserted by guid and URL, so polling the same
answer again changes nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from prometheus_client import Counter, Histogram
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from digest.feeds.registry import get_feed, set_active
from digest.feeds.rules import MAX_FAILURES, Mapping, apply_mapping, item_key, next_poll, retry_after
from digest.infra import FetchError, Fetched, FetchStatus, fetch
from digest.stories import IngestResult, ParseError, StoryIn, parse_feed_source, upsert_stories
from digest.store import Feed, FeedItem, utcnow

log = logging.getLogger(__name__)

FEED_MAX_BYTES = 10 * 1024 * 1024
FEED_DEADLINE_SECONDS = 20.0
# Longer than a fetch's whole deadline plus parsing and storing: a live poller never
# loses its claim; a dead one's lapses within two minutes.
CLAIM_SECONDS = 120
ERROR_MAX_CHARS = 500

POLLS = Counter("digest_feed_polls", "Feed polls by outcome", ["outcome"])
POLL_SECONDS = Histogram("digest_feed_poll_seconds", "Time to poll one feed: fetch, parse and store",
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30))

Fetcher = Callable[..., Fetched]


@dataclass(frozen=True)
class PollResult:
    """How one poll went. `outcome`: `stories` (read and filed), `not_modified` (304),
    `failed` (could not fetch or read it; `error` says why), `throttled` (429 or 503: asked
    to wait), `gone` (410: the feed stopped itself), or `skipped` (another poller holds it,
    or it is not due)."""

    feed_id: int
    outcome: str
    added: int = 0
    updated: int = 0
    error: str | None = None


def due_feeds(session: Session, now: datetime, limit: int = 1000) -> list[int]:
    """Active feeds whose next poll is due and that no poller holds, longest waiting first."""
    return list(session.scalars(
        select(Feed.id).where(Feed.active.is_(True), Feed.next_poll_at <= now,
                              or_(Feed.polling_until.is_(None), Feed.polling_until < now))
        .order_by(Feed.next_poll_at).limit(limit)))


def _claim(factory: sessionmaker[Session], feed_id: int, now: datetime, force: bool) -> bool:
    """Take the feed for this poll; False when another poller holds it or (unless `force`,
    someone asked for this poll) it is paused or not yet due."""
    conditions = [Feed.id == feed_id, or_(Feed.polling_until.is_(None), Feed.polling_until < now)]
    if not force:
        conditions += [Feed.active.is_(True), Feed.next_poll_at <= now]
    with factory.begin() as session:
        taken = session.execute(update(Feed).where(*conditions)
                                .values(polling_until=now + timedelta(seconds=CLAIM_SECONDS)))
        return bool(taken.rowcount)


def poll_feed(factory: sessionmaker[Session], feed_id: int, *, force: bool = False, now: datetime | None = None,
              fetcher: Fetcher = fetch) -> PollResult:
    """Poll one feed if it is due and free (`force`: now, even paused or not due; still
    never while another poller holds it). FeedNotFound for an unknown id."""
    started = time.monotonic()
    now = now or utcnow()
    with factory() as session:
        get_feed(session, feed_id)  # FeedNotFound before anything else
    if not _claim(factory, feed_id, now, force):
        return PollResult(feed_id, "skipped")
    try:
        result = _poll_claimed(factory, feed_id, now, fetcher)
    except BaseException:
        _release(factory, feed_id)  # a bug or a kill mid-poll: the next poll may start at once
        raise
    POLLS.labels(result.outcome).inc()
    POLL_SECONDS.observe(time.monotonic() - started)
    log.info("feed %s polled: %s", feed_id, result.outcome,
             extra={"feed_id": feed_id, "outcome": result.outcome, "added": result.added,
                    "updated": result.updated, "error": result.error})
    return result


def _release(factory: sessionmaker[Session], feed_id: int) -> None:
    with factory.begin() as session:
        session.execute(update(Feed).where(Feed.id == feed_id).values(polling_until=None))


def _poll_claimed(factory: sessionmaker[Session], feed_id: int, now: datetime, fetcher: Fetcher) -> PollResult:
    with factory() as session:
        feed = get_feed(session, feed_id)
        url, etag, modified = feed.url, feed.etag, feed.last_modified
        mapping = Mapping(tuple(feed.topics or ()), dict(feed.category_topics or {}), feed.featured,
                          tuple(feed.featured_categories or ()))
    headers = {"Accept": "application/rss+xml, application/atom+xml, application/feed+json, application/json, "
                         "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"}
    if etag:
        headers["If-None-Match"] = etag
    if modified:
        headers["If-Modified-Since"] = modified
    try:
        fetched = fetcher(url, headers=headers, max_bytes=FEED_MAX_BYTES, deadline_seconds=FEED_DEADLINE_SECONDS)
    except FetchStatus as exc:
        if exc.status == 410:
            return _gone(factory, feed_id, now, str(exc))
        wait = retry_after(exc.retry_after, now) if exc.status in (429, 503) else None
        return _failed(factory, feed_id, now, str(exc), wait, "throttled" if exc.status in (429, 503) else "failed")
    except FetchError as exc:
        return _failed(factory, feed_id, now, str(exc))
    if fetched.status == 304:
        return _record(factory, feed_id, now, PollResult(feed_id, "not_modified"), fetched)
    try:
        stories = [apply_mapping(story, mapping) for story in parse_feed_source(fetched.body)]
    except ParseError as exc:
        return _failed(factory, feed_id, now, f"could not read {url}: {exc}")
    for attempt in (1, 2):
        try:
            with factory.begin() as session:
                filed = _file_items(session, feed_id, stories, now)
                return _finish(session, feed_id, now, PollResult(feed_id, "stories", filed.added, filed.changed),
                               fetched)
        except IntegrityError:
            # Another feed filed the same new story a moment before us: now it is known.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _file_items(session: Session, feed_id: int, stories: list[StoryIn], now: datetime) -> IngestResult:
    """Upsert the feed's items as stories, recognising each by the feed's id for it (so a
    changed link or title updates the story rather than adding one), and remember new ids.
    A story missing from this answer is left alone: feeds drop old items, that is no
    retraction."""
    by_key: dict[str, StoryIn] = {}
    for story in stories:
        by_key.setdefault(item_key(story), story)  # a guid repeated in one feed: the first
    known = dict(session.execute(select(FeedItem.guid, FeedItem.story_id)
                                 .where(FeedItem.feed_id == feed_id, FeedItem.guid.in_(list(by_key)))).all())
    result = upsert_stories(session, list(by_key.values()),
                            known={story.url: known[key] for key, story in by_key.items() if key in known})
    for key, story in by_key.items():
        if key not in known and story.url in result.ids:
            session.add(FeedItem(feed_id=feed_id, guid=key, story_id=result.ids[story.url], first_seen_at=now))
    session.flush()
    return result


def _record(factory: sessionmaker[Session], feed_id: int, now: datetime, result: PollResult,
            fetched: Fetched | None = None) -> PollResult:
    with factory.begin() as session:
        return _finish(session, feed_id, now, result, fetched)


def _finish(session: Session, feed_id: int, now: datetime, result: PollResult,
            fetched: Fetched | None = None, wait: timedelta | None = None) -> PollResult:
    """Write how the poll went and let go of the feed."""
    feed = get_feed(session, feed_id)
    failed = result.outcome in ("failed", "throttled", "gone")
    feed.failures = feed.failures + 1 if failed else 0
    feed.last_fetched_at = now
    feed.last_status = result.outcome
    feed.last_error = (result.error or "")[:ERROR_MAX_CHARS] or None
    feed.next_poll_at = max(next_poll(now, feed.every_minutes, feed.failures), now + (wait or timedelta(0)))
    feed.polling_until = None
    if fetched is not None:  # a good answer: 2xx, or 304 to our validators
        if fetched.status != 304:
            feed.etag = _header(fetched, "etag")
            feed.last_modified = _header(fetched, "last-modified")
        if fetched.moved_to and fetched.moved_to != feed.url and session.scalar(
                select(Feed.id).where(Feed.url == fetched.moved_to)) is None:
            log.info("feed %s moved for good to %s", feed_id, fetched.moved_to, extra={"feed_id": feed_id})
            feed.url = fetched.moved_to  # 301/308: the new address from now on
    if failed and result.outcome != "gone" and feed.failures >= MAX_FAILURES:
        set_active(session, feed_id, False, now,
                   f"paused after {feed.failures} failed polls in a row: {feed.last_error}"[:300])
    return result


def _header(fetched: Fetched, name: str) -> str | None:
    value = " ".join(str(fetched.headers.get(name) or "").split())
    return value[:100 if name == "last-modified" else 500] or None


def _failed(factory: sessionmaker[Session], feed_id: int, now: datetime, error: str,
            wait: timedelta | None = None, outcome: str = "failed") -> PollResult:
    with factory.begin() as session:
        return _finish(session, feed_id, now, PollResult(feed_id, outcome, error=error), wait=wait)


def _gone(factory: sessionmaker[Session], feed_id: int, now: datetime, error: str) -> PollResult:
    """410: the publisher took the feed down for good. It stops, with the reason."""
    with factory.begin() as session:
        result = _finish(session, feed_id, now, PollResult(feed_id, "gone", error=error))
        set_active(session, feed_id, False, now, f"gone: {error}"[:300])
        return result

