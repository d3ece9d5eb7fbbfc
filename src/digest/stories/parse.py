"""Turn bytes from a feed, a JSON file or a plain-text article into StoryIn records.

Pure: no database, no network. Everything that reaches a StoryIn is one-line where it
must be (titles, authors) and free of the site boilerplate that wraps articles.
"""

from __future__ import annotations

import html
import io
import re
import xml.sax
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from collections.abc import Mapping
from typing import Any

import feedparser
from dateutil import parser as dateparser

from digest.errors import Invalid
from digest.infra import load_json

SUMMARY_MAX_CHARS = 320
TITLE_MAX_CHARS = 500
URL_MAX_CHARS = 2048  # the url and image_url columns: a longer one would fail the whole INSERT
IMAGE_SIDE_MAX_PX = 20_000  # a larger stated size is a mistake, not a picture: ignored
TOPIC_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
# http(s), a host, then anything but whitespace and control characters.
URL_RE = re.compile(r"https?://[^\s/?#\x00-\x1f\x7f]+(?:[/?#][^\s\x00-\x1f\x7f]*)?")

# Paragraphs that mark the end of an article's own text on publishers' pages; the
# paragraph and everything after it (related headlines, sign-up boxes) is dropped.
BOILERPLATE_RE = re.compile(
    r"""^(
        read\ more\b
      | get\ the\ featured\ stories\b
      | (sign\ up|subscribe)\b.{0,80}\b(newsletter|email|inbox)
      | don[’']t\ miss\ out\b
      | related(\ (stories|articles|headlines))?:?$
      | more\ from\b
      | share\ this\b
      | advertisement$
    )""",
    re.IGNORECASE | re.VERBOSE,
)
UNSTORABLE_RE = re.compile(r"[\x00\ud800-\udfff]")
CAPTION_RE = re.compile(r"^(photo|image|picture|credit)\s*:", re.IGNORECASE)
# expat's errors for input that stops mid-document: a feed cut off in transfer.
TRUNCATED_XML_ERRORS = {"no element found", "unclosed token", "unclosed CDATA section", "partial character"}


class ParseError(Invalid):
    """The source cannot be read as stories; the message says why."""


@dataclass
class StoryIn:
    url: str
    title: str
    published_at: datetime
    summary: str = ""
    body: str = ""
    image_url: str | None = None
    # The image's size as the source states it (media:content width/height,
    # og:image:width/height); None when it says nothing.
    image_width: int | None = None
    image_height: int | None = None
    author: str | None = None
    topics: list[str] = field(default_factory=list)
    # None: the source says nothing, so an editor's choice is kept on re-ingest.
    featured: bool | None = None
    # The feed's own id for the item (RSS guid, Atom id, JSON Feed id), when it gives one: a
    # polled feed recognises an item by it even when its link changes.
    guid: str | None = None
    # The item's categories as the feed wrote them (before becoming topics), for a feed's
    # category -> topic map and "featured" categories.
    categories: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        # A JSON "\u0000" or "\ud800" escape (or a NUL in an article) would otherwise fail
        # at the INSERT: PostgreSQL keeps no NUL, and no driver can encode a lone surrogate.
        for name in ("url", "title", "summary", "body", "image_url", "author"):
            value = getattr(self, name)
            if value is not None and not _storable(value):
                raise ParseError(f"{name}: holds a NUL or an unpaired surrogate")
        if not all(isinstance(topic, str) and _storable(topic) for topic in self.topics):
            raise ParseError("topics: hold a NUL or an unpaired surrogate")


def image_side(value: Any) -> int | None:
    """A stated image width or height ("800", 800, "800px") in whole pixels; None for
    anything else: a size is a hint for the email's layout, never a reason to refuse."""
    text = str(value).strip().removesuffix("px") if value is not None and not isinstance(value, bool) else ""
    if not text.isdigit() or len(text) > 6:
        return None
    side = int(text)
    return side if 0 < side <= IMAGE_SIDE_MAX_PX else None


