"""Parsing sources into StoryIn: plain-text articles, RSS, Atom and JSON; bad bytes fail
with ParseError and nothing else."""

from __future__ import annotations

import gzip
import json
import random
from datetime import UTC, date, datetime
from importlib import resources
from xml.sax.saxutils import escape

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest.stories import ParseError, StoryIn
from digest.stories.ingest import parse_source
from digest.stories.parse import parse_article, parse_feed, parse_json
from tests.support.samples import ATOM, RSS

SAMPLE_ARTICLE = (resources.files("digest") / "data" / "sample_article.txt").read_bytes()
SAMPLE_FEED = (resources.files("digest") / "data" / "sample_feed.json").read_bytes()
ARTICLE_URL = "https://news.example.com/2023/05/zelensky"


def article() -> StoryIn:
    return parse_article(SAMPLE_ARTICLE.decode("utf-8"), ARTICLE_URL)


# ------------------------------------------------------------------ plain-text article


def test_sample_article_title_date_and_summary() -> None:
    story = article()

    assert story.title == "Zelensky Insists Bakhmut “is Not Occupied” by Russia"
    assert story.published_at.date() == date(2023, 5, 22)
    assert story.published_at.tzinfo is not None
    assert story.summary == (
        "Ukrainian President Volodymyr Zelensky insisted Sunday that the city of Bakhmut "
        "“is not occupied” by Russia “as of today,” while speaking at the G-7 summit in "
        "Hiroshima, Japan."
    )
    assert story.summary == story.body.split("\n\n")[0]
    assert story.url == ARTICLE_URL


@pytest.mark.parametrize(
    "boilerplate",
    ["Read more exclusive news", "Get the featured stories", "Biden Team Holds Presser",
     "Navarro Comments", "PHOTO:"],
)
def test_sample_article_drops_site_boilerplate(boilerplate: str) -> None:
    story = article()

    assert boilerplate not in story.summary
    assert boilerplate not in story.body
    assert boilerplate not in story.title


def test_sample_article_keeps_every_paragraph_of_the_story() -> None:
    paragraphs = article().body.split("\n\n")

    assert len(paragraphs) == 10
    assert paragraphs[-1].startswith("Ukraine has yet to begin an anticipated major counteroffensive")
    assert all(p == p.strip() and "\n" not in p for p in paragraphs)


def test_article_with_crlf_lines_parses_the_same() -> None:
    crlf = SAMPLE_ARTICLE.decode("utf-8").replace("\n", "\r\n")

    assert parse_article(crlf, ARTICLE_URL) == article()


def test_article_caption_is_skipped_but_later_text_kept() -> None:
    text = "A Title\n\n2023-05-22\n\nFirst.\n\nPhoto: a caption\n\nSecond.\n\nRelated:\n\nOther headline\n"

    story = parse_article(text, ARTICLE_URL)

    assert story.body == "First.\n\nSecond."


# ------------------------------------------------------------------ RSS and Atom


def test_rss_items_become_stories() -> None:
    first, second = parse_feed(RSS)

    assert first.title == "First & foremost"
    assert first.url == "https://news.example.com/first"
    assert first.published_at == datetime(2023, 5, 22, 10, 0, tzinfo=UTC)
    assert first.topics == ["politics", "world-news"]
    assert first.featured is True
    assert first.image_url == "https://news.example.com/first.jpg"
    assert first.author == "Ann Lee"  # the byline, not "desk@news.example.com (Ann Lee)"
    assert second.published_at == datetime(2023, 5, 23, 8, 0, tzinfo=UTC)
    assert second.topics == []
    assert second.featured is None  # the feed says nothing: an editor's choice stands


def test_rss_html_summary_becomes_text() -> None:
    first, second = parse_feed(RSS)

    assert first.summary == "Hello world & more."
    assert "<" not in first.summary and "alert" not in first.summary
    assert second.summary == "Plain summary."


