"""JSON Feed, Google News sitemaps and the rules every feed's items share (RSS and Atom
included): a bad item is skipped, not the feed; the first of each guid is kept; at most
FEED_ITEMS_MAX items; story URLs canonical, image URLs as given."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.stories import ParseError
from digest.stories.formats import FEED_ITEMS_MAX, parse_json_feed, parse_json_source, parse_rss_atom, parse_sitemap
from digest.stories.ingest import parse_source
from digest.stories.parse import detect_format
from tests.support.samples import RSS

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "stories"
JSON_FEED_1_1 = (FIXTURES / "jsonfeed-1.1.json").read_bytes()
JSON_FEED_1_0 = (FIXTURES / "jsonfeed-1.0.json").read_bytes()
NEWS_SITEMAP = (FIXTURES / "news-sitemap.xml").read_bytes()
PLAIN_SITEMAP = (FIXTURES / "sitemap.xml").read_bytes()
SITEMAP_INDEX = (FIXTURES / "sitemap-index.xml").read_bytes()
MAY_22 = datetime(2023, 5, 22, 10, 0, tzinfo=UTC)


# ------------------------------------------------------------------ one feed, three formats


def rss(items: list[dict[str, Any]]) -> bytes:
    def item(i: dict[str, Any]) -> str:
        when = i.get("date")
        date = format_datetime(when) if isinstance(when, datetime) else when
        return "<item>" + "".join([
            f"<title>{escape(i['title'])}</title>" if i.get("title") else "",
            f"<link>{escape(i['url'])}</link>",
            f'<guid isPermaLink="false">{escape(i["id"])}</guid>' if i.get("id") else "",
            f"<pubDate>{escape(date)}</pubDate>" if date else "",
        ]) + "</item>"
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>News</title>'
            f'<link>https://news.example.com/</link>{"".join(item(i) for i in items)}</channel></rss>').encode()


def json_feed(items: list[dict[str, Any]]) -> bytes:
    def item(i: dict[str, Any]) -> dict[str, Any]:
        when = i.get("date")
        return {key: value for key, value in {
            "id": i.get("id"), "url": i["url"], "title": i.get("title"),
            "date_published": when.isoformat() if isinstance(when, datetime) else when,
        }.items() if value is not None}
    return json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "News",
                       "items": [item(i) for i in items]}).encode()


def sitemap(items: list[dict[str, Any]]) -> bytes:
    def url(i: dict[str, Any]) -> str:
        when = i.get("date")
        date = when.isoformat() if isinstance(when, datetime) else when
        return "<url>" + "".join([
            f"<loc>{escape(i['url'])}</loc><news:news>",
            f"<news:publication_date>{escape(date)}</news:publication_date>" if date else "",
            f"<news:title>{escape(i['title'])}</news:title>" if i.get("title") else "",
            "</news:news>",
        ]) + "</url>"
    return ('<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
            'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">'
            f'{"".join(url(i) for i in items)}</urlset>').encode()


FORMATS = {"rss": (rss, parse_rss_atom), "jsonfeed": (json_feed, parse_json_feed), "sitemap": (sitemap, parse_sitemap)}


def good(n: int, **changes: Any) -> dict[str, Any]:
    return {"id": f"id-{n}", "url": f"https://news.example.com/{n}", "title": f"Story {n}", "date": MAY_22} | changes


def urls(stories: list[Any]) -> list[str]:
    return [story.url for story in stories]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("bad", "reason"), [
    ({"title": None}, "title: missing"),
    ({"title": "   "}, "title: missing"),
    ({"url": "javascript:alert(1)"}, "not an http(s) URL"),
    ({"url": "https://news.example.com/a b"}, "not an http(s) URL"),
    ({"date": "the day before yesterday"}, "not a date"),
    ({"date": datetime(1970, 1, 1, tzinfo=UTC)}, "before 1990"),
    ({"date": datetime(1989, 12, 31, 23, 0, tzinfo=UTC)}, "before 1990"),
    ({"date": datetime.now(UTC).replace(microsecond=0) + timedelta(days=365)}, "days ahead"),
    ({"date": datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)}, "days ahead"),
])
def test_a_bad_item_is_skipped_and_the_rest_kept(fmt: str, bad: dict[str, Any], reason: str) -> None:
    build, parse = FORMATS[fmt]

    stories = parse(build([good(1), good(2, **bad), good(3)]))

    assert urls(stories) == ["https://news.example.com/1", "https://news.example.com/3"]
    # RSS: parse_feed itself skips an entry without a title, a link or a readable date
    in_parse_feed = fmt == "rss" and not reason.startswith(("before", "days"))
    with pytest.raises(ParseError, match="no entry with both" if in_parse_feed else re.escape(reason)):
        parse(build([good(2, **bad)]))


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_date_a_day_ahead_is_kept(fmt: str) -> None:
    """A publisher's clock or time zone a little off: within FUTURE_SKEW_MAX_DAYS."""
    build, parse = FORMATS[fmt]
    tomorrow = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)

    [story] = parse(build([good(1, date=tomorrow)]))

    assert story.published_at == tomorrow


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_first_of_each_guid_or_url_is_kept(fmt: str) -> None:
    build, parse = FORMATS[fmt]
    items = [good(1), good(2, id="id-1", title="Same guid, new link"), good(3),
             good(4, url="https://news.example.com/3?utm_source=rss#top", title="Same story, tracked")]

    stories = parse(build(items))

    # a sitemap's guid is its address: item 2 is a story of its own there
    expected = [1, 2, 3] if fmt == "sitemap" else [1, 3]
    assert urls(stories) == [f"https://news.example.com/{n}" for n in expected]
    assert stories[0].title == "Story 1"