def _storable(text: str) -> bool:
    return UNSTORABLE_RE.search(text) is None


def one_line(text: str) -> str:
    """Collapse all whitespace, CR and LF included: the form every header-bound field takes."""
    return " ".join(text.split())


def normalise_topics(raw: Any) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, str):
        raw = raw.split(",")
    if not isinstance(raw, (list, tuple)):
        raise ParseError("topics: must be a list or comma-separated text")
    topics: list[str] = []
    for item in raw:
        topic = one_line(str(item)).lower().replace(" ", "-")
        if topic and TOPIC_RE.match(topic) and topic not in topics:
            topics.append(topic)
    return topics


def summarise(text: str, limit: int = SUMMARY_MAX_CHARS) -> str:
    """The first paragraph, cut at a sentence (or word) boundary if it is long."""
    first = one_line(text.strip().split("\n\n", 1)[0]) if text.strip() else ""
    if len(first) <= limit:
        return first
    cut = first[:limit]
    sentence_end = max(cut.rfind(". "), cut.rfind("? "), cut.rfind("! "))
    if sentence_end > limit // 2:
        return cut[: sentence_end + 1]
    return cut.rsplit(" ", 1)[0].rstrip(",;:") + "…"


class _TextExtractor(HTMLParser):
    BLOCKS = {"p", "div", "br", "li", "h1", "h2", "h3", "h4", "blockquote", "tr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self.skip += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self.skip:
            self.skip -= 1

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    extractor = _TextExtractor()
    extractor.feed(markup)
    extractor.close()
    paragraphs = [one_line(p) for p in "".join(extractor.parts).split("\n\n")]
    return "\n\n".join(p for p in paragraphs if p)


def parse_datetime(value: Any, *, field_name: str = "published_at") -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and value.strip():
        try:
            parsed = dateparser.parse(value.strip())
        except (ValueError, ArithmeticError):  # a 120-digit minute: decimal.InvalidOperation (fuzzing)
            raise ParseError(f"{field_name}: not a date: {value[:60]!r}") from None
    else:
        raise ParseError(f"{field_name}: missing")
    try:
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # dateutil accepts offsets datetime cannot (+25:00)
        raise ParseError(f"{field_name}: not a date: {str(value)[:60]!r}") from None


def _check_url(url: Any, field_name: str = "url") -> str:
    # The whole URL, not a prefix: a CR or LF after the host would carry lines into the
    # plain-text email, and only http(s) may be linked (no javascript: or data:).
    if not isinstance(url, str) or not URL_RE.fullmatch(url.strip()):
        raise ParseError(f"{field_name}: not an http(s) URL: {str(url)[:80]!r}")
    if len(url.strip()) > URL_MAX_CHARS:
        raise ParseError(f"{field_name}: longer than {URL_MAX_CHARS} characters: {url.strip()[:80]!r}…")
    return url.strip()


def _check_title(title: Any) -> str:
    text = one_line(html.unescape(str(title))) if title is not None else ""
    if not text:
        raise ParseError("title: missing")
    return text[:TITLE_MAX_CHARS]


# ---------------------------------------------------------------- JSON


def parse_json(data: bytes) -> list[StoryIn]:
    try:
        items = load_json(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ParseError(f"not valid JSON: {exc}") from None
    if isinstance(items, dict) and isinstance(items.get("stories"), list):
        items = items["stories"]
    if not isinstance(items, list):
        raise ParseError("JSON must be a list of story objects")
    stories = []
    for index, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise ParseError(f"item {index}: not an object")
        try:
            stories.append(story_from_fields(item))
        except ParseError as exc:
            raise ParseError(f"item {index}: {exc}") from None
    return stories


def story_from_fields(item: Mapping[str, Any]) -> StoryIn:
    """A story from named fields, checked: the one function for every story that comes as
    fields (a JSON source's items, the API's POST /stories, the editor's form), so all get
    the same checks (http(s) URLs with no whitespace or control characters, one-line
    title and byline, topics that are words, a date)."""
    body = str(item.get("body") or "").strip()
    summary = one_line(str(item.get("summary") or "")) or summarise(body)
    featured = item.get("featured")
    if featured is not None and not isinstance(featured, bool):
        raise ParseError("featured: must be true or false")
    image_url = item.get("image_url")
    return StoryIn(
        url=_check_url(item.get("url")),
        title=_check_title(item.get("title")),
        published_at=parse_datetime(item.get("published_at")),
        summary=summary,
        body=body,
        image_url=_check_url(image_url, "image_url") if image_url else None,
        image_width=image_side(item.get("image_width")) if image_url else None,
        image_height=image_side(item.get("image_height")) if image_url else None,
        author=one_line(str(item["author"]))[:200] if item.get("author") else None,
        topics=normalise_topics(item.get("topics")),
        featured=featured,
    )


# ---------------------------------------------------------------- RSS / Atom


def parse_feed(data: bytes) -> list[StoryIn]:
    try:
        # A stream, not bytes: feedparser tries bytes as a file name first.
        parsed = feedparser.parse(io.BytesIO(data))
    except Exception as exc:  # hostile bytes reach feedparser's ValueError, TypeError, …
        raise ParseError(f"not a readable RSS or Atom feed: {exc}") from None
    reason = getattr(parsed, "bozo_exception", None)
    if isinstance(reason, xml.sax.SAXParseException) and reason.getMessage() in TRUNCATED_XML_ERRORS:
        # feedparser's lenient fallback would keep the entries before the cut, the last
        # one with a partial summary and perhaps no date: take none of them.
        raise ParseError(f"the feed is truncated: {reason}")
    if not parsed.entries:
        raise ParseError(f"not a readable RSS or Atom feed{f': {reason}' if reason else ''}")
    stories = []
    for entry in parsed.entries:
        if not entry.get("link") or not entry.get("title"):
            continue  # an entry without a link or a title cannot be featured
        # `in` first: feedparser maps a missing updated_parsed onto published_parsed with a
        # DeprecationWarning.
        when = entry.get("published_parsed") or (
            entry["updated_parsed"] if "updated_parsed" in entry else None
        )
        if not when and (entry.get("published") or ("updated" in entry and entry["updated"])):
            continue  # a date feedparser cannot read: the item's, unknown, is not "now"
        try:
            published_at = datetime(*when[:6], tzinfo=UTC) if when else datetime.now(UTC)
        except (TypeError, ValueError):
            continue
        content = entry.get("content") or []
        body = html_to_text(content[0].get("value") or "") if content else ""
        summary = html_to_text(entry.get("summary") or "") or body
        title = entry.title
        if "html" in (entry.get("title_detail") or {}).get("type", ""):
            title = html_to_text(title)  # <title type="html">: markup is not part of a headline
        tags = [tag.get("term") for tag in entry.get("tags", []) if tag.get("term")]
        topics = normalise_topics(tags)
        featured = True if "featured" in topics else None
        try:
            stories.append(
                StoryIn(
                    url=_check_url(entry.link),
                    title=_check_title(title),
                    published_at=published_at,
                    summary=summarise(summary),
                    body=body,
                    **_feed_image(entry),
                    author=_feed_author(entry),
                    topics=[t for t in topics if t != "featured"],
                    featured=featured,
                    guid=_guid(entry.get("id")),
                    categories=[one_line(str(tag))[:100] for tag in tags][:50],
                )
            )
        except ParseError:
            continue
    if not stories:
        raise ParseError("the feed has no entry with both a title and an http(s) link")
    return stories


GUID_MAX_CHARS = 500


def _guid(value: Any) -> str | None:
    """A feed's id for an item, one line and bounded; None when it gives none."""
    text = one_line(str(value)) if value is not None else ""
    return text[:GUID_MAX_CHARS] or None


def _feed_author(entry: Any) -> str | None:
    """The byline, not the mailbox: RSS writes "desk@news.example.com (News Desk)", which
    feedparser splits into author_detail's name and email. A bare address is no byline."""
    detail = entry.get("author_detail") or {}
    name = one_line(detail.get("name") or entry.get("author") or "")
    if not name or ("@" in name and " " not in name):
        return None
    return name[:200]


def _feed_image(entry: Any) -> dict[str, Any]:
    """image_url, image_width and image_height of an entry's first usable picture (Media
    RSS states the size as attributes; an enclosure never does)."""
    found = [(str(media["url"]), media.get("width"), media.get("height"))
             for media in entry.get("media_content", []) + entry.get("media_thumbnail", [])
             if media.get("url", "").startswith(("http://", "https://"))]
    found += [(str(link.get("href")), None, None) for link in entry.get("links", [])
              if link.get("rel") == "enclosure" and link.get("type", "").startswith("image/")]
    # An image is optional: one too long for its column is left out, not the story.
    url, width, height = next(((u, w, h) for u, w, h in found if len(u) <= URL_MAX_CHARS), (None, None, None))
    return {"image_url": url, "image_width": image_side(width), "image_height": image_side(height)}


# ---------------------------------------------------------------- plain-text article


def parse_article(text: str, url: str) -> StoryIn:
    """A plain-text article: title line, date line, paragraphs, then site boilerplate.

    Captions ("PHOTO: …") are not story text; the first boilerplate paragraph ends the
    article, which also drops the related headlines that follow it.
    """
    lines = text.replace("\r\n", "\n").split("\n")
    filled = [i for i, line in enumerate(lines) if line.strip()]
    if len(filled) < 3:
        raise ParseError("an article needs a title line, a date line and at least one paragraph")
    title, date_line = one_line(lines[filled[0]]), one_line(lines[filled[1]])
    rest = "\n".join(lines[filled[1] + 1 :])
    blocks = [one_line(b) for b in re.split(r"\n\s*\n", rest)]
    published_at = parse_datetime(date_line, field_name="date line")
    paragraphs: list[str] = []
    for block in filter(None, blocks):
        if BOILERPLATE_RE.match(block):
            break
        if CAPTION_RE.match(block):
            continue
        paragraphs.append(block)
    if not paragraphs:
        raise ParseError("the article has no paragraphs after its date line")
    body = "\n\n".join(paragraphs)
    return StoryIn(
        url=_check_url(url),
        title=_check_title(title),
        published_at=published_at,
        summary=summarise(body),
        body=body,
    )


def slugify(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:80].rstrip("-") or "story"


HTML_MARK_RE = re.compile(rb"<!doctype\s+html|<(html|head|body|meta|title)[\s>]")
FEED_ROOT_RE = re.compile(rb"<(rss|feed|rdf:rdf)[\s>]")
SITEMAP_ROOT_RE = re.compile(rb"<(urlset|sitemapindex)[\s>]")


def detect_format(data: bytes) -> str:
    """'json' (digest's list or a JSON Feed), 'feed', 'sitemap' (a news sitemap, or a plain
    one or an index to refuse), 'html' (an article page) or 'article' (plain text), from the
    content itself (extensions and Content-Types lie)."""
    head = data[:2048].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head[:1] in (b"[", b"{"):
        return "json"
    lowered = head.lower()
    # An Atom feed has <title>s too: only a page without a feed's root element is HTML.
    if HTML_MARK_RE.search(lowered) and not FEED_ROOT_RE.search(lowered):
        return "html"
    if SITEMAP_ROOT_RE.search(lowered) and not FEED_ROOT_RE.search(lowered):
        return "sitemap"
    if lowered.startswith(b"<?xml") or b"<rss" in lowered or b"<feed" in lowered or b"<rdf" in lowered:
        return "feed"
    return "article"