def test_atom_entry_becomes_a_story() -> None:
    (story,) = parse_feed(ATOM)

    assert story.title == "Atom headline & co"
    assert story.url == "https://news.example.com/atom-1"
    assert story.published_at == datetime(2023, 5, 21, 8, 30, tzinfo=UTC)
    assert story.summary == "Atom summary text."
    assert story.body == "Para one.\n\nPara two."
    assert story.topics == ["science", "technology"]
    assert story.author == "Bea Ray"


# ------------------------------------------------------------------ JSON


def test_sample_feed_has_stories_with_topics() -> None:
    stories = parse_json(SAMPLE_FEED)

    assert len(stories) >= 12
    assert all(story.topics for story in stories)
    assert all(story.url.startswith("https://") for story in stories)
    assert len({story.url for story in stories}) == len(stories)
    assert any(story.featured for story in stories) and not all(story.featured for story in stories)


def test_json_summary_falls_back_to_first_paragraph_of_body() -> None:
    data = json.dumps([{"url": "https://a.example/x", "title": "T", "published_at": "2023-05-22",
                        "body": "One two.\n\nThree."}]).encode()

    (story,) = parse_json(data)

    assert story.summary == "One two."
    assert story.featured is None


def test_json_object_with_stories_key_is_accepted() -> None:
    data = json.dumps({"stories": json.loads(SAMPLE_FEED)}).encode()

    assert parse_json(data) == parse_json(SAMPLE_FEED)