@pytest.mark.parametrize(("fmt", "count"), [("jsonfeed", 10_000), ("sitemap", 10_000), ("rss", FEED_ITEMS_MAX + 50)])
def test_a_long_feed_gives_its_first_items_only(fmt: str, count: int) -> None:
    build, parse = FORMATS[fmt]

    stories = parse(build([good(n) for n in range(count)]))

    assert len(stories) == FEED_ITEMS_MAX == 1000
    assert stories[0].url == "https://news.example.com/0"
    assert stories[-1].url == f"https://news.example.com/{FEED_ITEMS_MAX - 1}"


@pytest.mark.parametrize("fmt", FORMATS)
def test_story_urls_are_canonical(fmt: str) -> None:
    build, parse = FORMATS[fmt]

    [story] = parse(build([good(1, url="https://News.Example.com:443/1?utm_source=x&fbclid=y&page=2#comments")]))

    assert story.url == "https://news.example.com/1?page=2"


def test_an_rss_story_url_is_canonical_but_its_image_is_as_given() -> None:
    tracked = RSS.replace(b"https://news.example.com/first<", b"https://news.example.com/first?utm_medium=rss<")
    tracked = tracked.replace(b"first.jpg", b"first.jpg?utm_medium=rss")

    first = parse_source(tracked)[0]

    assert first.url == "https://news.example.com/first"
    assert first.image_url == "https://news.example.com/first.jpg?utm_medium=rss"


# ------------------------------------------------------------------ JSON Feed


def test_json_feed_1_1_items_become_stories() -> None:
    bakhmut, markets, link_post = parse_source(JSON_FEED_1_1)

    assert bakhmut.url == "https://news.example.com/2023/05/bakhmut?page=2"
    assert bakhmut.guid == "https://news.example.com/?p=1001"
    assert bakhmut.title == "Zelensky Insists Bakhmut “is Not Occupied” by Russia"
    assert bakhmut.summary.startswith("Ukrainian President Volodymyr Zelensky insisted Sunday that the city")
    assert bakhmut.body == "Ukrainian President Volodymyr Zelensky insisted Sunday…\n\nSecond paragraph."
    assert bakhmut.published_at == datetime(2023, 5, 22, 8, 0, tzinfo=UTC)  # published, not modified
    assert bakhmut.author == "Dana Whit"  # authors[0]
    assert bakhmut.image_url == "https://cdn.example.com/img/bakhmut.jpg?utm_source=jsonfeed"  # not canonical
    assert bakhmut.categories == ["World", "Ukraine War", "featured"]
    assert bakhmut.topics == ["world", "ukraine-war"]
    assert bakhmut.featured is True

    assert markets.title == "Markets & the debt ceiling"
    assert markets.summary == "Stocks fell on Monday as talks stalled."  # content_html's first paragraph
    assert "track()" not in markets.body
    assert markets.published_at == datetime(2023, 5, 21, 8, 30, tzinfo=UTC)  # date_modified
    assert markets.image_url == "https://cdn.example.com/img/markets-banner.jpg"
    assert markets.author == "Political IQ Desk"  # the feed's
    assert markets.featured is None

    assert link_post.url == "https://other.example.org/report"  # external_url
    assert link_post.summary == "A link post."  # content_text's first paragraph
    assert link_post.image_url is None  # javascript: dropped, the item kept


