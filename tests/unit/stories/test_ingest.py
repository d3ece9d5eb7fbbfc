"""Ingest: load a source (package sample, file or http URL) and upsert its stories by URL."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.infra import FetchError
from digest.store.models import Story, StoryStatus
from digest.stories import ParseError, ingest_source
from digest.stories.ingest import load_source, parse_source
from tests.support.http_server import allow_loopback
from tests.support.queries import count_rows
from tests.support.samples import RSS

BOILERPLATE = ["Read more exclusive news", "Get the featured stories", "Biden Team Holds Presser",
               "Navarro Comments", "PHOTO:"]


def story_by_url(session: Session, url: str) -> Story:
    return session.scalars(select(Story).where(Story.url == url)).one()


def write_json(path: Path, items: list[dict[str, object]]) -> str:
    path.write_text(json.dumps(items), encoding="utf-8")
    return str(path)


# ------------------------------------------------------------------ samples


def test_sample_article_is_stored_clean(session: Session) -> None:
    result = ingest_source(session, "sample:sample_article.txt")

    assert (result.added, result.updated) == (1, 0)
    (story,) = session.scalars(select(Story)).all()
    assert story.title == "Zelensky Insists Bakhmut “is Not Occupied” by Russia"
    assert story.published_at.date() == date(2023, 5, 22)
    assert story.summary == story.body.split("\n\n")[0]
    assert story.summary.startswith("Ukrainian President Volodymyr Zelensky insisted Sunday")
    for text in BOILERPLATE:
        assert text not in story.summary and text not in story.body
    # No URL in a plain-text article: it is placed under the publisher's site.
    assert story.url == "https://news.example.com/2023/05/zelensky-insists-bakhmut-is-not-occupied-by-russia"


def test_sample_feed_is_stored_with_topics(session: Session) -> None:
    result = ingest_source(session, "sample:sample_feed.json")

    assert result.added >= 12 and result.updated == 0
    stories = session.scalars(select(Story)).all()
    assert len(stories) == result.added
    assert all(story.topics for story in stories)
    assert {topic for story in stories for topic in story.topics} >= {"politics", "world", "business"}


@pytest.mark.parametrize("source", ["sample:sample_feed.json", "sample:sample_article.txt"])
def test_reingesting_a_source_updates_and_never_duplicates(session: Session, source: str) -> None:
    first = ingest_source(session, source)
    rows = count_rows(session, Story)

    second = ingest_source(session, source)
    third = ingest_source(session, source)

    assert count_rows(session, Story) == rows == first.added
    assert (second.added, second.updated) == (0, first.added)
    assert (third.added, third.updated) == (0, first.added)


# ------------------------------------------------------------------ upsert rules

ITEM = {"url": "https://news.example.com/a", "title": "Old title", "published_at": "2023-05-22T10:00:00Z",
        "summary": "Old summary.", "topics": ["politics"]}


def test_reingest_updates_the_fields_the_source_gives(session: Session, tmp_path: Path) -> None:
    ingest_source(session, write_json(tmp_path / "a.json", [ITEM]))

    changed = {**ITEM, "title": "New title", "summary": "New summary.", "topics": ["world"]}
    result = ingest_source(session, write_json(tmp_path / "a.json", [changed]))

    story = story_by_url(session, ITEM["url"])
    assert (result.added, result.updated) == (0, 1)
    assert (story.title, story.summary, story.topics) == ("New title", "New summary.", ["world"])


def test_editors_featured_flag_is_kept_when_the_source_is_silent(session: Session, tmp_path: Path) -> None:
    source = write_json(tmp_path / "a.json", [ITEM])  # no "featured" key
    ingest_source(session, source)
    story = story_by_url(session, ITEM["url"])
    assert story.featured is False
    story.featured = True
    story.pinned = True
    session.flush()

    ingest_source(session, source)

    session.refresh(story)
    assert story.featured is True
    assert story.pinned is True


def test_editors_featured_flag_is_kept_on_rss_reingest(session: Session, tmp_path: Path) -> None:
    feed = tmp_path / "feed.xml"
    feed.write_bytes(RSS)
    ingest_source(session, str(feed))
    second = story_by_url(session, "https://news.example.com/second")  # no "featured" category
    second.featured = True
    session.flush()

    ingest_source(session, str(feed))

    session.refresh(second)
    assert second.featured is True
    assert story_by_url(session, "https://news.example.com/first").featured is True


def test_source_that_states_featured_wins(session: Session, tmp_path: Path) -> None:
    ingest_source(session, write_json(tmp_path / "a.json", [{**ITEM, "featured": True}]))

    ingest_source(session, write_json(tmp_path / "a.json", [{**ITEM, "featured": False}]))

    assert story_by_url(session, ITEM["url"]).featured is False


def test_reingest_never_unretracts(session: Session, tmp_path: Path) -> None:
    source = write_json(tmp_path / "a.json", [ITEM])
    ingest_source(session, source)
    story_by_url(session, ITEM["url"]).status = StoryStatus.RETRACTED
    session.flush()

    ingest_source(session, source)

    assert story_by_url(session, ITEM["url"]).status == StoryStatus.RETRACTED


def test_same_url_twice_in_one_source_is_one_row(session: Session, tmp_path: Path) -> None:
    twice = [ITEM, {**ITEM, "title": "Later title"}]

    result = ingest_source(session, write_json(tmp_path / "a.json", twice))

    assert result.added == 1
    assert count_rows(session, Story) == 1
    assert story_by_url(session, ITEM["url"]).title == "Later title"


def test_a_bad_source_writes_nothing(session: Session, tmp_path: Path) -> None:
    ingest_source(session, "sample:sample_feed.json")
    before = count_rows(session, Story)
    bad = [ITEM, {**ITEM, "url": "https://news.example.com/b", "published_at": "soon"}]

    with pytest.raises(ParseError, match="item 2: published_at"):
        ingest_source(session, write_json(tmp_path / "bad.json", bad))

    assert count_rows(session, Story) == before


# ------------------------------------------------------------------ local files


def test_missing_file_is_a_parse_error(tmp_path: Path) -> None:
    with pytest.raises(ParseError, match="cannot read"):
        load_source(str(tmp_path / "nope.json"))


def test_folder_is_a_parse_error(tmp_path: Path) -> None:
    with pytest.raises(ParseError, match="is a folder"):
        load_source(str(tmp_path))


# ------------------------------------------------------------------ http


class _Handler(BaseHTTPRequestHandler):
    pages: dict[str, tuple[str, bytes]] = {}

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        page = self.pages.get(self.path)
        if page is None:
            self.send_error(404, "Not Found")
            return
        content_type, body = page
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
        pass


@pytest.fixture
def http_base(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 serving RSS, JSON and an article, allowed through
    DIGEST_FETCH_ALLOW; its base URL."""
    _Handler.pages = {
        "/feed.xml": ("application/rss+xml", RSS),
        "/stories.json": ("application/json", load_source("sample:sample_feed.json")),
        "/article.txt": ("text/plain; charset=utf-8", load_source("sample:sample_article.txt")),
    }
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    allow_loopback(monkeypatch, f"127.0.0.1:{server.server_address[1]}")
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_ingest_rss_over_http(session: Session, http_base: str) -> None:
    result = ingest_source(session, f"{http_base}/feed.xml")

    assert result.added == 2
    assert story_by_url(session, "https://news.example.com/first").topics == ["politics", "world-news"]


