"""Polling one feed: claim it, fetch it (conditionally), file its items as stories, and
record how it went. The one writer of a feed's poll state (validators, last_*, failures,
next_poll_at, the claim) and of feed_items.

A poll is safe to run twice and from two places at once: the claim (`polling_until`, set
by one conditional UPDATE) lets only one poller hold a feed, and a claim left by a crashed
poller lapses after CLAIM_SECONDS. Items are upserted by guid and URL, so polling the same
answer again changes nothing.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from datetime import datetime, timedelta

from prometheus_client import Counter, Histogram
from sqlalchemy import Connection, Engine, Update, bindparam, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from digest.feeds.registry import FeedNotFound
from digest.config import get_settings
from digest.feeds.rules import MAX_FAILURES, Mapping, apply_mapping, item_key, next_poll, retry_after
from digest.feeds.websub import needs_subscription, signature_matches, subscribe
from digest.infra import FetchError, Fetched, FetchStatus, fetch
from digest.stories import FeedHub, IngestResult, ParseError, StoryIn, feed_hub, parse_feed_source, upsert_stories
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
    hub: FeedHub | None = None  # the WebSub hub a full answer advertised


def due_feeds(session: Session, now: datetime, limit: int = 1000) -> list[int]:
    """Active feeds whose next poll is due and that no poller holds, longest waiting first."""
    return list(session.scalars(
        select(Feed.id).where(Feed.active.is_(True), Feed.next_poll_at <= now,
                              or_(Feed.polling_until.is_(None), Feed.polling_until < now))
        .order_by(Feed.next_poll_at).limit(limit)))


@dataclass(frozen=True)
class _Claimed:
    """What a poll needs of its feed, read in the claim's transaction."""

    id: int
    url: str
    etag: str | None
    last_modified: str | None
    every_minutes: int
    failures: int
    mapping: Mapping
    hub_url: str | None
    hub_state: str | None
    hub_lease_until: datetime | None
    hub_requested_at: datetime | None


# The claim and the finish run on every poll, and a poll answered 304 costs a few ms of
# CPU, so they are Core statements built once, with bound parameters: an ORM UPDATE built
# per call spent more CPU building the statement, generating its cache key and
# synchronising a session it did not need than PostgreSQL spent running it.
_FEEDS = Feed.__table__
_FREE = or_(_FEEDS.c.polling_until.is_(None),
            _FEEDS.c.polling_until < bindparam("now", type_=_FEEDS.c.polling_until.type))
_CLAIM_ANY = (update(_FEEDS)
              .where(_FEEDS.c.id == bindparam("feed_id", type_=_FEEDS.c.id.type), _FREE)
              .values(polling_until=bindparam("until", type_=_FEEDS.c.polling_until.type))
              .returning(_FEEDS.c.url, _FEEDS.c.etag, _FEEDS.c.last_modified, _FEEDS.c.every_minutes,
                         _FEEDS.c.failures, _FEEDS.c.topics, _FEEDS.c.category_topics, _FEEDS.c.featured,
                         _FEEDS.c.featured_categories, _FEEDS.c.hub_url, _FEEDS.c.hub_state,
                         _FEEDS.c.hub_lease_until, _FEEDS.c.hub_requested_at))
_CLAIM_DUE = _CLAIM_ANY.where(_FEEDS.c.active.is_(True),
                              _FEEDS.c.next_poll_at <= bindparam("now", type_=_FEEDS.c.next_poll_at.type))


@functools.cache
def _set_feed(columns: tuple[str, ...]) -> Update:
    """UPDATE feeds SET <columns> WHERE id = :feed_id, its values bound as set_<column>:
    one statement per set of columns (a poll writes one of a few), so each is compiled
    once and then found in the engine's compiled cache. KeyError for a column feeds has not."""
    return (update(_FEEDS).where(_FEEDS.c.id == bindparam("feed_id", type_=_FEEDS.c.id.type))
            .values({_FEEDS.c[name]: bindparam(f"set_{name}", type_=_FEEDS.c[name].type) for name in columns}))


def _write_feed(db: Connection | Session, feed_id: int, values: dict[str, object]) -> None:
    db.execute(_set_feed(tuple(values)),
               {"feed_id": feed_id, **{f"set_{name}": value for name, value in values.items()}})


@contextmanager
def _autocommit(factory: sessionmaker[Session]) -> Iterator[Connection | Session]:
    """Where the claim, the release and a poll that files nothing write: each statement
    commits itself. They are one UPDATE each (the finish may read first whether a moved
    feed's new address is taken, which one transaction at READ COMMITTED would not make
    atomic either), so a transaction around them only added BEGIN and COMMIT round trips;
    and an ORM Session's begin, connection and commit cost about as much CPU as the Core
    statements themselves. A factory not bound to one engine (bound to a connection, or
    to several engines) is used as it is: a Session transaction, committed on leaving."""
    bind = factory.kw.get("bind")
    if isinstance(bind, Engine):
        with bind.connect() as connection:
            yield connection.execution_options(isolation_level="AUTOCOMMIT")
    else:
        with factory.begin() as session:
            yield session


