"""An article page (HTML) as one clean story.

Each field is taken from the first place that has it: the page's JSON-LD
(schema.org NewsArticle, Article and kin), then its OpenGraph / `article:` meta tags, then
the page itself (`<title>`, `<time>`, `<meta name=…>`). The text is the main text
trafilatura finds — never the navigation, sign-up boxes, related headlines or captions —
cut at the same boilerplate the plain-text articles are cut at. The summary is the page's
description, else the text's first paragraph.

Pure: no database, no network.
"""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import lxml.html
import trafilatura
from lxml import etree

from digest.stories.parse import (
    BOILERPLATE_RE,
    CAPTION_RE,
    TITLE_MAX_CHARS,
    URL_MAX_CHARS,
    ParseError,
    image_side,
    StoryIn,
    normalise_topics,
    one_line,
    parse_datetime,
    summarise,
)

# trafilatura warns ("discarding data: URL") when a page has too little text, which is an
# answer here, not a fault; a command-line run would print it beside its one line.
logging.getLogger("trafilatura").setLevel(logging.ERROR)

ARTICLE_TYPES = {"Article", "NewsArticle", "ReportageNewsArticle", "AnalysisNewsArticle", "OpinionNewsArticle",
                 "BackgroundNewsArticle", "ReviewNewsArticle", "BlogPosting", "LiveBlogPosting", "Report"}
AUTHOR_MAX_CHARS = 200
# A byline ahead of the text ("By Dana Whit · May 22, 2023"), which trafilatura keeps when
# the page's metadata does not name the author.
BYLINE_RE = re.compile(r"^by\s+\S[^.!?]{0,100}$", re.IGNORECASE)
TOPICS_MAX = 20


def parse_article_page(data: bytes, url: str | None, *, trusted_hosts: frozenset[str] = frozenset()) -> StoryIn:
    """The story an article page fetched from `url` tells (None: a file, not fetched).

    Its URL is the page's canonical URL when that is on the page's own host or one of
    `trusted_hosts` (the publisher's site): a page elsewhere may not claim — and so
    overwrite — another site's story. Otherwise the URL it was fetched from. A file's own
    canonical URL is taken as it is (the operator chose the file).
    """
    try:
        root = lxml.html.document_fromstring(data)
    except (etree.ParserError, ValueError) as exc:
        raise ParseError(f"not a readable HTML page: {exc}") from None
    article = _json_ld_article(root)
    meta = _meta(root)

    title = _first(_text(article.get("headline")), _text(article.get("name")), meta.get("og:title"),
                   meta.get("twitter:title"), _h1(root), _title_tag(root))
    if not title:
        raise ParseError("the page has no headline (no JSON-LD headline, og:title, <title> or <h1>)")
    published = _first(_text(article.get("datePublished")), meta.get("article:published_time"),
                       meta.get("og:article:published_time"), meta.get("date"), meta.get("pubdate"),
                       _time_tag(root), _text(article.get("dateModified")), meta.get("article:modified_time"))
    # No date anywhere: the story is as new as the moment an editor brought it in.
    published_at = parse_datetime(published, field_name="date") if published else datetime.now(UTC)

    body = _main_text(data, url, title)
    description = _first(_text(article.get("description")), meta.get("og:description"),
                         meta.get("description"), meta.get("twitter:description"))
    summary = summarise(description) if description else summarise(body)
    if not summary:
        raise ParseError("the page has no description and no article text")

    topics = normalise_topics(
        _strings(article.get("articleSection")) + _keywords(article.get("keywords"))
        + meta.get_all("article:section") + meta.get_all("article:tag") + _keywords(meta.get("keywords"))
    )
    return StoryIn(
        url=_story_url(article, meta, root, url, trusted_hosts),
        title=title[:TITLE_MAX_CHARS],
        published_at=published_at,
        summary=summary,
        body=body,
        **_image(article, meta, url),
        author=_author(article, meta),
        topics=[t for t in topics if t != "featured"][:TOPICS_MAX],
        featured=True if "featured" in topics else None,
    )


# ---------------------------------------------------------------- where fields come from


class _Meta:
    """The page's <meta> tags by property or name (lowercased); the first value wins."""

    def __init__(self) -> None:
        self._values: dict[str, list[str]] = {}

    def add(self, key: str, value: str) -> None:
        value = one_line(value)
        if value:
            self._values.setdefault(key.lower(), []).append(value)

    def get(self, key: str) -> str | None:
        values = self._values.get(key)
        return values[0] if values else None

    def get_all(self, key: str) -> list[str]:
        return list(self._values.get(key, []))


def _meta(root: Any) -> _Meta:
    meta = _Meta()
    for tag in root.iter("meta"):
        key = tag.get("property") or tag.get("name") or tag.get("itemprop")
        content = tag.get("content")
        if key and content is not None:
            meta.add(key, content)
    return meta


def _json_ld_article(root: Any) -> dict[str, Any]:
    """The first schema.org article object in the page's JSON-LD (in @graph, lists, or
    nested under mainEntity); {} when there is none or it cannot be read."""
    for script in root.iter("script"):
        if (script.get("type") or "").strip().lower() != "application/ld+json":
            continue
        try:
            found = json.loads(script.text or "")
        except ValueError:
            continue  # one broken block does not hide the meta tags
        for item in _ld_objects(found):
            types = item.get("@type")
            types = types if isinstance(types, list) else [types]
            if any(isinstance(t, str) and t.rsplit("/", 1)[-1] in ARTICLE_TYPES for t in types):
                return item
    return {}