def test_ingest_json_over_http_twice_does_not_duplicate(session: Session, http_base: str) -> None:
    first = ingest_source(session, f"{http_base}/stories.json")
    second = ingest_source(session, f"{http_base}/stories.json")

    assert first.added >= 12
    assert (second.added, second.updated) == (0, first.added)
    assert count_rows(session, Story) == first.added


def test_article_over_http_takes_its_url_from_the_address(session: Session, http_base: str) -> None:
    ingest_source(session, f"{http_base}/article.txt")

    (story,) = session.scalars(select(Story)).all()
    assert story.url == f"{http_base}/article.txt"
    assert story.title == "Zelensky Insists Bakhmut “is Not Occupied” by Russia"


def test_http_error_status_is_one_line(http_base: str) -> None:
    with pytest.raises(FetchError, match=rf"^could not fetch {http_base}/missing.xml: HTTP 404$"):
        load_source(f"{http_base}/missing.xml")


def test_unreachable_url_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    allow_loopback(monkeypatch, f"127.0.0.1:{port}")

    with pytest.raises(FetchError, match="cannot connect$"):
        load_source(f"http://127.0.0.1:{port}/feed.xml")


def test_a_loopback_url_not_allowed_is_refused(http_base: str, monkeypatch: pytest.MonkeyPatch) -> None:
    allow_loopback(monkeypatch)  # nothing allowed: the server is the machine's own

    with pytest.raises(FetchError, match=rf"^could not fetch {http_base}/feed.xml: refused \(private address\)$"):
        load_source(f"{http_base}/feed.xml")


def test_the_samples_can_be_moved_to_now_keeping_their_spacing(session: Session) -> None:
    """What `digest demo` does, so that a newcomer's newsletter (a 48 h window) finds them."""
    exact = parse_source(load_source("sample:sample_feed.json"), origin="sample:sample_feed.json")
    newest = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
    ingest_source(session, "sample:sample_feed.json", newest=newest)
    stored = {s.url: s.published_at for s in session.scalars(select(Story))}
    assert max(stored.values()) == newest
    latest = max(story.published_at for story in exact)
    assert {story.url: newest - (latest - story.published_at) for story in exact} == stored
