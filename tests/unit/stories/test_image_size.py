"""A story's image size as its source states it (Media RSS attributes, og:image:width and
height, an ImageObject's own, the API's fields), kept through ingest: the email gives its
<img> a height only when both sides are known."""

from __future__ import annotations

import json

import pytest
from sqlalchemy.orm import Session

from digest.store.models import Story
from digest.stories import parse_source, upsert_stories
from digest.stories.parse import image_side

MEDIA_RSS = b"""<?xml version="1.0"?>
<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel><title>T</title>
<item><title>Sized</title><link>https://news.example.com/sized</link>
<pubDate>Mon, 22 May 2023 10:00:00 GMT</pubDate>
<media:content url="https://news.example.com/sized.jpg" medium="image" width="1200" height="675"/></item>
<item><title>Width only</title><link>https://news.example.com/width</link>
<pubDate>Mon, 22 May 2023 10:00:00 GMT</pubDate>
<media:content url="https://news.example.com/width.jpg" medium="image" width="900"/></item>
<item><title>Enclosure</title><link>https://news.example.com/enclosure</link>
<pubDate>Mon, 22 May 2023 10:00:00 GMT</pubDate>
<enclosure url="https://news.example.com/enclosure.jpg" type="image/jpeg" length="1"/></item>
</channel></rss>"""


def page(head: str) -> bytes:
    return f"""<!DOCTYPE html><html><head><title>A headline here</title>
<link rel="canonical" href="https://news.example.com/story">{head}
<meta name="description" content="What happened, in a sentence."></head>
<body><article><h1>A headline here</h1><time datetime="2023-05-22">22 May 2023</time>
<p>{"A paragraph of the story that says enough. " * 20}</p></article></body></html>""".encode()


def test_media_rss_states_width_and_height() -> None:
    sized, width_only, enclosure = parse_source(MEDIA_RSS)

    assert (sized.image_url, sized.image_width, sized.image_height) == (
        "https://news.example.com/sized.jpg", 1200, 675)
    assert (width_only.image_width, width_only.image_height) == (900, None)
    assert (enclosure.image_url, enclosure.image_width, enclosure.image_height) == (
        "https://news.example.com/enclosure.jpg", None, None)


def test_open_graph_states_the_og_image_size() -> None:
    head = ('<meta property="og:image" content="https://news.example.com/og.jpg">'
            '<meta property="og:image:width" content="1200"><meta property="og:image:height" content="630">')
    (story,) = parse_source(page(head), origin="https://news.example.com/story")

    assert (story.image_url, story.image_width, story.image_height) == ("https://news.example.com/og.jpg", 1200, 630)


def test_an_image_object_states_its_own_size() -> None:
    ld = {"@context": "https://schema.org", "@type": "NewsArticle", "headline": "A headline here",
          "datePublished": "2023-05-22T00:00:00Z",
          "image": {"@type": "ImageObject", "url": "https://news.example.com/ld.jpg", "width": 800, "height": 450}}
    head = (f'<script type="application/ld+json">{json.dumps(ld)}</script>'
            '<meta property="og:image:width" content="1200"><meta property="og:image:height" content="630">')
    (story,) = parse_source(page(head), origin="https://news.example.com/story")

    # The og: size belongs to the og:image, not to the JSON-LD picture chosen before it.
    assert (story.image_url, story.image_width, story.image_height) == ("https://news.example.com/ld.jpg", 800, 450)


@pytest.mark.parametrize(("stated", "side"), [
    ("800", 800), (800, 800), ("800px", 800), (" 12 ", 12), ("0", None), ("-5", None), ("80.5", None),
    ("wide", None), (None, None), (True, None), ("20001", None), ("99999999999", None),
])
def test_a_stated_side_is_whole_pixels_or_nothing(stated: object, side: int | None) -> None:
    assert image_side(stated) == side


def test_json_items_and_the_size_is_kept_through_ingest(session: Session) -> None:
    items = [{"url": "https://news.example.com/j", "title": "J", "published_at": "2023-05-22T10:00:00Z",
              "image_url": "https://news.example.com/j.jpg", "image_width": 640, "image_height": "360"}]
    stories = parse_source(json.dumps(items).encode())
    result = upsert_stories(session, stories)
    row = session.get_one(Story, result.ids["https://news.example.com/j"])

    assert (row.image_width, row.image_height) == (640, 360)
    # A new picture without a stated size drops the old size with it.
    items[0].update(image_url="https://news.example.com/k.jpg", image_width=None, image_height=None)
    upsert_stories(session, parse_source(json.dumps(items).encode()))
    assert (row.image_url, row.image_width, row.image_height) == ("https://news.example.com/k.jpg", None, None)