GOOD_ITEM = {"url": "https://a.example/x", "title": "T", "published_at": "2023-05-22T10:00:00Z"}


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([{"title": "T", "published_at": "2023-05-22"}], "item 1: url: not an http(s) URL"),
        ([GOOD_ITEM, {**GOOD_ITEM, "url": "javascript:alert(1)"}], "item 2: url: not an http(s) URL"),
        ([GOOD_ITEM, {**GOOD_ITEM, "title": "  "}], "item 2: title: missing"),
        ([{**GOOD_ITEM, "published_at": None}], "item 1: published_at: missing"),
        ([{**GOOD_ITEM, "published_at": "the other day"}], "item 1: published_at: not a date"),
        ([{**GOOD_ITEM, "published_at": "2023-05-22T10:00:00+25:00"}], "item 1: published_at: not a date"),
        # found by fuzz/targets.py json: dateutil raised decimal.InvalidOperation
        ([{**GOOD_ITEM, "published_at": "2023-05-15T08:30" + "0" * 120 + ":00Z"}], "item 1: published_at: not a date"),
        ([{**GOOD_ITEM, "featured": "yes"}], "item 1: featured: must be true or false"),
        ([{**GOOD_ITEM, "topics": 5}], "item 1: topics: must be a list"),
        ([{**GOOD_ITEM, "image_url": "ftp://a.example/i.jpg"}], "item 1: image_url: not an http(s) URL"),
        ([GOOD_ITEM, GOOD_ITEM, 3], "item 3: not an object"),
        ({"items": []}, "JSON must be a list of story objects"),
    ],
)
def test_json_with_a_bad_item_names_the_item_and_field(items: object, message: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_json(json.dumps(items).encode())

    assert str(caught.value).startswith(message)


# ------------------------------------------------------------------ bad bytes


def _cuts(doc: bytes, step: int) -> list[bytes]:
    return [doc[:cut] for cut in range(1, len(doc), step)] + [doc[:-1]]


JUNK = {
    "empty": b"",
    "whitespace": b"  \n\t\r\n ",
    "bom only": b"\xef\xbb\xbf",
    "nul bytes": b"\x00" * 64,
    "png": b"\x89PNG\r\n\x1a\n" + bytes(range(256)),
    "gzipped feed": gzip.compress(RSS),
    "random bytes": random.Random(7).randbytes(4096),
    "utf-16 feed": RSS.decode("utf-8").encode("utf-16"),
    "html page": b"<!DOCTYPE html>\n<html>\n<body><h1>Not Found</h1></body>\n</html>\n",
    "rss without items": b'<?xml version="1.0"?><rss version="2.0"><channel><title>x</title></channel></rss>',
    "atom without entries": b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>x</title></feed>',
    "rss items without links": b'<rss version="2.0"><channel><item><title>x</title></item></channel></rss>',
    "feed with bad xml encoding": b'<?xml version="1.0" encoding="\xffutf-8"?><rss version="2.0"></rss>',
    "feed with bad charref": RSS.replace(b"GMT</pubDate>", b"&#xFFFFFFF;</pubDate>", 1),
    "json, truncated": SAMPLE_FEED[: len(SAMPLE_FEED) // 2],
    "json, not a list": b'"stories"',
    "json, bad utf-8": b'[{"title": "\xff"}]',
    "article without a date line": b"Title\n\nNot a date at all\n\nA paragraph.\n",
    "article with only a title": b"Title only\n",
}
TRUNCATED = {f"rss cut at {len(cut)}": cut for cut in _cuts(RSS, 23)}
TRUNCATED |= {f"atom cut at {len(cut)}": cut for cut in _cuts(ATOM, 23)}


@pytest.mark.parametrize("data", JUNK.values(), ids=JUNK.keys())
def test_junk_raises_parse_error(data: bytes) -> None:
    with pytest.raises(ParseError) as caught:
        parse_source(data, url=ARTICLE_URL)

    assert str(caught.value)


@pytest.mark.parametrize("data", TRUNCATED.values(), ids=TRUNCATED.keys())
def test_truncated_feed_raises_parse_error(data: bytes) -> None:
    # A cut-off feed must not be taken in part: its last entry would be half a story.
    with pytest.raises(ParseError):
        parse_source(data, url=ARTICLE_URL)


def _mutate(data: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    out = bytearray(data)
    for position, delete, insert in edits:
        at = position % (len(out) + 1)
        out[at : at + delete] = insert
    return bytes(out)


EDITS = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=10_000),
        st.integers(min_value=0, max_value=40),
        st.one_of(st.binary(max_size=6),
                  st.sampled_from([b"<", b">", b"&", b'"', b"\x00", b"\xff", b"]]>", b"<![CDATA[",
                                   b"&#0;", b"&#xFFFFFFF;", b"null", b"1e999", b"+25:00"])),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(base=st.sampled_from([RSS, ATOM, SAMPLE_FEED, SAMPLE_ARTICLE]), edits=EDITS)
def test_damaged_sources_give_stories_or_parse_error_only(base: bytes, edits: list) -> None:
    data = _mutate(base, edits)
    try:
        stories = parse_source(data, url=ARTICLE_URL)
    except ParseError:
        return
    for story in stories:
        assert story.title and "\n" not in story.title and "\r" not in story.title
        assert story.url.startswith(("http://", "https://"))
        assert story.published_at.tzinfo is not None


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(data=st.binary(max_size=2048))
def test_arbitrary_bytes_give_stories_or_parse_error_only(data: bytes) -> None:
    try:
        parse_source(data, url=ARTICLE_URL)
    except ParseError:
        pass


@pytest.mark.parametrize(("author", "byline"), [
    ("desk@news.example.com (News Desk)", "News Desk"),
    ("News Desk <desk@news.example.com>", "News Desk"),
    ("desk@news.example.com", None),
    ("Ann  Lee", "Ann Lee"),
])
def test_a_feed_authors_address_never_reaches_the_byline(author: str, byline: str | None) -> None:
    feed = ("<?xml version='1.0'?><rss version='2.0'><channel><title>T</title><item><title>A story</title>"
            "<link>https://news.example.com/a</link><pubDate>Mon, 22 May 2023 10:00:00 GMT</pubDate>"
            f"<author>{escape(author)}</author></item></channel></rss>").encode()
    [story] = parse_feed(feed)
    assert story.author == byline