def _claim(factory: sessionmaker[Session], feed_id: int, now: datetime, force: bool) -> _Claimed | None:
    """Take the feed for this poll and read what the poll needs; None when another poller
    holds it or (unless `force`: someone asked for this poll) it is paused or not yet due.
    FeedNotFound for an unknown id."""
    with _autocommit(factory) as db:
        # One statement takes the feed and reads what the poll needs (RETURNING: PostgreSQL
        # and SQLite 3.35+): a 304 poll is a few milliseconds, round trips a large share.
        row = db.execute(_CLAIM_ANY if force else _CLAIM_DUE,
                         {"feed_id": feed_id, "now": now,
                          "until": now + timedelta(seconds=CLAIM_SECONDS)}).one_or_none()
        if row is None:
            if db.scalar(select(Feed.id).where(Feed.id == feed_id)) is None:
                raise FeedNotFound(f"no feed with id {feed_id}")
            return None
    return _Claimed(feed_id, row.url, row.etag, row.last_modified, row.every_minutes, row.failures, _mapping(row),
                    row.hub_url, row.hub_state, row.hub_lease_until, row.hub_requested_at)


def _mapping(row: Any) -> Mapping:
    """A feed's mapping from a row holding its topics, category_topics, featured and
    featured_categories columns."""
    return Mapping(tuple(row.topics or ()), dict(row.category_topics or {}), row.featured,
                   tuple(row.featured_categories or ()))


def poll_feed(factory: sessionmaker[Session], feed_id: int, *, force: bool = False, now: datetime | None = None,
              fetcher: Fetcher = fetch) -> PollResult:
    """Poll one feed if it is due and free (`force`: now, even paused or not due; still
    never while another poller holds it). FeedNotFound for an unknown id."""
    started = time.monotonic()
    now = now or utcnow()
    claimed = _claim(factory, feed_id, now, force)
    if claimed is None:
        return PollResult(feed_id, "skipped")
    try:
        result = _poll_claimed(factory, claimed, now, fetcher)
    except BaseException:
        _release(factory, feed_id)  # a bug or a kill mid-poll: the next poll may start at once
        raise
    POLLS.labels(result.outcome).inc()
    POLL_SECONDS.observe(time.monotonic() - started)
    if _wants_subscription(claimed, result, now):
        subscribe(factory, feed_id, get_settings().base_url, now)  # its failure is on the feed, not the poll
    log.info("feed %s polled: %s", feed_id, result.outcome,
             extra={"feed_id": feed_id, "outcome": result.outcome, "added": result.added,
                    "updated": result.updated, "error": result.error})
    return result


def _wants_subscription(claimed: _Claimed, result: PollResult, now: datetime) -> bool:
    """After a good poll: the hub the feed advertises now (a full answer's, or the one kept
    when it answered 304) needs a subscription. A hub other than the one we knew starts
    from nothing: no state, never asked."""
    if result.outcome == "not_modified":
        hub_url = claimed.hub_url
    elif result.outcome == "stories" and result.hub is not None:
        hub_url = result.hub.hub
    else:
        return False
    if hub_url != claimed.hub_url:
        return needs_subscription(hub_url, None, None, None, now)
    return needs_subscription(hub_url, claimed.hub_state, claimed.hub_lease_until, claimed.hub_requested_at, now)


def _release(factory: sessionmaker[Session], feed_id: int) -> None:
    with _autocommit(factory) as db:
        _write_feed(db, feed_id, {"polling_until": None})


def _poll_claimed(factory: sessionmaker[Session], claimed: _Claimed, now: datetime, fetcher: Fetcher) -> PollResult:
    feed_id, url = claimed.id, claimed.url
    headers = {"Accept": "application/rss+xml, application/atom+xml, application/feed+json, application/json, "
                         "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"}
    if claimed.etag:
        headers["If-None-Match"] = claimed.etag
    if claimed.last_modified:
        headers["If-Modified-Since"] = claimed.last_modified
    try:
        fetched = fetcher(url, headers=headers, max_bytes=FEED_MAX_BYTES, deadline_seconds=FEED_DEADLINE_SECONDS)
    except FetchStatus as exc:
        throttled = exc.status in (429, 503)
        outcome = "gone" if exc.status == 410 else "throttled" if throttled else "failed"
        wait = retry_after(exc.retry_after, now) if throttled else None
        return _record(factory, claimed, now, PollResult(feed_id, outcome, error=str(exc)), wait=wait)
    except FetchError as exc:
        return _record(factory, claimed, now, PollResult(feed_id, "failed", error=str(exc)))
    if fetched.status == 304:
        return _record(factory, claimed, now, PollResult(feed_id, "not_modified"), fetched)
    try:
        stories = [apply_mapping(story, claimed.mapping) for story in parse_feed_source(fetched.body, fetched.url)]
        hub = feed_hub(fetched.body, fetched.url)
    except ParseError as exc:
        return _record(factory, claimed, now, PollResult(feed_id, "failed", error=f"could not read {url}: {exc}"))
    return _file_retrying(factory, feed_id, stories, now, lambda session, filed: _finish(
        session, claimed, now, PollResult(feed_id, "stories", filed.added, filed.changed, hub=hub), fetched))


