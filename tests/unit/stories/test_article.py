"""Article pages (HTML) become clean stories: fields from JSON-LD, then OpenGraph and
article: meta, then the page; the text trafilatura finds, without the navigation, the
sign-up box, the related headlines or the captions. Served by a real loopback server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.store.models import Story
from digest.stories import ParseError, StoryIn, ingest_source, load_source, parse_source
from tests.support.http_server import LocalServer, allow_loopback, local_server, page, redirect
from tests.support.samples import article_page

PLAIN = load_source("sample:sample_article.txt").decode()
CANONICAL = "https://news.example.com/2023/05/zelensky-insists-bakhmut-is-not-occupied-by-russia"
AROUND_THE_STORY = ["Get the featured stories", "Don't miss out", "Sign up", "Biden Team Holds Presser",
                    "Navarro Comments", "Related stories", "PHOTO:", "Bakhmut, February 2023", "Politics\n",
                    "Sections", "All rights reserved", "By Dana Whit", "Read more exclusive news"]


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalServer]:
    with local_server({"/2023/05/zelensky": page(article_page(PLAIN, CANONICAL))}) as running:
        allow_loopback(monkeypatch, f"127.0.0.1:{running.port}")
        yield running


def the_plain_sample() -> StoryIn:
    [story] = parse_source(PLAIN.encode(), origin="sample:sample_article.txt")
    return story


def only(stories: list[StoryIn]) -> StoryIn:
    assert len(stories) == 1
    return stories[0]


def test_the_sample_article_page_becomes_the_same_clean_story_as_the_plain_text(
        session: Session, server: LocalServer) -> None:
    result = ingest_source(session, server.url("/2023/05/zelensky"))

    assert (result.added, result.updated) == (1, 0)
    (stored,) = session.scalars(select(Story)).all()
    plain = the_plain_sample()
    assert (stored.url, stored.title, stored.published_at, stored.summary, stored.body) == (
        plain.url, plain.title, plain.published_at, plain.summary, plain.body)
    for text in AROUND_THE_STORY:
        assert text not in stored.summary and text not in stored.body, text
    # What the plain text cannot say, the page's JSON-LD does.
    assert stored.image_url == "https://news.example.com/images/bakhmut.jpg"
    assert stored.author == "Dana Whit"
    assert stored.topics == ["world", "ukraine", "russia", "bakhmut"]


def test_the_page_and_the_plain_text_are_one_story_not_two(session: Session, server: LocalServer) -> None:
    ingest_source(session, "sample:sample_article.txt")

    result = ingest_source(session, server.url("/2023/05/zelensky"))

    assert (result.added, result.updated) == (0, 1)


def test_json_ld_comes_before_open_graph() -> None:
    story = only(parse_source(article_page(PLAIN, CANONICAL), origin="https://news.example.com/x"))

    assert story.image_url == "https://news.example.com/images/bakhmut.jpg"  # not og-bakhmut.jpg


def test_open_graph_and_article_meta_stand_in_for_json_ld() -> None:
    story = only(parse_source(article_page(PLAIN, CANONICAL, json_ld=False), origin="https://news.example.com/x"))

    assert story.title == the_plain_sample().title
    assert story.published_at == datetime(2023, 5, 22, tzinfo=UTC)
    assert story.image_url == "https://news.example.com/images/og-bakhmut.jpg"
    assert story.topics == ["world", "ukraine"]
    assert story.author is None  # article:author is a profile URL, not a byline
    assert story.url == CANONICAL


def test_the_page_itself_is_the_last_resort() -> None:
    story = only(parse_source(article_page(PLAIN, CANONICAL, json_ld=False, open_graph=False),
                              origin="https://news.example.com/x"))

    assert story.title == "Zelensky Insists Bakhmut “is Not Occupied” by Russia"  # the <h1>, not the <title>
    assert story.published_at == datetime(2023, 5, 22, tzinfo=UTC)  # <time datetime>
    assert story.body == the_plain_sample().body
    assert (story.image_url, story.author, story.topics) == (None, None, [])


def test_the_description_is_the_summary_when_the_page_has_one() -> None:
    described = article_page(PLAIN, CANONICAL, description="Zelensky says Bakhmut holds.")

    story = only(parse_source(described, origin="https://news.example.com/x"))

    assert story.summary == "Zelensky says Bakhmut holds."
    assert story.body == the_plain_sample().body


def test_the_reported_page_that_failed_as_a_plain_text_date_line() -> None:
    """The page from the bug report: meta tags first, read as a plain-text article before."""
    reported = (b'<html>\n<meta property="og:title" content="Budget passes the Senate">\n'
                b'<meta property="article:published_time" content="2026-11-30T18:05:00-05:00">\n'
                b'<meta property="og:description" content="A late vote ends the standoff.">\n'
                b"<body><article><p>The Senate passed the budget late on Monday after a week of talks.</p>"
                b"<p>The House votes on Wednesday.</p></article></body></html>")

    story = only(parse_source(reported, origin="https://news.example.com/2026/11/budget"))

    assert (story.title, story.summary) == ("Budget passes the Senate", "A late vote ends the standoff.")
    assert story.published_at == datetime(2026, 11, 30, 23, 5, tzinfo=UTC)
    assert story.url == "https://news.example.com/2026/11/budget"


def test_a_canonical_url_on_another_site_is_not_believed() -> None:
    foreign = article_page(PLAIN, "https://victim.example.org/their-story", json_ld=False)

    story = only(parse_source(foreign, origin="https://blog.example.net/post"))

    assert story.url == "https://blog.example.net/post"


def test_the_address_after_redirects_is_the_story_without_a_canonical(
        session: Session, server: LocalServer) -> None:
    bare = b"<!doctype html><title>Short</title><h1>Short story</h1><p>" + b"Words here. " * 30 + b"</p>"
    server.routes["/final"] = page(bare)
    server.routes["/old"] = redirect("/final", 301)

    ingest_source(session, server.url("/old"))

    (stored,) = session.scalars(select(Story)).all()
    assert (stored.url, stored.title) == (server.url("/final"), "Short story")


def test_url_given_by_the_asker_wins(session: Session, server: LocalServer) -> None:
    ingest_source(session, server.url("/2023/05/zelensky"), url="https://news.example.com/chosen")

    assert session.scalars(select(Story.url)).all() == ["https://news.example.com/chosen"]


@pytest.mark.parametrize(("markup", "reason"), [
    (b"<!doctype html><html><body><nav><a href='/'>Home</a></nav></body></html>", "no headline"),
    (b"<!doctype html><html><head><title>T</title></head><body></body></html>", "no description and no article text"),
    ((b'<!doctype html><html><head><meta property="og:title" content="T">'
      b'<meta property="article:published_time" content="the other day"></head><body><p>Text.</p></body></html>'),
     "date: not a date"),
])
def test_a_page_that_is_no_article_says_why(markup: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse_source(markup, origin="https://news.example.com/x")


def test_broken_json_ld_falls_back_to_the_meta_tags() -> None:
    broken = article_page(PLAIN, CANONICAL).replace(b'{"@context"', b'{"@context" oops', 1)

    story = only(parse_source(broken, origin="https://news.example.com/x"))

    assert story.image_url == "https://news.example.com/images/og-bakhmut.jpg"


def test_an_html_file_without_a_url_takes_its_canonical_address() -> None:
    story = only(parse_source(article_page(PLAIN, CANONICAL), origin="upload"))

    assert story.url == CANONICAL