def test_json_feed_1_0_items_become_stories() -> None:
    comet, bees = parse_source(JSON_FEED_1_0)

    assert (comet.url, comet.guid, comet.author) == ("https://science.example.net/2023/05/comet", "sw-77", "Lee Park")
    assert comet.published_at == datetime(2023, 5, 24, 1, 15, tzinfo=UTC)
    assert comet.summary == "Astronomers spotted the comet on Tuesday night."
    assert comet.topics == ["science", "space"]
    assert (bees.summary, bees.author) == ("Honeybees can tell three from four.", "Science Weekly")


def test_json_feed_item_without_a_date_is_dated_now_as_rss_ones_are() -> None:
    before = datetime.now(UTC)

    [story] = parse_json_feed(json_feed([good(1, date=None)]))

    assert before <= story.published_at <= datetime.now(UTC)


@pytest.mark.parametrize(("document", "message"), [
    ({"version": "https://jsonfeed.org/version/1.1"}, "items: must be a list"),
    ({"version": "https://jsonfeed.org/version/1.1", "items": {"id": 1}}, "items: must be a list"),
    ({"version": "https://jsonfeed.org/version/1.1", "items": []}, "no usable item"),
    ({"version": "https://jsonfeed.org/version/1.1", "items": [1, "x"]}, r"no usable item \(item 1: not an object\)"),
])
def test_json_feed_without_usable_items_is_refused(document: object, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_source(json.dumps(document).encode())


def test_json_with_another_version_key_is_digests_own_format_and_strict() -> None:
    with pytest.raises(ParseError, match="JSON must be a list"):
        parse_json_source(b'{"version": "https://example.com/version/1", "items": []}')
    with pytest.raises(ParseError, match="item 2: title: missing"):
        parse_json_source(json.dumps([
            {"url": "https://n.example.com/1", "title": "One", "published_at": "2023-05-22"},
            {"url": "https://n.example.com/2", "published_at": "2023-05-22"}]).encode())


def test_json_feed_item_fields_of_the_wrong_type_skip_or_drop_nothing_else() -> None:
    data = json.dumps({"version": "https://jsonfeed.org/version/1", "items": [
        {"id": {"x": 1}, "url": ["https://n.example.com/1"], "title": "List URL"},
        {"id": 7, "url": "https://n.example.com/2", "title": "Fine", "tags": "politics", "summary": 3,
         "authors": "Ann", "author": ["Bo"], "image": 5, "date_published": "2023-05-22T10:00:00Z"},
    ]}).encode()

    [story] = parse_json_feed(data)

    assert (story.url, story.guid, story.topics, story.summary, story.author, story.image_url) == (
        "https://n.example.com/2", "7", [], "", None, None)


# ------------------------------------------------------------------ Google News sitemaps


def test_news_sitemap_entries_become_stories() -> None:
    bakhmut, markets, comet = parse_source(NEWS_SITEMAP)

    assert bakhmut.url == bakhmut.guid == "https://news.example.com/2023/05/bakhmut"
    assert bakhmut.title == "Zelensky Insists Bakhmut “is Not Occupied” by Russia"
    assert bakhmut.published_at == datetime(2023, 5, 22, 8, 0, tzinfo=UTC)
    assert bakhmut.categories == ["World", "Ukraine War", "featured"]
    assert bakhmut.topics == ["world", "ukraine-war"]
    assert bakhmut.featured is True
    assert bakhmut.image_url == "https://cdn.example.com/img/bakhmut.jpg?utm_campaign=news-sitemap"

    assert markets.title == "Markets & the debt ceiling"
    assert markets.published_at == datetime(2023, 5, 21, tzinfo=UTC)
    assert markets.topics == ["business", "economy"]
    assert (markets.image_url, markets.featured) == (None, None)

    assert comet.title == "A comet returns <after> 400 years"  # CDATA: plain text
    assert comet.image_url is None  # "not a url": dropped, the entry kept


@pytest.mark.parametrize(("data", "message"), [
    (PLAIN_SITEMAP, "a sitemap without news: entries"),
    (SITEMAP_INDEX, "a sitemap index"),
    (b'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"></urlset>',
     "a sitemap without news: entries"),
    (b'<?xml version="1.0"?><urlset><url><loc>https://n.example.com/', "not a readable sitemap"),
    (b"", "not a readable sitemap"),
])
def test_a_sitemap_that_lists_no_news_is_refused_with_a_reason(data: bytes, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_source(data) if data else parse_sitemap(data)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE urlset [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">
<url><loc>https://news.example.com/1</loc><news:news><news:title>&lol9;</news:title>
<news:publication_date>2023-05-22</news:publication_date></news:news></url></urlset>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE urlset [<!ENTITY secret SYSTEM "file:///etc/hostname">]>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">
<url><loc>https://news.example.com/1</loc><news:news><news:title>Leak: &secret;</news:title>
<news:publication_date>2023-05-22</news:publication_date></news:news></url></urlset>"""


@pytest.mark.parametrize("data", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["billion-laughs", "external-entity"])
def test_a_sitemap_declaring_entities_is_refused_without_expanding_them(data: bytes) -> None:
    started = time.monotonic()

    # libxml2 refuses the bomb's declarations itself ("entity amplification"); the DTD check the rest
    with pytest.raises(ParseError, match="entit") as refused:
        parse_source(data)

    assert "lollol" not in str(refused.value)
    assert time.monotonic() - started < 2


def test_a_sitemap_naming_an_outside_dtd_is_read_without_fetching_it() -> None:
    """load_dtd=False, no_network=True: the DOCTYPE is a name, not a request (port 9 answers
    nothing; a fetch would fail or hang)."""
    data = NEWS_SITEMAP.replace(b"<urlset", b'<!DOCTYPE urlset SYSTEM "http://127.0.0.1:9/sitemap.dtd">\n<urlset', 1)

    assert len(parse_sitemap(data)) == 3


# ------------------------------------------------------------------ telling formats apart


@pytest.mark.parametrize(("data", "kind"), [
    (JSON_FEED_1_1, "json"),
    (NEWS_SITEMAP, "sitemap"),
    (PLAIN_SITEMAP, "sitemap"),
    (SITEMAP_INDEX, "sitemap"),
    (b"\xef\xbb\xbf\n<urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'/>", "sitemap"),
    (RSS, "feed"),
    (b"<!DOCTYPE html><html><head><title>Sitemap</title></head><body><pre>&lt;urlset&gt;</pre>"
     b"<code><urlset></code></body></html>", "html"),
])
def test_detect_format_tells_the_new_formats_apart(data: bytes, kind: str) -> None:
    assert detect_format(data) == kind


@pytest.mark.parametrize("parse", [parse_json_feed, parse_sitemap, parse_rss_atom])
def test_an_html_page_where_a_feed_was_expected_is_a_parse_error(parse: Any) -> None:
    page = b"<!DOCTYPE html><html><head><title>Not found</title></head><body><p>Oops</p></body></html>"

    with pytest.raises(ParseError):
        parse(page)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from([JSON_FEED_1_1, JSON_FEED_1_0, NEWS_SITEMAP]), st.data())
def test_damaged_new_formats_give_stories_or_parse_error_only(base: bytes, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(base)))
    junk = data.draw(st.binary(max_size=20))
    damaged = base[:cut] + junk + base[cut + len(junk):]
    try:
        stories = parse_source(damaged)
    except ParseError:
        return
    assert 1 <= len(stories) <= FEED_ITEMS_MAX
