"""Polling a feed over real HTTP (a loopback server allowed through DIGEST_FETCH_ALLOW):
conditional GETs, 301/410/429, backoff and pausing itself, bad answers recorded on the
feed alone, items filed by guid, and the per-feed claim."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from digest.feeds import MAX_FAILURES, FeedNotFound, FeedSettings, add_feed, due_feeds, poll_feed
from digest.store import Feed, FeedItem, Story, StoryStatus, session_factory, utcnow
from tests.support.http_server import (
    LocalServer,
    allow_loopback,
    conditional,
    gzipped,
    huge,
    local_server,
    page,
    redirect,
    trickle,
)

TOPICS = ["politics", "world", "business", "technology", "science", "health", "sports", "culture"]


def rss(*items: tuple[str, str, str], categories: tuple[str, ...] = ()) -> bytes:
    """An RSS 2.0 feed of (guid, link, title) items, newest first."""
    tags = "".join(f"<category>{c}</category>" for c in categories)
    entries = "".join(
        f"<item><guid isPermaLink=\"false\">{guid}</guid><link>{link}</link><title>{title}</title>"
        f"<description>About {title}.</description>{tags}"
        f"<pubDate>{format_datetime(NEWEST - timedelta(minutes=n), usegmt=True)}</pubDate></item>"
        for n, (guid, link, title) in enumerate(items))
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>Desk</title>'
            f"<link>https://news.example.com/</link>{entries}</channel></rss>").encode()


NEWEST = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
ONE = ("g1", "https://news.example.com/2026/12/one", "One")
TWO = ("g2", "https://news.example.com/2026/12/two", "Two")


@pytest.fixture
def factory(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalServer]:
    with local_server() as server:
        allow_loopback(monkeypatch, f"127.0.0.1:{server.port}")
        yield server


def register(factory: sessionmaker[Session], url: str, **settings: object) -> int:
    with factory.begin() as session:
        return add_feed(session, url, FeedSettings(**settings), TOPICS).id  # type: ignore[arg-type]


def feed(factory: sessionmaker[Session], feed_id: int) -> Feed:
    with factory() as session:
        return session.get_one(Feed, feed_id)


def stories(factory: sessionmaker[Session]) -> dict[str, Story]:
    with factory() as session:
        return {s.url: s for s in session.scalars(select(Story))}


def test_a_feed_is_read_then_answered_304_to_its_own_validators(factory: sessionmaker[Session],
                                                                 server: LocalServer) -> None:
    server.routes["/feed"] = conditional(rss(ONE, TWO), '"v1"', "Tue, 01 Dec 2026 10:00:00 GMT")
    feed_id = register(factory, server.url("/feed"), topics="world", featured=True)

    first = poll_feed(factory, feed_id, force=True)
    second = poll_feed(factory, feed_id, force=True)

    assert (first.outcome, first.added) == ("stories", 2)
    assert second.outcome == "not_modified" and second.added == 0
    assert server.seen[1][1].get("If-None-Match") == '"v1"'
    assert server.seen[1][1].get("If-Modified-Since") == "Tue, 01 Dec 2026 10:00:00 GMT"
    kept = stories(factory)
    assert sorted(kept) == [ONE[1], TWO[1]]
    assert all(s.topics == ["world"] and s.featured for s in kept.values())
    state = feed(factory, feed_id)
    assert (state.etag, state.last_status, state.failures) == ('"v1"', "not_modified", 0)
    assert state.next_poll_at - state.last_fetched_at == timedelta(minutes=15)
    assert "digest/" in server.seen[0][1]["User-Agent"]


def test_a_factory_bound_to_a_connection_polls_through_its_sessions(engine: Engine, server: LocalServer) -> None:
    # The claim and the finish go to the factory's engine directly when it has one; any
    # other factory still polls, through Sessions.
    server.routes["/feed"] = conditional(rss(ONE), '"v1"', "Tue, 01 Dec 2026 10:00:00 GMT")
    with engine.connect() as connection:
        bound = sessionmaker(connection, expire_on_commit=False)
        feed_id = register(bound, server.url("/feed"))

        outcomes = [poll_feed(bound, feed_id, force=True).outcome for _ in range(2)]

        state = feed(bound, feed_id)
    assert outcomes == ["stories", "not_modified"]
    assert (state.etag, state.last_status, state.polling_until) == ('"v1"', "not_modified", None)


def test_items_are_recognised_by_guid_changed_ones_update_and_vanished_ones_stay(
        factory: sessionmaker[Session], server: LocalServer) -> None:
    server.routes["/feed"] = page(rss(ONE, TWO), "application/rss+xml")
    feed_id = register(factory, server.url("/feed"))
    poll_feed(factory, feed_id, force=True)
    with factory() as session:
        one_id = session.scalar(select(Story.id).where(Story.url == ONE[1]))
    # The newsroom fixes One's headline and moves it; Two drops out of the feed.
    moved = ("g1", "https://news.example.com/2026/12/one-fixed", "One, corrected")
    server.routes["/feed"] = page(rss(moved), "application/rss+xml")

    result = poll_feed(factory, feed_id, force=True)

    assert (result.outcome, result.added, result.updated) == ("stories", 0, 1)
    kept = stories(factory)
    assert sorted(kept) == [moved[1], TWO[1]]
    assert kept[moved[1]].id == one_id and kept[moved[1]].title == "One, corrected"
    assert kept[TWO[1]].status == StoryStatus.PUBLISHED  # gone from the feed is not retracted
    with factory() as session:
        assert session.scalar(select(FeedItem.story_id).where(FeedItem.guid == "g1")) == one_id


def test_a_301_moves_the_feed_for_good_and_a_302_does_not(factory: sessionmaker[Session],
                                                          server: LocalServer) -> None:
    server.routes["/new"] = page(rss(ONE), "application/rss+xml")
    server.routes["/old"] = redirect(server.url("/new"), 301)
    server.routes["/temp"] = redirect(server.url("/new"), 302)
    moved, borrowed = register(factory, server.url("/old")), register(factory, server.url("/temp"))

    poll_feed(factory, moved, force=True)
    poll_feed(factory, borrowed, force=True)

    assert feed(factory, moved).url == server.url("/new")
    assert feed(factory, borrowed).url == server.url("/temp")


def test_a_410_stops_the_feed_with_the_reason(factory: sessionmaker[Session], server: LocalServer) -> None:
    server.routes["/feed"] = page(b"gone", "text/plain", 410)
    feed_id = register(factory, server.url("/feed"))

    result = poll_feed(factory, feed_id, force=True)

    state = feed(factory, feed_id)
    assert result.outcome == "gone" and not state.active
    assert state.paused_reason == f"gone: could not fetch {server.url('/feed')}: HTTP 410"
    with factory() as session:
        assert feed_id not in due_feeds(session, utcnow() + timedelta(days=30))


def test_429_and_503_wait_as_long_as_the_server_asks(factory: sessionmaker[Session], server: LocalServer) -> None:
    server.routes["/busy"] = page(b"slow down", "text/plain", 429, headers={"Retry-After": "7200"})
    server.routes["/down"] = page(b"maintenance", "text/plain", 503, headers={"Retry-After": "60"})
    busy, down = register(factory, server.url("/busy")), register(factory, server.url("/down"))

    assert poll_feed(factory, busy, force=True).outcome == "throttled"
    assert poll_feed(factory, down, force=True).outcome == "throttled"

    waited = feed(factory, busy)
    assert waited.next_poll_at - waited.last_fetched_at == timedelta(hours=2)
    # A short Retry-After never makes the poll sooner than the backoff would.
    retried = feed(factory, down)
    assert retried.next_poll_at - retried.last_fetched_at == timedelta(minutes=30)


def test_failures_back_off_and_the_feed_pauses_itself_after_too_many(factory: sessionmaker[Session],
                                                                      server: LocalServer) -> None:
    server.routes["/feed"] = page(b"oops", "text/plain", 500)
    feed_id = register(factory, server.url("/feed"))

    waits = []
    for _ in range(MAX_FAILURES):
        assert poll_feed(factory, feed_id, force=True).outcome == "failed"
        state = feed(factory, feed_id)
        waits.append(state.next_poll_at - state.last_fetched_at)

    assert waits[:3] == [timedelta(minutes=30), timedelta(minutes=60), timedelta(minutes=120)]
    assert waits[-1] == timedelta(hours=6)
    assert not state.active and state.failures == MAX_FAILURES
    assert state.paused_reason == (f"paused after {MAX_FAILURES} failed polls in a row: "
                                   f"could not fetch {server.url('/feed')}: HTTP 500")


@pytest.mark.parametrize(("route", "error"), [
    (page(b"<!doctype html><html><head><title>Home</title></head><body>news</body></html>"),
     "not a feed: the address answers with an HTML page"),
    (page(b"<rss version='2.0'><channel><item><title>cut", "application/rss+xml"), "truncated"),
    (page(b"just some text\nnot a feed\n\nreally", "text/plain"), "date line: not a date: 'not a feed'"),
    (huge(11 * 1024 * 1024), "too large"),
    (redirect("/loop"), "redirect loop"),
])
def test_a_bad_answer_is_recorded_on_its_feed_alone(factory: sessionmaker[Session], server: LocalServer,
                                                    route: object, error: str) -> None:
    server.routes["/good"] = gzipped(rss(ONE), "application/rss+xml")
    server.routes["/loop"] = route  # type: ignore[assignment]
    good, bad = register(factory, server.url("/good")), register(factory, server.url("/loop"))

    results = {feed_id: poll_feed(factory, feed_id, force=True) for feed_id in (bad, good)}

    assert results[good].outcome == "stories" and results[good].added == 1
    assert results[bad].outcome == "failed" and error in (results[bad].error or "")
    assert error in (feed(factory, bad).last_error or "")
    assert "Traceback" not in (feed(factory, bad).last_error or "")


def test_a_trickling_server_is_cut_off_by_the_polls_deadline(factory: sessionmaker[Session], server: LocalServer,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("digest.feeds.poll.FEED_DEADLINE_SECONDS", 1.0)
    server.routes["/feed"] = trickle(0.2, 100)
    feed_id = register(factory, server.url("/feed"))

    started = time.monotonic()
    result = poll_feed(factory, feed_id, force=True)

    assert time.monotonic() - started < 5
    assert result.outcome == "failed" and result.error == f"could not fetch {server.url('/feed')}: timed out"


@pytest.mark.parametrize("url", ["http://127.0.0.1:6379/", "http://2130706433/feed", "http://[::1]/feed",
                                 "http://169.254.169.254/latest/meta-data/", "http://10.0.0.8/feed"])
def test_a_feed_on_a_private_address_is_refused_at_each_poll(factory: sessionmaker[Session], url: str) -> None:
    feed_id = register(factory, url)

    result = poll_feed(factory, feed_id, force=True)

    assert result.outcome == "failed" and result.error == f"could not fetch {url}: refused (private address)"


def test_one_poll_at_a_time_per_feed_and_only_when_due(factory: sessionmaker[Session], server: LocalServer) -> None:
    hold = threading.Event()

    def slow(handler: object) -> None:
        hold.wait(10)
        page(rss(ONE), "application/rss+xml")(handler)  # type: ignore[arg-type]

    server.routes["/feed"] = slow
    feed_id = register(factory, server.url("/feed"))
    results: list[str] = []
    pollers = [threading.Thread(target=lambda: results.append(poll_feed(factory, feed_id).outcome))
               for _ in range(4)]
    for poller in pollers:
        poller.start()
    deadline = time.monotonic() + 10
    while len(results) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    hold.set()
    for poller in pollers:
        poller.join(15)

    assert sorted(results) == ["skipped", "skipped", "skipped", "stories"]
    assert len(server.seen) == 1
    assert poll_feed(factory, feed_id).outcome == "skipped"  # polled: not due for 15 minutes
    with factory() as session:
        assert due_feeds(session, utcnow()) == []


def test_an_unknown_feed_is_not_found(factory: sessionmaker[Session]) -> None:
    with pytest.raises(FeedNotFound, match="no feed with id 404"):
        poll_feed(factory, 404)


FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "stories"


@pytest.mark.parametrize(("name", "content_type"), [("jsonfeed-1.1.json", "application/feed+json"),
                                                    ("jsonfeed-1.0.json", "application/json"),
                                                    ("news-sitemap.xml", "application/xml")])
def test_json_feeds_and_news_sitemaps_are_polled_like_rss(factory: sessionmaker[Session], server: LocalServer,
                                                          name: str, content_type: str) -> None:
    server.routes["/feed"] = page((FIXTURES / name).read_bytes(), content_type)
    feed_id = register(factory, server.url("/feed"))

    first = poll_feed(factory, feed_id, force=True)
    again = poll_feed(factory, feed_id, force=True)

    assert first.outcome == "stories" and first.added >= 2
    assert (again.outcome, again.added) == ("stories", 0)  # the same items: recognised, nothing new
    assert all("utm_" not in url for url in stories(factory))  # one story per article, tracking stripped


def test_ten_thousand_items_and_absurd_dates_are_bounded_and_skipped(factory: sessionmaker[Session],
                                                                    server: LocalServer) -> None:
    items = [(f"g{n}", f"https://news.example.com/2026/12/{n}", f"Story {n}") for n in range(10_000)]
    body = rss(*items).replace(b"<pubDate>Tue, 01 Dec 2026 09:00:00 GMT</pubDate>",
                               b"<pubDate>Thu, 01 Jan 1970 00:00:00 GMT</pubDate>", 1)
    server.routes["/feed"] = page(body, "application/rss+xml")
    feed_id = register(factory, server.url("/feed"))

    result = poll_feed(factory, feed_id, force=True)

    assert result.outcome == "stories" and result.added == 1000  # the first 1,000 with a believable date
    kept = stories(factory)
    assert items[0][1] not in kept and items[1000][1] in kept and items[1001][1] not in kept


def test_a_plain_text_article_is_a_feed_of_one_story_at_its_address(factory: sessionmaker[Session],
                                                                    server: LocalServer) -> None:
    from digest.stories import load_source

    server.routes["/article.txt"] = page(load_source("sample:sample_article.txt"), "text/plain; charset=utf-8")
    feed_id = register(factory, server.url("/article.txt"))

    result = poll_feed(factory, feed_id, force=True)

    assert (result.outcome, result.added) == ("stories", 1)
    [story] = stories(factory).values()
    assert story.url == server.url("/article.txt") and story.title.startswith("Zelensky Insists Bakhmut")