def _ld_objects(value: Any, depth: int = 0) -> Iterator[dict[str, Any]]:
    if depth > 4:
        return
    if isinstance(value, list):
        for item in value:
            yield from _ld_objects(item, depth + 1)
    elif isinstance(value, dict):
        yield value
        for key in ("@graph", "mainEntity"):
            if key in value:
                yield from _ld_objects(value[key], depth + 1)


def _main_text(data: bytes, url: str | None, title: str) -> str:
    extracted = trafilatura.extract(data, url=url, output_format="txt", include_comments=False,
                                    include_tables=False, include_images=False, include_links=False,
                                    favor_precision=True, deduplicate=False) or ""
    paragraphs: list[str] = []
    for line in extracted.split("\n"):
        block = one_line(line)
        if not block or (not paragraphs and (block == title or BYLINE_RE.match(block))):
            continue
        if BOILERPLATE_RE.match(block):
            break
        if CAPTION_RE.match(block):
            continue
        paragraphs.append(block)
    return "\n\n".join(paragraphs)


def _story_url(article: dict[str, Any], meta: _Meta, root: Any, fetched: str | None, trusted: frozenset[str]) -> str:
    canonical: list[str | None] = [
        str(link.get("href")) for link in root.iter("link")
        if "canonical" in (link.get("rel") or "").lower().split() and link.get("href")]
    main = article.get("mainEntityOfPage")
    candidates = canonical + [_text(article.get("url")), _text(main.get("@id") if isinstance(main, dict) else main),
                              meta.get("og:url")]
    allowed = {urlsplit(fetched).hostname} | trusted if fetched else None
    for candidate in candidates:
        if not candidate:
            continue
        absolute = urljoin(fetched or "", candidate.strip())
        parts = urlsplit(absolute)
        if (parts.scheme in ("http", "https") and (allowed is None or parts.hostname in allowed)
                and len(absolute) <= URL_MAX_CHARS):
            return absolute
    if fetched is None:
        raise ParseError("url: the page names no canonical URL; give the story's address (--url)")
    return fetched


def _image(article: dict[str, Any], meta: _Meta, page_url: str | None) -> dict[str, Any]:
    """image_url, and its width and height where the page states them: an ImageObject's
    own, or og:image:width/height for the og:image."""
    stated = [(address, item.get("width"), item.get("height")) if isinstance(item, dict) else (address, None, None)
              for item, address in _image_objects(article.get("image"))]
    og = (meta.get("og:image:width"), meta.get("og:image:height"))
    stated += [(meta.get(key), *og) for key in ("og:image", "og:image:url", "og:image:secure_url")]
    stated.append((meta.get("twitter:image"), None, None))
    for candidate, width, height in stated:
        if candidate:
            absolute = urljoin(page_url or "", candidate.strip())
            if absolute.startswith(("http://", "https://")) and len(absolute) <= URL_MAX_CHARS:
                return {"image_url": absolute, "image_width": image_side(width), "image_height": image_side(height)}
    return {"image_url": None, "image_width": None, "image_height": None}


def _author(article: dict[str, Any], meta: _Meta) -> str | None:
    names = [name for name in (_text(a.get("name")) if isinstance(a, dict) else _text(a)
                               for a in _as_list(article.get("author"))) if name]
    # article:author is often a profile URL, not a byline.
    names = names or [a for a in meta.get_all("article:author") if not a.startswith(("http://", "https://"))]
    names = names or [a for a in [meta.get("author")] if a]
    if not names:
        return None
    return ", ".join(dict.fromkeys(names))[:AUTHOR_MAX_CHARS]


def _title_tag(root: Any) -> str | None:
    found = root.find(".//title")
    return one_line(found.text_content()) if found is not None else None


def _h1(root: Any) -> str | None:
    found = root.find(".//h1")
    return one_line(found.text_content()) if found is not None else None


def _time_tag(root: Any) -> str | None:
    for tag in root.iter("time"):
        if tag.get("datetime"):
            return str(tag.get("datetime"))
    return None


# ---------------------------------------------------------------- JSON-LD value shapes


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [] if value is None else [value]


def _text(value: Any) -> str | None:
    """A one-line string from a JSON-LD value (a string, or the first of a list of them)."""
    if isinstance(value, list):
        value = next((v for v in value if isinstance(v, str)), None)
    if not isinstance(value, str):
        return None
    return one_line(html.unescape(value)) or None


def _strings(value: Any) -> list[str]:
    return [one_line(v) for v in _as_list(value) if isinstance(v, str) and v.strip()]


def _keywords(value: Any) -> list[str]:
    """keywords: a list, or one comma-separated string."""
    if isinstance(value, str):
        return [k for k in (one_line(part) for part in value.split(",")) if k]
    return _strings(value)


def _image_objects(value: Any) -> list[tuple[Any, str]]:
    """image: a URL, an ImageObject ({url} or {@id}), or a list of either: (item, its URL)."""
    found = []
    for item in _as_list(value):
        address = item.get("url") or item.get("@id") if isinstance(item, dict) else item
        if isinstance(address, str):
            found.append((item, address))
    return found


def _first(*values: str | None) -> str | None:
    return next((v for v in values if v), None)