def file_pushed(factory: sessionmaker[Session], feed_id: int, body: bytes, signature: str | None,
                now: datetime | None = None) -> PollResult:
    """A hub's push for the feed: its signature checked against our secret before anything
    is read, then its items filed exactly as a poll files them. `pushed`, or `forged` (a
    wrong or missing signature, or no subscription: ignored, as WebSub asks), or `failed`
    (signed but unreadable). FeedNotFound for an unknown id."""
    now = now or utcnow()
    with factory() as session:
        row = session.execute(select(Feed.hub_secret, Feed.hub_state, Feed.topics, Feed.category_topics,
                                     Feed.featured, Feed.featured_categories).where(Feed.id == feed_id)).one_or_none()
    if row is None:
        raise FeedNotFound(f"no feed with id {feed_id}")
    if row.hub_state not in ("requested", "verified") or not signature_matches(row.hub_secret, body, signature):
        result = PollResult(feed_id, "forged")
    else:
        try:
            stories = [apply_mapping(story, _mapping(row)) for story in parse_feed_source(body)]
        except ParseError as exc:
            result = PollResult(feed_id, "failed", error=f"a pushed update could not be read: {exc}")
        else:
            result = _file_retrying(factory, feed_id, stories, now,
                                    lambda _, filed: PollResult(feed_id, "pushed", filed.added, filed.changed))
    POLLS.labels(f"push_{result.outcome}").inc()
    log.info("feed %s push: %s", feed_id, result.outcome,
             extra={"feed_id": feed_id, "outcome": result.outcome, "added": result.added, "error": result.error})
    return result


def _file_retrying(factory: sessionmaker[Session], feed_id: int, stories: list[StoryIn], now: datetime,
                   then: Callable[[Session, IngestResult], PollResult]) -> PollResult:
    """File the items and, in the same transaction, `then` (record the poll, or name the
    push's outcome). Tried twice: another feed (or a poll beside a push) may have filed the
    same new story a moment before us, and on the second try it is known."""
    for attempt in (1, 2):
        try:
            with factory.begin() as session:
                return then(session, _file_items(session, feed_id, stories, now))
        except IntegrityError:
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


def _record(factory: sessionmaker[Session], claimed: _Claimed, now: datetime, result: PollResult,
            fetched: Fetched | None = None, wait: timedelta | None = None) -> PollResult:
    with _autocommit(factory) as db:
        return _finish(db, claimed, now, result, fetched, wait)


def _finish(db: Connection | Session, claimed: _Claimed, now: datetime, result: PollResult,
            fetched: Fetched | None = None, wait: timedelta | None = None) -> PollResult:
    """Write how the poll went and let go of the feed: one UPDATE (the claim means no one
    else wrote the poll state since it was read). A 410 stops the feed; failures in a row
    past MAX_FAILURES pause it, with the reason."""
    failed = result.outcome in ("failed", "throttled", "gone")
    failures = claimed.failures + 1 if failed else 0
    error = (result.error or "")[:ERROR_MAX_CHARS] or None
    values: dict[str, object] = {
        "failures": failures, "last_fetched_at": now, "last_status": result.outcome, "last_error": error,
        "next_poll_at": max(next_poll(now, claimed.every_minutes, failures), now + (wait or timedelta(0))),
        "polling_until": None,
    }
    if fetched is not None:  # a good answer: 2xx, or 304 to our validators
        if fetched.status != 304:
            values.update(etag=_header(fetched, "etag"), last_modified=_header(fetched, "last-modified"),
                          hub_url=result.hub.hub if result.hub else None,
                          hub_topic=result.hub.topic if result.hub else None)
        if fetched.moved_to and fetched.moved_to != claimed.url and db.scalar(
                select(Feed.id).where(Feed.url == fetched.moved_to)) is None:
            log.info("feed %s moved for good to %s", claimed.id, fetched.moved_to, extra={"feed_id": claimed.id})
            values["url"] = fetched.moved_to  # 301/308: the new address from now on
    # Pausing is in the same UPDATE: what set_active(False, reason) writes, as a Core
    # statement for a Connection as well as a Session.
    if result.outcome == "gone":  # 410: the publisher took the feed down for good
        values.update(active=False, paused_reason=f"gone: {error}"[:300])
    elif failed and failures >= MAX_FAILURES:
        values.update(active=False, paused_reason=f"paused after {failures} failed polls in a row: {error}"[:300])
    _write_feed(db, claimed.id, values)
    return result


def _header(fetched: Fetched, name: str) -> str | None:
    value = " ".join(str(fetched.headers.get(name) or "").split())
    return value[:100 if name == "last-modified" else 500] or None
